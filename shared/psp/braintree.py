"""Braintree: a form POST of ``bt_signature`` and ``bt_payload`` (base64 XML).

``bt_signature`` holds ``public_key|hex(HMAC-SHA1(sha1(private_key), bt_payload))`` pairs joined by
``&``; the pair for our public key must match the payload as sent (or with a trailing newline, as the
SDK accepts). Braintree notifications have no id: ``kind:subject id:timestamp`` identifies one (a
retry resends the same payload). No mode flag either: the configured mode (separate sandbox keys)
is the event's mode. The XML is parsed only after the signature verified it came from Braintree.
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import hashlib
import hmac
import re
import urllib.parse
import xml.etree.ElementTree as ET
from typing import Any

from shared.events.payments import (
    DisputeAccepted,
    DisputeEvent,
    DisputeExpired,
    DisputeLost,
    DisputeOpened,
    DisputeUnderReview,
    DisputeWon,
    PaymentEvent,
    PaymentFailed,
    PaymentMethodRevoked,
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
    money_decimal,
    parse_time,
    refs_from,
)

_PAYLOAD_CHARS = re.compile(rb"[^A-Za-z0-9+=/\n]")


def sign(private_key: str, payload: bytes) -> str:
    return hmac.new(hashlib.sha1(private_key.encode()).digest(), payload, hashlib.sha1).hexdigest()  # noqa: S324 (Braintree's scheme)


class BraintreeAdapter:
    name = "braintree"
    content_types = ("application/x-www-form-urlencoded",)
    required_env = ("BRAINTREE_MERCHANT_ID", "BRAINTREE_PUBLIC_KEY", "BRAINTREE_PRIVATE_KEY")
    optional_env: tuple[str, ...] = ()
    headers_of_interest = ("User-Agent", "Content-Type")
    invalid_signature_status = 401
    ack_body = '{"received": true}'
    ack_mimetype = "application/json"

    def verify(self, delivery: Delivery, config: PspConfig) -> list[Notification]:
        try:
            form = urllib.parse.parse_qs(delivery.body.decode("ascii"), strict_parsing=True, max_num_fields=10)
        except (UnicodeDecodeError, ValueError) as exc:
            raise MalformedPayload("body is not a form") from exc
        sig = (form.get("bt_signature") or [""])[0]
        payload = (form.get("bt_payload") or [""])[0].encode()
        if not sig or not payload:
            raise MalformedPayload("bt_signature and bt_payload are required")
        if _PAYLOAD_CHARS.search(payload):
            raise InvalidSignature("bt_payload contains illegal characters")
        ours = [
            p.split("|", 1)[1]
            for p in sig.split("&")
            if p.split("|", 1)[0] == config.get("BRAINTREE_PUBLIC_KEY") and "|" in p
        ]
        if not ours:
            raise InvalidSignature("no signature for our public key")
        key = config.get("BRAINTREE_PRIVATE_KEY")
        expected = (sign(key, payload), sign(key, payload + b"\n"))
        if not any(constant_time_in(s, expected) for s in ours):
            raise InvalidSignature("bt_signature does not match bt_payload")
        try:
            xml_text = base64.b64decode(payload).decode()
            root = ET.fromstring(xml_text)  # noqa: S314 (authenticated above)
        except (binascii.Error, UnicodeDecodeError, ET.ParseError) as exc:
            raise MalformedPayload("bt_payload is not base64 XML") from exc
        if root.tag != "notification":
            raise MalformedPayload("bt_payload is not a notification")
        kind = (root.findtext("kind") or "").strip()
        timestamp = (root.findtext("timestamp") or "").strip()
        subject = root.find("subject")
        entity = subject[0] if subject is not None and len(subject) else None
        subject_id = (entity.findtext("id") if entity is not None else None) or ""
        if not kind or not timestamp:
            raise MalformedPayload("notification without kind or timestamp")
        return [
            Notification(
                event_id=f"{kind}:{subject_id.strip()}:{timestamp}",
                event_type=kind,
                payload={"kind": kind, "timestamp": timestamp, "entity": entity},
                raw=xml_text,
            )
        ]

    def normalise(self, note: Notification, config: PspConfig) -> PaymentEvent | None:
        entity: Any = note.payload["entity"]
        if entity is None:
            return None
        kind = note.event_type

        def field(name: str) -> str | None:
            v = entity.findtext(name)
            return v.strip() if v and v.strip() else None

        common: dict[str, Any] = {
            "psp": "braintree",
            "account": config.account,
            "psp_event_id": note.event_id,
            "livemode": config.livemode,
            "psp_created_at": parse_time(note.payload["timestamp"]),
        }
        currency = field("currency-iso-code")
        if kind in ("transaction_settled", "transaction_settlement_declined"):
            custom = {c.tag.replace("-", "_"): (c.text or "") for c in entity.find("custom-fields") or []}
            common.update(
                psp_payment_id=field("id") or "",
                amount=money_decimal(field("amount"), currency),
                refs=refs_from(custom, attempt_id=field("order-id")),
            )
            if kind == "transaction_settled":
                return PaymentSucceeded(**common)
            code = field("processor-settlement-response-code")
            decline = classify("braintree", code, "settlement_declined")
            return PaymentFailed(
                decline_code=code,
                failure_message=field("processor-settlement-response-text"),
                **decline.event_fields(common["psp_created_at"]),
                **common,
            )
        if kind in DISPUTE_KINDS:
            tx = entity.find("transaction")
            tx_id = (tx.findtext("id") if tx is not None else None) or field("id") or ""
            due = field("reply-by-date")
            return DISPUTE_KINDS[kind](
                psp_payment_id=tx_id.strip(),
                dispute_id=field("id") or "",
                reason=field("reason"),
                amount=money_decimal(field("amount-disputed") or field("amount"), currency),
                dispute_stage="pre_arbitration" if field("kind") == "pre_arbitration" else "chargeback",
                **event_fields(
                    "braintree",
                    field("reason"),
                    reason_code=field("reason-code"),
                    # reply_by_date is a date: the end of that day, UTC, is when a reply is too late
                    due_by=_end_of_day(due) if due else None,
                    psp_status=field("status") or kind,
                ),
                **common,
            )
        if kind == "payment_method_revoked_by_customer":
            token = field("token") or field("id")
            if token:
                return PaymentMethodRevoked(psp_payment_id=token, reason=kind, **common)
        return None


DISPUTE_KINDS: dict[str, type[DisputeEvent]] = {
    "dispute_opened": DisputeOpened,
    "dispute_disputed": DisputeUnderReview,  # our evidence was finalized
    "dispute_under_review": DisputeUnderReview,
    "dispute_accepted": DisputeAccepted,
    "dispute_auto_accepted": DisputeAccepted,  # no reply by reply_by_date: Braintree accepted for us
    "dispute_expired": DisputeExpired,
    "dispute_won": DisputeWon,
    "dispute_lost": DisputeLost,
}


def _end_of_day(value: str) -> dt.datetime:
    """``reply_by_date`` (YYYY-MM-DD) as the first instant of the next day, UTC."""
    try:
        day = dt.date.fromisoformat(value[:10])
    except ValueError as exc:
        raise MalformedPayload(f"bad reply_by_date {value!r}") from exc
    return dt.datetime.combine(day + dt.timedelta(days=1), dt.time(), dt.UTC)
