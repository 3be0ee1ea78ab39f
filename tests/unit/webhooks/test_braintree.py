"""Braintree: webhook_testing.sample_notification as oracle both ways, payload rules, mapping."""

from __future__ import annotations

import urllib.parse

import braintree
import pytest

from shared.domain.money import Money
from shared.events.payments import DisputeOpened, PaymentSucceeded
from shared.psp.base import InvalidSignature, MalformedPayload
from shared.psp.braintree import BraintreeAdapter
from shared.psp.signing import braintree_form
from tests.fixtures.psp import raw
from tests.unit.webhooks.helpers import config, delivery

PUB, PRIV = "test_public_key_demo", "test_private_key_not_a_secret"
CFG = config("braintree", BRAINTREE_MERCHANT_ID="merchant_demo", BRAINTREE_PUBLIC_KEY=PUB, BRAINTREE_PRIVATE_KEY=PRIV)
GW = braintree.BraintreeGateway(
    braintree.Configuration(
        braintree.Environment.Sandbox, merchant_id="merchant_demo", public_key=PUB, private_key=PRIV
    )
)
FORM = "application/x-www-form-urlencoded"
A = BraintreeAdapter()


def sdk_form(kind: str, subject_id: str) -> bytes:
    s = GW.webhook_testing.sample_notification(kind, subject_id)
    return urllib.parse.urlencode({"bt_signature": s["bt_signature"], "bt_payload": s["bt_payload"]}).encode()


def test_accepts_sdk_sample_and_maps_settlement() -> None:
    [note] = A.verify(
        delivery(sdk_form(braintree.WebhookNotification.Kind.TransactionSettled, "tx1"), content_type=FORM), CFG
    )
    assert note.event_id.startswith("transaction_settled:tx1:")
    ev = A.normalise(note, CFG)
    assert isinstance(ev, PaymentSucceeded)
    assert (ev.psp_payment_id, ev.amount) == ("tx1", Money(10000, "USD"))


def test_dispute_opened_sample() -> None:
    [note] = A.verify(
        delivery(sdk_form(braintree.WebhookNotification.Kind.DisputeOpened, "dp1"), content_type=FORM), CFG
    )
    ev = A.normalise(note, CFG)
    assert isinstance(ev, DisputeOpened)
    assert (ev.dispute_id, ev.reason, ev.amount) == ("dp1", "fraud", Money(10000, "USD"))


def test_sdk_parses_what_our_signer_signs_and_refs_come_from_custom_fields() -> None:
    xml = raw("braintree_transaction_settled.xml").decode()
    body = braintree_form(xml, PUB, PRIV)
    form = urllib.parse.parse_qs(body.decode())
    parsed = GW.webhook_notification.parse(form["bt_signature"][0], form["bt_payload"][0])
    assert parsed.kind == "transaction_settled"
    [note] = A.verify(delivery(body, content_type=FORM), CFG)
    ev = A.normalise(note, CFG)
    assert isinstance(ev, PaymentSucceeded)
    assert (ev.refs.invoice_id, ev.refs.customer_id, ev.refs.attempt_id) == (
        "INV-2026-000600",
        "cust-6",
        "attempt-600-1",
    )
    assert ev.amount == Money(4999, "USD")


def test_other_public_key_or_tampered_payload_rejected() -> None:
    body = sdk_form(braintree.WebhookNotification.Kind.TransactionSettled, "tx1")
    other = config("braintree", BRAINTREE_MERCHANT_ID="m", BRAINTREE_PUBLIC_KEY="another", BRAINTREE_PRIVATE_KEY=PRIV)
    with pytest.raises(InvalidSignature):
        A.verify(delivery(body, content_type=FORM), other)
    form = urllib.parse.parse_qs(body.decode())
    payload = form["bt_payload"][0]
    tampered = urllib.parse.urlencode(
        {"bt_signature": form["bt_signature"][0], "bt_payload": "A" + payload[1:]}
    ).encode()
    with pytest.raises(InvalidSignature):
        A.verify(delivery(tampered, content_type=FORM), CFG)


@pytest.mark.parametrize(
    "body", [b"", b"bt_signature=x", b"\xff\xfe", b"a=1&a=2&a=3&a=4&a=5&a=6&a=7&a=8&a=9&a=10&a=11"]
)
def test_malformed_forms(body: bytes) -> None:
    with pytest.raises((MalformedPayload, InvalidSignature)):
        A.verify(delivery(body, content_type=FORM), CFG)
