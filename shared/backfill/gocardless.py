"""GoCardless: ``GET /events`` through the official SDK (``gocardless_pro.Client.events.list``).

Filters ``created_at[gte]``/``created_at[lt]``, cursor ``after``, ``limit`` up to 500. GoCardless keeps
events listable for 18 months. Each listed event is the object the webhook batch carries, and gets
the adapter's event type ``<resource_type>.<action>``.
"""

from __future__ import annotations

import json
from typing import Any

from shared.backfill.base import Page, SourceError, Window, rfc3339
from shared.backfill.config import SourceSettings
from shared.psp.base import Notification


class GoCardlessEvents:
    psp = "gocardless"

    def page(self, settings: SourceSettings, window: Window, cursor: str | None, size: int) -> Page:
        import gocardless_pro
        from gocardless_pro import errors

        client = gocardless_pro.Client(
            access_token=settings.get("GOCARDLESS_ACCESS_TOKEN"),
            environment=None if settings.api_base else ("live" if settings.livemode else "sandbox"),
            base_url=settings.api_base,
            timeout=30,
        )
        params: dict[str, Any] = {
            "created_at[gte]": rfc3339(window.start),
            "created_at[lt]": rfc3339(window.end),
            "limit": size,
        }
        if cursor:
            params["after"] = cursor
        try:
            listed = client.events.list(params=params)
        except (errors.GoCardlessProError, OSError) as exc:
            raise SourceError(f"gocardless events list: {type(exc).__name__}: {exc}") from exc
        notes: list[Notification] = []
        for record in listed.records:
            ev: dict[str, Any] = dict(record.attributes)
            if all(isinstance(ev.get(k), str) for k in ("id", "resource_type", "action")):
                kind = f"{ev['resource_type']}.{ev['action']}"
                raw = json.dumps(ev, separators=(",", ":"))
                notes.append(Notification(event_id=ev["id"], event_type=kind, payload=ev, raw=raw))
        after = listed.after
        return Page(notes, str(after) if after and listed.records else None)

    def full(self, settings: SourceSettings, note: Notification) -> Notification:
        return note
