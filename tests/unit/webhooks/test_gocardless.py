"""GoCardless: batch signature with gocardless-pro's webhooks.parse as oracle, 498, mapping."""

from __future__ import annotations

import pytest
from gocardless_pro import webhooks
from gocardless_pro.errors import InvalidSignatureError

from shared.events.payments import PaymentFailed, PaymentMethodRevoked, PaymentSucceeded
from shared.psp.base import InvalidSignature
from shared.psp.gocardless import GoCardlessAdapter
from shared.psp.signing import hex_hmac
from tests.fixtures.psp import raw
from tests.unit.webhooks.helpers import config, delivery

SECRET = "gc_test_not_a_secret_1"
NEXT = "gc_test_not_a_secret_2"
BODY = raw("gocardless_batch.json")
CFG = config("gocardless", GOCARDLESS_WEBHOOK_SECRETS=f"{SECRET},{NEXT}")
A = GoCardlessAdapter()


@pytest.mark.parametrize("secret", [SECRET, NEXT])
def test_same_verdict_as_the_sdk_for_a_valid_signature(secret: str) -> None:
    sig = hex_hmac(BODY, secret)
    assert [e.id for e in webhooks.parse(BODY, secret, sig)] == [
        n.event_id for n in A.verify(delivery(BODY, {"Webhook-Signature": sig}), CFG)
    ]


@pytest.mark.parametrize("sig", ["", "00" * 32, hex_hmac(BODY, "other"), hex_hmac(BODY + b" ", SECRET)])
def test_same_verdict_as_the_sdk_for_a_bad_signature_and_498(sig: str) -> None:
    with pytest.raises(InvalidSignatureError):
        webhooks.parse(BODY, SECRET, sig)
    with pytest.raises(InvalidSignature) as info:
        A.verify(delivery(BODY, {"Webhook-Signature": sig} if sig else {}), CFG)
    assert info.value.status == 498


def test_each_event_of_the_batch_is_mapped() -> None:
    notes = A.verify(delivery(BODY, {"Webhook-Signature": hex_hmac(BODY, SECRET)}), CFG)
    confirmed, failed, cancelled, payout = (A.normalise(n, CFG) for n in notes)
    assert isinstance(confirmed, PaymentSucceeded)
    assert confirmed.amount is None  # GoCardless events carry no amount
    assert (confirmed.refs.invoice_id, confirmed.refs.subscription_id) == ("INV-2026-000400", "sub-40")
    assert isinstance(failed, PaymentFailed)
    assert (failed.decline_code, failed.retryable) == ("ARUDD-0", True)
    assert isinstance(cancelled, PaymentMethodRevoked)
    assert (cancelled.psp_payment_id, cancelled.reason) == ("MD000AMA6JT5ZC", "bank_account_closed")
    assert payout is None
