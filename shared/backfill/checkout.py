"""Checkout.com: the Events API (``GET /events``) through the official SDK (``checkout_sdk``).

Checkout.com's current platform has no "events by date" list (its Workflows API finds events per
subject); the Events API of the previous platform does, for events of the last 30 days: ``from``/``to``
(ISO 8601), ``limit`` (at most 100) and ``skip`` (offset pagination; the window's end is fixed, so the
offsets are stable). It lists summaries (id, type, time), so only events missing from our archive are
fetched in full (``GET /events/{id}``), which is the body Checkout.com posts to the webhook.
"""

from __future__ import annotations

import json
from typing import Any

from shared.backfill.base import Page, SourceError, Window
from shared.backfill.config import SourceSettings
from shared.psp.base import Notification


def _plain(value: Any) -> Any:
    """The SDK's response wrapper back to JSON values (its attributes are the body's keys)."""
    from checkout_sdk.checkout_response import ResponseWrapper

    if isinstance(value, ResponseWrapper):
        return {k: _plain(v) for k, v in vars(value).items() if k != "http_metadata"}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    return value


def _api(settings: SourceSettings) -> Any:
    from checkout_sdk.checkout_sdk import CheckoutSdk
    from checkout_sdk.environment import Environment

    env = Environment.production() if settings.livemode else Environment.sandbox()
    if settings.api_base:
        base = settings.api_base.rstrip("/") + "/"
        env = Environment(base, base, base, base, base, base, base, is_sandbox=not settings.livemode)
    try:
        return CheckoutSdk.builder().previous().secret_key(settings.get("CHECKOUT_SECRET_KEY")).environment(env).build()
    except Exception as exc:  # the SDK refuses a malformed key: a configuration fault, retried until fixed
        raise SourceError(f"checkout: {type(exc).__name__}: {exc}") from exc


def _call(what: str, call: Any) -> Any:
    from checkout_sdk.exception import CheckoutException

    try:
        return _plain(call())
    except (CheckoutException, OSError) as exc:
        raise SourceError(f"checkout {what}: {type(exc).__name__}: {exc}") from exc


class CheckoutEvents:
    psp = "checkout"

    def page(self, settings: SourceSettings, window: Window, cursor: str | None, size: int) -> Page:
        from checkout_sdk.events.events import RetrieveEventsRequest

        req = RetrieveEventsRequest()
        req.from_ = window.start  # serialised as "from" by the SDK
        req.to = window.end
        req.limit = size
        req.skip = int(cursor or 0)
        body = _call("events", lambda: _api(settings).events.retrieve_events(req))
        items = [e for e in (body.get("data") or []) if isinstance(e, dict)]
        notes = [
            Notification(event_id=e["id"], event_type=e["type"], payload=e)
            for e in items
            if isinstance(e.get("id"), str) and isinstance(e.get("type"), str)
        ]
        done = req.skip + len(items)
        total = body.get("total_count")
        more = bool(items) and isinstance(total, int) and done < total
        return Page(notes, str(done) if more else None)

    def full(self, settings: SourceSettings, note: Notification) -> Notification:
        ev = _call("event", lambda: _api(settings).events.retrieve_event(note.event_id))
        if not isinstance(ev, dict) or ev.get("id") != note.event_id:
            raise SourceError(f"checkout event {note.event_id}: unexpected answer")
        return Notification(note.event_id, str(ev.get("type") or note.event_type), ev, json.dumps(ev, default=str))
