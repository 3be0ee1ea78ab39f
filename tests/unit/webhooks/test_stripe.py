"""Stripe: verification against the Stripe SDK as oracle, rotation, replay window, mode, mapping."""

from __future__ import annotations

import datetime as dt
import time

import pytest
import stripe

from shared.domain.money import Money
from shared.events.payments import DisputeLost, PaymentFailed, PaymentRefunded, PaymentSucceeded
from shared.psp.base import InvalidSignature, MalformedPayload, ModeMismatch
from shared.psp.signing import stripe_header
from shared.psp.stripe import StripeAdapter
from tests.fixtures.psp import compact, load
from tests.unit.webhooks.helpers import config, delivery

SECRET = "whsec_test_" + "a" * 32
OLD = "whsec_test_" + "b" * 32
BODY = compact(load("stripe_payment_intent_succeeded.json"))
CFG = config("stripe", STRIPE_WEBHOOK_SECRETS=f"{SECRET},{OLD}")
A = StripeAdapter()


def test_accepts_what_the_sdk_signs() -> None:
    header = stripe.WebhookSignature.generate_signature_header(BODY.decode(), SECRET)
    [note] = A.verify(delivery(BODY, {"Stripe-Signature": header}), CFG)
    assert note.event_id == "evt_3Pm0aXJ2eZvKYlo21a4Jx8Qk"
    assert note.event_type == "payment_intent.succeeded"


def test_sdk_accepts_what_our_signer_signs() -> None:
    event = stripe.Webhook.construct_event(BODY.decode(), stripe_header(BODY, SECRET), SECRET, tolerance=300)
    assert event["id"] == "evt_3Pm0aXJ2eZvKYlo21a4Jx8Qk"


def test_rotation_any_v1_matches_and_v0_is_ignored() -> None:
    old_only = stripe.WebhookSignature.generate_signature_header(BODY.decode(), OLD)
    unknown = stripe.WebhookSignature.generate_signature_header(BODY.decode(), "whsec_unknown")
    t = old_only.split(",")[0]
    both = f"{t},v1={unknown.split('v1=')[1]},v1={old_only.split('v1=')[1]},v0=deadbeef"
    assert A.verify(delivery(BODY, {"Stripe-Signature": both}), CFG)
    only_v0 = f"{t},v0={old_only.split('v1=')[1]}"
    with pytest.raises(InvalidSignature):
        A.verify(delivery(BODY, {"Stripe-Signature": only_v0}), CFG)


@pytest.mark.parametrize("age", [301, -301, 10_000])
def test_replay_window_is_300_seconds_like_the_sdk(age: int) -> None:
    now = int(time.time())
    header = stripe.WebhookSignature.generate_signature_header(BODY.decode(), SECRET, timestamp=now - age)
    if age > 0:  # the SDK checks only the past; we also refuse timestamps from the future (clock skew)
        with pytest.raises(stripe.SignatureVerificationError):
            stripe.Webhook.construct_event(BODY.decode(), header, SECRET, tolerance=300)
    with pytest.raises(InvalidSignature, match="window"):
        A.verify(delivery(BODY, {"Stripe-Signature": header}), CFG)


def test_inside_window_is_accepted() -> None:
    at = dt.datetime.now(dt.UTC)
    header = stripe.WebhookSignature.generate_signature_header(
        BODY.decode(), SECRET, timestamp=int(at.timestamp()) - 299
    )
    assert A.verify(delivery(BODY, {"Stripe-Signature": header}, at=at), CFG)


@pytest.mark.parametrize(
    "header",
    ["", "t=1", "v1=abc", "garbage", "t=notanumber,v1=00", "t=99999999999999999999,v1=00", "t=1,v1=é"],
)
def test_malformed_headers_are_401(header: str) -> None:
    with pytest.raises(InvalidSignature):
        A.verify(delivery(BODY, {"Stripe-Signature": header} if header else {}), CFG)


