"""Adyen: item HMAC against the Adyen SDK as oracle, Basic auth, key rotation, mode, batch mapping."""

from __future__ import annotations

import json
from typing import Any

import Adyen.util as adyen_util
import pytest

from shared.domain.money import Money
from shared.events.payments import PaymentAuthorized, PaymentFailed, PaymentSucceeded
from shared.psp.adyen import AdyenAdapter
from shared.psp.base import InvalidSignature, MalformedPayload, ModeMismatch
from shared.psp.signing import adyen_sign, basic_auth
from tests.fixtures.psp import compact, load
from tests.unit.webhooks.helpers import config, delivery

KEY = "44782DEF547AAA06C910C43932B1EB0C71FC68D9D0C057550C48EC2ACF6BA056"
OLD_KEY = "00112233445566778899AABBCCDDEEFF00112233445566778899AABBCCDDEEFF"
AUTH = "adyen-webhook:not-a-real-password"
CFG = config("adyen", ADYEN_HMAC_KEYS=f"{KEY},{OLD_KEY}", ADYEN_BASIC_AUTH=AUTH)
A = AdyenAdapter()
HEADERS = {"Authorization": basic_auth(AUTH)}


def sdk_signed(name: str, key: str = KEY) -> dict[str, Any]:
    body = load(name)
    for w in body["notificationItems"]:
        item = w["NotificationRequestItem"]
        item.setdefault("additionalData", {})["hmacSignature"] = adyen_util.generate_notification_sig(
            item, key
        ).decode()
    return body


def test_accepts_items_signed_by_the_sdk() -> None:
    notes = A.verify(delivery(compact(sdk_signed("adyen_batch.json")), HEADERS), CFG)
    assert [n.event_id for n in notes] == [
        "AUTHORISATION:NC6HT9CRT65ZGN82:false",
        "CAPTURE:V4HZ4RBFJGXXGN82:true",
        "REPORT_AVAILABLE:settlement_detail_report_batch_1.csv:true",
    ]


def test_sdk_accepts_what_our_signer_signs() -> None:
    body = adyen_sign(load("adyen_batch.json"), KEY)
    for w in body["notificationItems"]:
        assert adyen_util.is_valid_hmac_notification(w["NotificationRequestItem"], KEY)


def test_old_key_still_accepted_after_rotation() -> None:
    assert A.verify(delivery(compact(sdk_signed("adyen_authorisation.json", OLD_KEY)), HEADERS), CFG)


def test_one_bad_item_rejects_the_whole_delivery() -> None:
    body = sdk_signed("adyen_batch.json")
    body["notificationItems"][1]["NotificationRequestItem"]["amount"]["value"] = 1
    with pytest.raises(InvalidSignature):
        A.verify(delivery(compact(body), HEADERS), CFG)


@pytest.mark.parametrize(
    "headers",
    [
        {},
        {"Authorization": basic_auth("adyen-webhook:wrong")},
        {"Authorization": "Basic !!!"},
        {"Authorization": "Bearer x"},
    ],
)
def test_basic_auth_is_required(headers: dict[str, str]) -> None:
    with pytest.raises(InvalidSignature):
        A.verify(delivery(compact(sdk_signed("adyen_authorisation.json")), headers), CFG)


def test_unsigned_item_is_rejected() -> None:
    with pytest.raises(InvalidSignature):
        A.verify(delivery(compact(load("adyen_authorisation.json")), HEADERS), CFG)


def test_live_flag_must_match() -> None:
    live_cfg = config("adyen", livemode=True, ADYEN_HMAC_KEYS=KEY, ADYEN_BASIC_AUTH=AUTH)
    with pytest.raises(ModeMismatch):
        A.verify(delivery(compact(sdk_signed("adyen_authorisation.json")), HEADERS), live_cfg)


@pytest.mark.parametrize(
    "body", [b"[]", b"{", b'{"live":"false","notificationItems":[]}', b'{"live":1,"notificationItems":[{}]}']
)
def test_malformed(body: bytes) -> None:
    with pytest.raises(MalformedPayload):
        A.verify(delivery(body, HEADERS), CFG)


def test_mapping_of_a_batch() -> None:
    notes = A.verify(delivery(compact(sdk_signed("adyen_batch.json")), HEADERS), CFG)
    failed, captured, report = (A.normalise(n, CFG) for n in notes)
    assert isinstance(failed, PaymentFailed)
    assert failed.retryable is True
    assert failed.decline_code == "05 : Do not honor"
    assert isinstance(captured, PaymentSucceeded)
    assert captured.psp_payment_id == "QFQTPCQ8HXSKGK82"  # the authorisation the capture belongs to
    assert captured.amount == Money(10100, "EUR")
    assert report is None


def test_authorisation_refs_from_metadata() -> None:
    [note] = A.verify(delivery(compact(sdk_signed("adyen_authorisation.json")), HEADERS), CFG)
    ev = A.normalise(note, CFG)
    assert isinstance(ev, PaymentAuthorized)
    assert (ev.refs.invoice_id, ev.refs.customer_id, ev.refs.attempt_id) == (
        "INV-2026-000200",
        "cust-9",
        "attempt-200-1",
    )
    assert ev.psp_created_at.isoformat() == "2026-11-20T10:15:31+01:00"


def test_signature_is_over_fields_not_json_layout() -> None:
    body = sdk_signed("adyen_authorisation.json")
    pretty = json.dumps(body, indent=4).encode()
    assert A.verify(delivery(pretty, HEADERS), CFG)


def test_live_flag_is_only_judged_after_the_hmac() -> None:
    body = load("adyen_authorisation.json")  # unsigned
    body["live"] = "true"
    with pytest.raises(InvalidSignature):
        A.verify(delivery(compact(body), HEADERS), CFG)


def test_adyen_published_example_vector() -> None:
    """The example key, item and signature Adyen publishes for its notification HMAC."""
    item = {
        "pspReference": "7914073381342284",
        "merchantAccountCode": "TestMerchant",
        "merchantReference": "TestPayment-1407325143704",
        "amount": {"value": 1130, "currency": "EUR"},
        "eventCode": "AUTHORISATION",
        "success": "true",
        "additionalData": {"hmacSignature": "coqCmt/IZ4E3CzPvMY8zTjQVL5hYJUiBRg8UU+iCWo0="},
    }
    body = compact({"live": "false", "notificationItems": [{"NotificationRequestItem": item}]})
    cfg = config("adyen", ADYEN_HMAC_KEYS=KEY, ADYEN_BASIC_AUTH=AUTH)
    [note] = A.verify(delivery(body, HEADERS), cfg)
    assert note.event_id == "AUTHORISATION:7914073381342284:true"
