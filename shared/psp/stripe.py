"""Stripe: ``Stripe-Signature`` HMAC-SHA256 over ``{t}.{raw body}``, 300 s replay window.

Several secrets may be active at once (rotation): Stripe then sends one ``v1`` per secret and any
match is enough. ``v0`` and unknown schemes are ignored. The stdlib does the HMAC, so the function
bundle does not ship the Stripe SDK; the SDK is the oracle in the tests.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import Mapping
from typing import Any

from shared.events.payments import (
    DisputeEvent,
    DisputeLost,
    DisputeNeedsResponse,
    DisputeOpened,
    DisputeUnderReview,
    DisputeWon,
    PaymentAuthorized,
    PaymentEvent,
    PaymentFailed,
    PaymentMethodRevoked,
    PaymentPending,
    PaymentRefunded,
    PaymentSucceeded,
)
from shared.psp.base import (
    Delivery,
    InvalidSignature,
    MalformedPayload,
    ModeMismatch,
    Notification,
    PspConfig,
    classify,
    constant_time_in,
    event_fields,
    mapping,
    money_minor,
    obj,
    parse_time,
    refs_from,
    text,
)

TOLERANCE_S = 300


class StripeAdapter:
    name = "stripe"
    content_types = ("application/json",)
    required_env = ("STRIPE_WEBHOOK_SECRETS",)
    optional_env: tuple[str, ...] = ()
    headers_of_interest = ("User-Agent", "Content-Type")
    invalid_signature_status = 401
    ack_body = '{"received": true}'
    ack_mimetype = "application/json"

    def __init__(self, tolerance_s: int = TOLERANCE_S) -> None:
        if tolerance_s <= 0:
            raise ValueError("a zero tolerance disables replay protection")
        self.tolerance_s = tolerance_s

    def verify(self, delivery: Delivery, config: PspConfig) -> list[Notification]:
        header = delivery.header("Stripe-Signature")
        if not header:
            raise InvalidSignature("missing Stripe-Signature header")
        timestamp: int | None = None
        v1: list[str] = []
        for part in header.split(","):
            key, sep, value = part.strip().partition("=")
            if not sep:
                continue
            if key == "t" and value.isdigit() and len(value) <= 12:
                timestamp = int(value)
            elif key == "v1":
                v1.append(value.strip())
        if timestamp is None or not v1:
            raise InvalidSignature("Stripe-Signature has no timestamp or no v1 signature")
        signed = str(timestamp).encode() + b"." + delivery.body
        expected = tuple(
            hmac.new(key, signed, hashlib.sha256).hexdigest() for key in config.keys("STRIPE_WEBHOOK_SECRETS")
        )
        if not any(constant_time_in(sig, expected) for sig in v1):
            raise InvalidSignature("no v1 signature matches an active secret")
        age = delivery.received_at.timestamp() - timestamp
        if abs(age) > self.tolerance_s:
            raise InvalidSignature(f"signature timestamp outside the {self.tolerance_s} s window ({int(age)} s)")
        event = _json(delivery.body)
        livemode = event.get("livemode")
        if not isinstance(livemode, bool):
            raise MalformedPayload("event.livemode must be a boolean")
        if livemode != config.livemode:
            raise ModeMismatch(f"livemode={livemode} event on a livemode={config.livemode} endpoint")
        return [
            Notification(
                event_id=text(event.get("id"), "event.id"), event_type=text(event.get("type"), "type"), payload=event
            )
        ]

    def normalise(self, note: Notification, config: PspConfig) -> PaymentEvent | None:
        ev = note.payload
        o = obj(obj(ev.get("data"), "data").get("object"), "data.object")
        common: dict[str, Any] = {
            "psp": "stripe",
            "account": config.account,
            "psp_event_id": note.event_id,
            "livemode": bool(ev.get("livemode")),
            "psp_created_at": parse_time(ev.get("created")),
            "refs": refs_from(o.get("metadata")),
        }
        t = note.event_type
        if t.startswith("payment_intent."):
            common["psp_payment_id"] = text(o.get("id"), "payment_intent.id")
            if t == "payment_intent.succeeded":
                return PaymentSucceeded(amount=money_minor(o.get("amount_received"), o.get("currency")), **common)
            if t == "payment_intent.amount_capturable_updated":
                return PaymentAuthorized(amount=money_minor(o.get("amount_capturable"), o.get("currency")), **common)
            if t == "payment_intent.processing":
                return PaymentPending(amount=money_minor(o.get("amount"), o.get("currency")), **common)
            if t == "payment_intent.payment_failed":
                err = mapping(o.get("last_payment_error"))
                code = err.get("decline_code") or err.get("code")
                decline = classify("stripe", _s(err.get("decline_code")), _s(err.get("code")))
                return PaymentFailed(
                    amount=money_minor(o.get("amount"), o.get("currency")),
                    decline_code=str(code) if code else None,
                    failure_message=str(err["message"])[:500] if err.get("message") else None,
                    **decline.event_fields(common["psp_created_at"]),
                    **common,
                )
            return None
        if t == "charge.refunded":
            return _refund(o, common)
        if t in DISPUTE_TYPES:
            return _dispute(t, o, common)
        if t == "payment_method.detached":
            common["psp_payment_id"] = text(o.get("id"), "payment_method.id")
            return PaymentMethodRevoked(reason="detached", **common)
        if t == "mandate.updated" and o.get("status") == "inactive":
            common["psp_payment_id"] = text(o.get("id"), "mandate.id")
            return PaymentMethodRevoked(reason="mandate_inactive", **common)
        return None


def _refund(charge: Mapping[str, Any], common: dict[str, Any]) -> PaymentRefunded:
    """``charge.refunded``: the newest refund when Stripe lists it, else the cumulative state.

    Since API version 2022-11-15 the charge no longer embeds its refunds; then the refund is identified
    by the cumulative amount refunded (each partial refund raises it), which keeps the fact key unique.
    """
    common["psp_payment_id"] = str(charge.get("payment_intent") or text(charge.get("id"), "charge.id"))
    currency = charge.get("currency")
    refunds = charge.get("refunds")
    data = refunds.get("data") if isinstance(refunds, Mapping) else None
    if isinstance(data, list) and data and isinstance(data[0], Mapping):
        refund_id = text(data[0].get("id"), "refund.id")
        refunded = money_minor(data[0].get("amount"), currency)
    else:
        refunded = money_minor(charge.get("amount_refunded"), currency)
        refund_id = f"{charge.get('id')}:{refunded.amount}"
    return PaymentRefunded(
        amount=money_minor(charge.get("amount"), currency),
        refund_id=refund_id,
        refunded=refunded,
        full=charge.get("refunded") is True,
        **common,
    )


def _json(body: bytes) -> Mapping[str, Any]:
    try:
        value = json.loads(body)
    except (ValueError, UnicodeDecodeError) as exc:
        raise MalformedPayload("body is not JSON") from exc
    return obj(value, "event")


def _s(v: Any) -> str | None:
    return v if isinstance(v, str) else None


DISPUTE_TYPES = frozenset({"charge.dispute.created", "charge.dispute.updated", "charge.dispute.closed"})
# Dispute status -> canonical event (created is always dispute.opened: the funds are withdrawn then).
# prevented ends the dispute in our favour; warning_closed (an inquiry closed without a chargeback) moves
# no money and publishes nothing, as before: the inquiry's document stays at its last status.
_DISPUTE_STATUS: dict[str, type[DisputeEvent]] = {
    "warning_needs_response": DisputeNeedsResponse,
    "needs_response": DisputeNeedsResponse,
    "warning_under_review": DisputeUnderReview,
    "under_review": DisputeUnderReview,
    "won": DisputeWon,
    "prevented": DisputeWon,
    "lost": DisputeLost,
}


def _dispute(t: str, o: Mapping[str, Any], common: dict[str, Any]) -> PaymentEvent | None:
    """A dispute notification; the deadline is ``evidence_details.due_by`` (unix seconds, 0: no response)."""
    common["psp_payment_id"] = str(o.get("payment_intent") or text(o.get("charge"), "dispute.charge"))
    status = o.get("status") if isinstance(o.get("status"), str) else None
    due = mapping(o.get("evidence_details")).get("due_by")
    card = mapping(mapping(o.get("payment_method_details")).get("card"))
    code = o.get("network_reason_code") or card.get("network_reason_code")
    reason = o.get("reason") if isinstance(o.get("reason"), str) else None
    fields = event_fields(
        "stripe",
        reason,
        reason_code=str(code) if code else None,
        due_by=parse_time(due) if isinstance(due, int) and due > 0 else None,
        psp_status=status,
    )
    dispute: dict[str, Any] = {
        "dispute_id": text(o.get("id"), "dispute.id"),
        "reason": reason,
        "amount": money_minor(o.get("amount"), o.get("currency")),
        **fields,
    }
    if t == "charge.dispute.created":
        return DisputeOpened(**dispute, **common)
    cls = _DISPUTE_STATUS.get(status or "")
    if cls is None or (t == "charge.dispute.closed") != (cls in (DisputeWon, DisputeLost)):
        return None  # an update that says nothing new, or a closed event without an outcome
    return cls(**dispute, **common)