def test_tampered_body_is_rejected_by_both() -> None:
    header = stripe.WebhookSignature.generate_signature_header(BODY.decode(), SECRET)
    tampered = BODY.replace(b"2000", b"2001")
    with pytest.raises(stripe.SignatureVerificationError):
        stripe.Webhook.construct_event(tampered.decode(), header, SECRET)
    with pytest.raises(InvalidSignature):
        A.verify(delivery(tampered, {"Stripe-Signature": header}), CFG)


def test_livemode_mismatch_is_rejected() -> None:
    header = stripe_header(BODY, SECRET)
    live_cfg = config("stripe", livemode=True, STRIPE_WEBHOOK_SECRETS=SECRET)
    with pytest.raises(ModeMismatch):
        A.verify(delivery(BODY, {"Stripe-Signature": header}), live_cfg)


def test_signed_non_json_is_malformed() -> None:
    body = b"not json"
    with pytest.raises(MalformedPayload):
        A.verify(delivery(body, {"Stripe-Signature": stripe_header(body, SECRET)}), CFG)


def _event(name: str):
    body = compact(load(name))
    [note] = A.verify(delivery(body, {"Stripe-Signature": stripe_header(body, SECRET)}), CFG)
    return A.normalise(note, CFG)


def test_payment_intent_succeeded_maps_to_payment_succeeded() -> None:
    ev = _event("stripe_payment_intent_succeeded.json")
    assert isinstance(ev, PaymentSucceeded)
    assert ev.amount == Money(2000, "EUR")
    assert ev.psp_payment_id == "pi_3Pm0aXJ2eZvKYlo21uE2hG4m"
    assert (ev.refs.customer_id, ev.refs.subscription_id, ev.refs.invoice_id) == ("cust-42", "sub-7", "INV-2026-000123")
    assert ev.psp_created_at == dt.datetime(2024, 8, 5, 11, 0, tzinfo=dt.UTC)
    assert ev.fact_key() == "stripe:default:pi_3Pm0aXJ2eZvKYlo21uE2hG4m:payment.succeeded"


def test_hard_decline_is_not_retryable() -> None:
    ev = _event("stripe_payment_intent_payment_failed.json")
    assert isinstance(ev, PaymentFailed)
    assert ev.decline_code == "stolen_card"
    assert ev.retryable is False
    assert ev.amount == Money(1500, "USD")


def test_partial_refund_uses_the_refund_id() -> None:
    ev = _event("stripe_charge_refunded.json")
    assert isinstance(ev, PaymentRefunded)
    assert (ev.refund_id, ev.refunded, ev.full) == ("re_3Pm0cZJ2eZvKYlo21kFz0aQe", Money(500, "EUR"), False)


def test_dispute_lost() -> None:
    ev = _event("stripe_charge_dispute_closed.json")
    assert isinstance(ev, DisputeLost)
    assert ev.dispute_id == "dp_1Pm0dAJ2eZvKYlo2bQ3jU9fN"
    assert ev.psp_payment_id == "pi_3Pm0aXJ2eZvKYlo21uE2hG4m"


def test_unmapped_type_gives_none() -> None:
    assert _event("stripe_customer_created.json") is None


def test_zero_tolerance_is_refused() -> None:
    with pytest.raises(ValueError, match="tolerance"):
        StripeAdapter(tolerance_s=0)


def test_refund_without_embedded_refunds_is_keyed_by_cumulative_amount() -> None:
    event = load("stripe_charge_refunded.json")
    charge = event["data"]["object"]
    del charge["refunds"]
    charge.update(amount_refunded=2000, refunded=True)
    body = compact(event)
    [note] = A.verify(delivery(body, {"Stripe-Signature": stripe_header(body, SECRET)}), CFG)
    ev = A.normalise(note, CFG)
    assert isinstance(ev, PaymentRefunded)
    assert (ev.refund_id, ev.refunded, ev.full) == ("ch_3Pm0aXJ2eZvKYlo21JkOqT7b:2000", Money(2000, "EUR"), True)
