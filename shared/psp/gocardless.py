"""GoCardless: ``Webhook-Signature`` = hex HMAC-SHA256(secret, raw body) over a batch of events.

GoCardless asks for 498 on an invalid signature. Events carry no amounts (only links to the
resources), so the canonical events have ``amount=None``; refunds, whose contract needs an amount,
are archived but not mapped. GoCardless has separate secrets per environment and no mode flag in
the payload, so the configured mode is the event's mode.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import Mapping
from typing import Any

from shared.events.payments import (
    DisputeLost,
    DisputeWon,
    PaymentEvent,
    PaymentFailed,
    PaymentMethodRevoked,
    PaymentPending,
    PaymentSucceeded,
)
from shared.psp.base import (
    Delivery,
    InvalidSignature,
    MalformedPayload,
    Notification,
    PspConfig,
    classify,
    constant_time_in,
    event_fields,
    mapping,
    obj,
    parse_time,
    refs_from,
    text,
)


class GoCardlessAdapter:
    name = "gocardless"
    content_types = ("application/json",)
    required_env = ("GOCARDLESS_WEBHOOK_SECRETS",)
    optional_env: tuple[str, ...] = ()
    headers_of_interest = ("Origin", "User-Agent", "Content-Type")
    invalid_signature_status = 498
    ack_body = '{"received": true}'
    ack_mimetype = "application/json"

    def verify(self, delivery: Delivery, config: PspConfig) -> list[Notification]:
        given = (delivery.header("Webhook-Signature") or "").strip()
        if not given:
            raise InvalidSignature("missing Webhook-Signature header", status=498)
        expected = tuple(
            hmac.new(key, delivery.body, hashlib.sha256).hexdigest()
            for key in config.keys("GOCARDLESS_WEBHOOK_SECRETS")
        )
        if not constant_time_in(given, expected):
            raise InvalidSignature("Webhook-Signature does not match", status=498)
        try:
            body = obj(json.loads(delivery.body), "body")
        except (ValueError, UnicodeDecodeError) as exc:
            raise MalformedPayload("body is not JSON") from exc
        events = body.get("events")
        if not isinstance(events, list):
            raise MalformedPayload("events must be a list")
        notes = []
        for raw in events:
            ev = obj(raw, "event")
            kind = f"{text(ev.get('resource_type'), 'resource_type')}.{text(ev.get('action'), 'action')}"
            notes.append(
                Notification(
                    event_id=text(ev.get("id"), "event.id"),
                    event_type=kind,
                    payload=ev,
                    raw=json.dumps(ev, separators=(",", ":")),
                )
            )
        return notes

    def normalise(self, note: Notification, config: PspConfig) -> PaymentEvent | None:
        ev = note.payload
        links = mapping(ev.get("links"))
        details = mapping(ev.get("details"))
        metadata = ev.get("resource_metadata") or ev.get("metadata")
        common: dict[str, Any] = {
            "psp": "gocardless",
            "account": config.account,
            "psp_event_id": note.event_id,
            "livemode": config.livemode,
            "psp_created_at": parse_time(ev.get("created_at")),
            "refs": refs_from(metadata),
        }
        t = note.event_type
        if t.startswith("payments."):
            common["psp_payment_id"] = text(links.get("payment"), "links.payment")
            if t == "payments.confirmed":
                return PaymentSucceeded(**common)
            if t == "payments.submitted":
                return PaymentPending(**common)
            if t == "payments.failed":
                cause = str(details.get("cause") or "") or None
                reason_code = str(details.get("reason_code") or "") or None
                decline = classify("gocardless", cause, reason_code)  # GoCardless' own cause first
                return PaymentFailed(
                    decline_code=reason_code or cause,
                    failure_message=str(details.get("description") or "")[:500] or None,
                    **decline.event_fields(common["psp_created_at"]),
                    **common,
                )
            if t == "payments.charged_back":
                return DisputeLost(dispute_id=common["psp_payment_id"], **_dispute_fields(details, t), **common)
            if t == "payments.chargeback_cancelled":
                return DisputeWon(dispute_id=common["psp_payment_id"], **_dispute_fields(details, t), **common)
            return None
        if t in ("mandates.cancelled", "mandates.failed", "mandates.expired"):
            common["psp_payment_id"] = text(links.get("mandate"), "links.mandate")
            return PaymentMethodRevoked(reason=str(details.get("cause") or t), **common)
        return None


def _dispute_fields(details: Mapping[str, Any], action: str) -> dict[str, Any]:
    """A Direct Debit chargeback has no defence and no deadline: reason and scheme code only."""
    cause = str(details.get("cause") or "") or None
    code = str(details.get("reason_code") or "") or None
    return {"reason": cause, **event_fields("gocardless", cause, reason_code=code, psp_status=action)}
