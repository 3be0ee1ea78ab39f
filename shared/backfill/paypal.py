"""PayPal: ``GET /v1/notifications/webhooks-events`` over plain HTTP (``requests``).

No installed official PayPal SDK covers the Webhooks Management API (``paypal-server-sdk``, PayPal's
current server SDK, is not a dependency and documents no webhook-events controller; ``paypalrestsdk``
is archived), so
this is an OAuth2 client-credentials token (``POST /v1/oauth2/token``, cached until shortly before it
expires) and the list with ``start_time``/``end_time`` (RFC 3339) and ``page_size``; the next page is
the response's ``links`` entry ``rel=next``, followed only on the same host. Listed events are the
bodies PayPal posts to the webhook.
"""

from __future__ import annotations

import json
import threading
import time
from typing import Any
from urllib.parse import urlsplit

from shared.backfill.base import Page, SourceError, Window, rfc3339
from shared.backfill.config import SourceSettings
from shared.psp.base import Notification

LIVE_BASE = "https://api-m.paypal.com"
SANDBOX_BASE = "https://api-m.sandbox.paypal.com"
LIST_PATH = "/v1/notifications/webhooks-events"
TIMEOUT_S = 20.0

_tokens: dict[tuple[str, str], tuple[str, float]] = {}
_lock = threading.Lock()


def _base(settings: SourceSettings) -> str:
    return (settings.api_base or (LIVE_BASE if settings.livemode else SANDBOX_BASE)).rstrip("/")


class PayPalEvents:
    psp = "paypal"

    def page(self, settings: SourceSettings, window: Window, cursor: str | None, size: int) -> Page:
        import requests

        base = _base(settings)
        params: dict[str, str] = {}
        if cursor:
            if urlsplit(cursor)[:2] != urlsplit(base)[:2]:
                raise SourceError("paypal next link leaves the API host; refused")
            url = cursor
        else:
            url = base + LIST_PATH
            params = {"page_size": str(size), "start_time": rfc3339(window.start), "end_time": rfc3339(window.end)}
        try:
            resp = requests.get(
                url,
                params=params,
                headers={"Authorization": f"Bearer {self._token(settings, base)}", "Accept": "application/json"},
                timeout=TIMEOUT_S,
                allow_redirects=False,
            )
            if resp.status_code == 401:  # an expired or revoked token: a fresh one at the next try
                with _lock:
                    _tokens.pop((base, settings.get("PAYPAL_CLIENT_ID")), None)
            resp.raise_for_status()
            body = resp.json()
        except (requests.RequestException, ValueError, KeyError) as exc:
            raise SourceError(f"paypal webhooks-events: {type(exc).__name__}: {exc}") from exc
        notes: list[Notification] = []
        for ev in body.get("events") or []:
            if isinstance(ev, dict) and isinstance(ev.get("id"), str) and isinstance(ev.get("event_type"), str):
                raw = json.dumps(ev, separators=(",", ":"))
                notes.append(Notification(event_id=ev["id"], event_type=ev["event_type"], payload=ev, raw=raw))
        nxt = next(
            (lk.get("href") for lk in body.get("links") or [] if isinstance(lk, dict) and lk.get("rel") == "next"),
            None,
        )
        return Page(notes, str(nxt) if nxt and body.get("events") else None)

    def full(self, settings: SourceSettings, note: Notification) -> Notification:
        return note

    @staticmethod
    def _token(settings: SourceSettings, base: str) -> str:
        import requests

        key = (base, settings.get("PAYPAL_CLIENT_ID"))
        with _lock:
            cached = _tokens.get(key)
        if cached and cached[1] > time.monotonic():
            return cached[0]
        resp = requests.post(
            base + "/v1/oauth2/token",
            data={"grant_type": "client_credentials"},
            auth=(settings.get("PAYPAL_CLIENT_ID"), settings.get("PAYPAL_CLIENT_SECRET")),
            headers={"Accept": "application/json"},
            timeout=TIMEOUT_S,
            allow_redirects=False,
        )
        resp.raise_for_status()
        body: dict[str, Any] = resp.json()
        token = str(body["access_token"])
        with _lock:
            _tokens[key] = (token, time.monotonic() + max(0, int(body.get("expires_in", 0)) - 120))
        return token
