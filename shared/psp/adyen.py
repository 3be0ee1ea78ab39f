"""Adyen standard webhooks: HTTP Basic auth on the request plus an HMAC on every notification item.

The item HMAC is base64(HMAC-SHA256(hex-decoded key, ``pspReference:originalReference:
merchantAccountCode:merchantReference:value:currency:eventCode:success``)), missing fields empty.
Several keys may be configured (the old one stays valid for a while after a rotation). Adyen wants
the body ``[accepted]`` on success; an item with a bad HMAC rejects the whole delivery, so Adyen
retries it and nothing unverified is kept.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
from collections.abc import Mapping
from typing import Any

from shared.events.payments import (
    DisputeAccepted,
    DisputeEvent,
    DisputeExpired,
    DisputeLost,
    DisputeNeedsResponse,
    DisputeOpened,
    DisputeStage,
    DisputeUnderReview,
    DisputeWon,
    PaymentAuthorized,
    PaymentEvent,
    PaymentFailed,
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

_SIGNED = (
    "pspReference",
    "originalReference",
    "merchantAccountCode",
    "merchantReference",
    "value",
    "currency",
    "eventCode",
    "success",
)


def signing_string(item: Mapping[str, Any]) -> str:
    amount = mapping(item.get("amount"))
    values = {**item, "value": amount.get("value"), "currency": amount.get("currency")}
    parts = []
    for name in _SIGNED:
        v = values.get(name)
        parts.append("" if v is None else str(v))
    return ":".join(parts)


def item_signature(item: Mapping[str, Any], key_hex: str) -> str:
    digest = hmac.new(binascii.unhexlify(key_hex), signing_string(item).encode(), hashlib.sha256).digest()
    return base64.b64encode(digest).decode()


class AdyenAdapter:
    name = "adyen"
    content_types = ("application/json",)
    required_env = ("ADYEN_HMAC_KEYS", "ADYEN_BASIC_AUTH")
    optional_env: tuple[str, ...] = ()
    headers_of_interest = ("User-Agent", "Content-Type")
    invalid_signature_status = 401
    ack_body = "[accepted]"
    ack_mimetype = "text/plain"

    def verify(self, delivery: Delivery, config: PspConfig) -> list[Notification]:
        self._check_basic_auth(delivery.header("Authorization") or "", config.get("ADYEN_BASIC_AUTH"))
        try:
            body = json.loads(delivery.body)
        except (ValueError, UnicodeDecodeError) as exc:
            raise MalformedPayload("body is not JSON") from exc
        body = obj(body, "body")
        items = body.get("notificationItems")
        if not isinstance(items, list) or not items:
            raise MalformedPayload("notificationItems must be a non-empty list")
        live = body.get("live")
        if live not in ("true", "false"):
            raise MalformedPayload('live must be "true" or "false"')
        keys = []
        for k in config.secrets("ADYEN_HMAC_KEYS"):
            try:
                keys.append(binascii.unhexlify(k))
            except (binascii.Error, ValueError):
                continue  # a misconfigured key verifies nothing; the valid ones still work
        notes = []
        for wrapper in items:
            item = obj(obj(wrapper, "notification item").get("NotificationRequestItem"), "NotificationRequestItem")
            additional = mapping(item.get("additionalData"))
            sig = additional.get("hmacSignature")
            if not isinstance(sig, str) or not sig:
                raise InvalidSignature("notification item without hmacSignature")
            msg = signing_string(item).encode()
            expected = tuple(base64.b64encode(hmac.new(k, msg, hashlib.sha256).digest()) for k in keys)
            if not constant_time_in(sig, expected):
                raise InvalidSignature("notification item HMAC does not match")
            psp_ref = text(item.get("pspReference"), "pspReference")
            code = text(item.get("eventCode"), "eventCode")
            success = item.get("success")
            if success not in ("true", "false"):
                raise MalformedPayload('success must be "true" or "false"')
            # Adyen resends the same (eventCode, pspReference) with a changed success flag: a new fact.
            notes.append(
                Notification(
                    event_id=f"{code}:{psp_ref}:{success}",
                    event_type=code,
                    payload=item,
                    raw=json.dumps(wrapper, separators=(",", ":")),
                )
            )
        # Only now, with every item authenticated, does the (unsigned) live flag mean anything.
        if (live == "true") != config.livemode:
            raise ModeMismatch(f"live={live} delivery on a livemode={config.livemode} endpoint")
        return notes

    @staticmethod
    def _check_basic_auth(header: str, configured: str) -> None:
        scheme, _, token = header.partition(" ")
        if scheme.lower() != "basic" or not token:
            raise InvalidSignature("missing Basic authorization")
        try:
            given = base64.b64decode(token.strip(), validate=True)
        except (binascii.Error, ValueError) as exc:
            raise InvalidSignature("malformed Basic authorization") from exc
        if not constant_time_in(given, (configured.encode(),)):
            raise InvalidSignature("Basic authorization does not match")

    def normalise(self, note: Notification, config: PspConfig) -> PaymentEvent | None:
        item = note.payload
        code = note.event_type
        ok = item.get("success") == "true"
        additional = mapping(item.get("additionalData"))
        metadata = {k.removeprefix("metadata."): v for k, v in additional.items() if k.startswith("metadata.")}
        merchant_ref = item.get("merchantReference") if isinstance(item.get("merchantReference"), str) else None
        amount_obj = obj(item.get("amount"), "amount")
        amount = money_minor(amount_obj.get("value"), amount_obj.get("currency"))
        psp_ref = text(item.get("pspReference"), "pspReference")
        original = item.get("originalReference") if isinstance(item.get("originalReference"), str) else None
        common: dict[str, Any] = {
            "psp": "adyen",
            "account": config.account,
            "psp_event_id": note.event_id,
            "livemode": config.livemode,
            "psp_created_at": parse_time(item.get("eventDate")),
            "refs": refs_from(metadata, attempt_id=merchant_ref),
            "psp_payment_id": original or psp_ref,
        }
        if code == "AUTHORISATION":
            if ok:
                return PaymentAuthorized(amount=amount, **common)
            reason = str(item.get("reason") or "")
            raw, number = additional.get("refusalReasonRaw"), additional.get("refusalReasonCode")
            raw_code = raw or number
            # The issuer's raw answer is the most specific, then Adyen's reason text, then its number.
            decline = classify("adyen", *(str(c) for c in (raw, reason, number) if c))
            return PaymentFailed(
                amount=amount,
                decline_code=str(raw_code or reason) or None,
                failure_message=reason[:500] or None,
                **decline.event_fields(common["psp_created_at"]),
                **common,
            )
        if code == "CAPTURE" and ok:
            return PaymentSucceeded(amount=amount, **common)
        if code == "CAPTURE_FAILED":
            decline = classify("adyen", "CAPTURE_FAILED")
            return PaymentFailed(
                amount=amount, decline_code="CAPTURE_FAILED", **decline.event_fields(common["psp_created_at"]), **common
            )
        if code == "REFUND" and ok:
            # Adyen does not say whether the refund was full; consumers compare with the invoice.
            return PaymentRefunded(amount=amount, refund_id=psp_ref, refunded=amount, full=False, **common)
        if code in DISPUTE_CODES:
            return _dispute(code, item, additional, amount=amount, psp_ref=psp_ref, common=common)
        return None


# Dispute notifications -> canonical events, with the stage. NOTIFICATION_OF_CHARGEBACK and
# DISPUTE_OPENED_WITH_CHARGEBACK open the dispute; CHARGEBACK is the debit, the defence period runs on;
# REQUEST_FOR_INFORMATION is a retrieval (no money): evidence is asked for, nothing is withdrawn.
DISPUTE_CODES: dict[str, tuple[type[DisputeEvent], DisputeStage]] = {
    "NOTIFICATION_OF_CHARGEBACK": (DisputeOpened, "chargeback"),
    "DISPUTE_OPENED_WITH_CHARGEBACK": (DisputeOpened, "chargeback"),
    "REQUEST_FOR_INFORMATION": (DisputeNeedsResponse, "chargeback"),
    "CHARGEBACK": (DisputeNeedsResponse, "chargeback"),
    "INFORMATION_SUPPLIED": (DisputeUnderReview, "chargeback"),
    "DISPUTE_DEFENSE_PERIOD_ENDED": (DisputeExpired, "chargeback"),
    "CHARGEBACK_REVERSED": (DisputeWon, "chargeback"),
    "SECOND_CHARGEBACK": (DisputeLost, "pre_arbitration"),
    "PREARBITRATION_WON": (DisputeWon, "pre_arbitration"),
    "PREARBITRATION_LOST": (DisputeLost, "pre_arbitration"),
}
_DISPUTE_STATUS = {"accepted": DisputeAccepted, "expired": DisputeExpired, "won": DisputeWon, "lost": DisputeLost}


def _dispute(
    code: str,
    item: Mapping[str, Any],
    additional: Mapping[str, Any],
    *,
    amount: Any,
    psp_ref: str,
    common: dict[str, Any],
) -> PaymentEvent:
    """The deadline is ``additionalData.defensePeriodEndsAt``; the scheme code may carry a leading space."""
    cls, stage = DISPUTE_CODES[code]
    status = str(additional.get("disputeStatus") or "")
    if code == "DISPUTE_DEFENSE_PERIOD_ENDED" and status.lower() in _DISPUTE_STATUS:
        cls = _DISPUTE_STATUS[status.lower()]  # Accepted by the merchant rather than let expire
    due = additional.get("defensePeriodEndsAt")
    reason_code = additional.get("chargebackReasonCode") or additional.get("rfiReasonCode")
    dispute_id = additional.get("disputePspReference") or psp_ref
    return cls(
        amount=amount,
        dispute_id=str(dispute_id),
        reason=str(item.get("reason") or "") or None,
        dispute_stage=stage,
        **event_fields(
            "adyen",
            str(reason_code).strip() if reason_code else None,
            str(item.get("reason") or "") or None,
            reason_code=str(reason_code) if reason_code else None,
            due_by=parse_time(due) if isinstance(due, str) and due else None,
            psp_status=code,
        ),
        **common,
    )
