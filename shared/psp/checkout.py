"""Checkout.com: ``Cko-Signature`` = hex HMAC-SHA256(signature key, raw body), optional Authorization.

When ``CHECKOUT_AUTHORIZATION`` is set, the ``Authorization`` header must equal it (constant time)
before the signature is even looked at. Several signature keys may be active (rotation). Checkout.com
puts no mode flag in the event; keys are per environment, so the configured mode is the event's.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from typing import Any

from shared.events.payments import (
    DisputeAccepted,
    DisputeEvent,
    DisputeExpired,
    DisputeLost,
    DisputeNeedsResponse,
    DisputeOpened,
    DisputePreArbitration,
    DisputeStage,
    DisputeUnderReview,
    DisputeWon,
    PaymentAuthorized,
    PaymentEvent,
    PaymentFailed,
    PaymentPending,
    PaymentRefunded,
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
    money_minor,
    obj,
    parse_time,
    refs_from,
    text,
)


class CheckoutAdapter:
    name = "checkout"
    content_types = ("application/json",)
    required_env = ("CHECKOUT_WEBHOOK_SECRETS",)
    optional_env = ("CHECKOUT_AUTHORIZATION",)
    headers_of_interest = ("User-Agent", "Content-Type")
    invalid_signature_status = 401
    ack_body = '{"received": true}'
    ack_mimetype = "application/json"

    def verify(self, delivery: Delivery, config: PspConfig) -> list[Notification]:
        auth = config.get("CHECKOUT_AUTHORIZATION")
        if auth and not constant_time_in(delivery.header("Authorization") or "", (auth,)):
            raise InvalidSignature("Authorization header does not match")
        given = (delivery.header("Cko-Signature") or "").strip()
        if not given:
            raise InvalidSignature("missing Cko-Signature header")
        expected = tuple(
            hmac.new(key, delivery.body, hashlib.sha256).hexdigest() for key in config.keys("CHECKOUT_WEBHOOK_SECRETS")
        )
        if not constant_time_in(given.lower(), expected):
            raise InvalidSignature("Cko-Signature does not match")
        try:
            ev = obj(json.loads(delivery.body), "event")
        except (ValueError, UnicodeDecodeError) as exc:
            raise MalformedPayload("body is not JSON") from exc
        return [Notification(event_id=text(ev.get("id"), "id"), event_type=text(ev.get("type"), "type"), payload=ev)]

    def normalise(self, note: Notification, config: PspConfig) -> PaymentEvent | None:
        ev = note.payload
        d = obj(ev.get("data"), "data")
        t = note.event_type
        amount = money_minor(d.get("amount"), d.get("currency")) if "amount" in d else None
        common: dict[str, Any] = {
            "psp": "checkout",
            "account": config.account,
            "psp_event_id": note.event_id,
            "livemode": config.livemode,
            "psp_created_at": parse_time(ev.get("created_on")),
            "refs": refs_from(
                d.get("metadata"), attempt_id=d.get("reference") if isinstance(d.get("reference"), str) else None
            ),
            "amount": amount,
        }
        if t.startswith("payment_"):
            common["psp_payment_id"] = text(d.get("id"), "data.id")
            if t == "payment_approved":
                return PaymentAuthorized(**common)
            if t == "payment_captured":
                return PaymentSucceeded(**common)
            if t == "payment_pending":
                return PaymentPending(**common)
            if t in ("payment_declined", "payment_capture_declined"):
                code = d.get("response_code") if isinstance(d.get("response_code"), str) else None
                summary = d.get("response_summary")
                decline = classify("checkout", code, log_unknown=code is not None)
                return PaymentFailed(
                    decline_code=code,
                    failure_message=str(summary)[:500] if summary else None,
                    **decline.event_fields(common["psp_created_at"]),
                    **common,
                )
            if t == "payment_refunded":
                if amount is None:
                    raise MalformedPayload("payment_refunded without amount")
                refund_id = text(d.get("action_id"), "data.action_id")
                return PaymentRefunded(refund_id=refund_id, refunded=amount, full=False, **common)
            return None
        if t in DISPUTE_TYPES:
            common["psp_payment_id"] = text(d.get("payment_id"), "data.payment_id")
            cls, stage = DISPUTE_TYPES[t]
            due = d.get("evidence_required_by")
            code = d.get("reason_code")
            reason = d.get("category") or code
            return cls(
                dispute_id=text(d.get("id"), "data.id"),
                reason=str(reason) if reason else None,
                dispute_stage=stage,
                **event_fields(
                    "checkout",
                    str(d["category"]) if d.get("category") else None,
                    reason_code=str(code) if code else None,
                    due_by=parse_time(due) if isinstance(due, str) and due else None,
                    psp_status=t,
                ),
                **common,
            )
        return None


# Webhook type -> canonical event and stage; the deadline is ``evidence_required_by``.
DISPUTE_TYPES: dict[str, tuple[type[DisputeEvent], DisputeStage]] = {
    "dispute_received": (DisputeOpened, "chargeback"),
    "dispute_evidence_required": (DisputeNeedsResponse, "chargeback"),
    "dispute_evidence_submitted": (DisputeUnderReview, "chargeback"),
    "dispute_evidence_acknowledged_by_scheme": (DisputeUnderReview, "chargeback"),
    "dispute_accepted": (DisputeAccepted, "chargeback"),
    "dispute_expired": (DisputeExpired, "chargeback"),
    "dispute_canceled": (DisputeWon, "chargeback"),  # the disputed amount is credited back
    "dispute_won": (DisputeWon, "chargeback"),
    "dispute_lost": (DisputeLost, "chargeback"),
    "dispute_arbitration_sent_to_scheme": (DisputePreArbitration, "pre_arbitration"),
    "dispute_arbitration_evidence_submitted": (DisputeUnderReview, "pre_arbitration"),
    "dispute_arbitration_won": (DisputeWon, "pre_arbitration"),
    "dispute_arbitration_lost": (DisputeLost, "pre_arbitration"),
}
