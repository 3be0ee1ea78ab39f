"""Stripe: ``GET /v1/events`` through the official SDK (``stripe.StripeClient.v1.events.list``).

Stripe keeps events listable for 30 days (newest first, cursor ``starting_after``, at most 100 per
page) and retries a failed webhook for 3 days in live mode. The list is asked for the types the
webhook adapter maps (``types[]``, at most 20), so unrelated account activity (customers, Billing
objects) is neither fetched nor archived. Events are the very objects the webhook delivers.
"""

from __future__ import annotations

import json
from typing import Any

from shared.backfill.base import Page, SourceError, Window
from shared.backfill.config import SourceSettings
from shared.log import get_logger
from shared.psp.base import Notification

log = get_logger(__name__)

# Every type shared.psp.stripe.StripeAdapter.normalise maps (some of them only in certain states).
TYPES = (
    "payment_intent.succeeded",
    "payment_intent.amount_capturable_updated",
    "payment_intent.processing",
    "payment_intent.payment_failed",
    "charge.refunded",
    "charge.dispute.created",
    "charge.dispute.closed",
    "payment_method.detached",
    "mandate.updated",
)


class StripeEvents:
    psp = "stripe"

    def page(self, settings: SourceSettings, window: Window, cursor: str | None, size: int) -> Page:
        import stripe

        client = stripe.StripeClient(
            settings.get("STRIPE_API_KEY"),
            base_addresses={"api": settings.api_base} if settings.api_base else None,
            max_network_retries=0,  # the tick is retried instead, from the saved cursor
        )
        params: dict[str, Any] = {
            "created": {"gte": int(window.start.timestamp()), "lt": int(window.end.timestamp())},
            "limit": size,
            "types": list(TYPES),
        }
        if cursor:
            params["starting_after"] = cursor
        try:
            listed = client.v1.events.list(params)  # type: ignore[arg-type]  # a TypedDict of literals
        except stripe.StripeError as exc:
            raise SourceError(f"stripe events list: {type(exc).__name__}: {exc.user_message or exc}") from exc
        notes: list[Notification] = []
        events = [e.to_dict() for e in listed.data]
        for ev in events:
            if ev.get("livemode") is not settings.livemode:
                log.warning("listed event of the other mode skipped", extra={"psp_event_id": ev.get("id")})
                continue
            if isinstance(ev.get("id"), str) and isinstance(ev.get("type"), str):
                raw = json.dumps(ev, separators=(",", ":"))
                notes.append(Notification(event_id=ev["id"], event_type=ev["type"], payload=ev, raw=raw))
        more = bool(listed.has_more) and bool(events)
        return Page(notes, str(events[-1]["id"]) if more else None)

    def full(self, settings: SourceSettings, note: Notification) -> Notification:
        return note
