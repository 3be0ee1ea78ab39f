"""Checkout.com: Cko-Signature, optional Authorization key, rotation, mapping."""

from __future__ import annotations

import pytest

from shared.domain.money import Money
from shared.events.payments import PaymentFailed, PaymentSucceeded
from shared.psp.base import InvalidSignature
from shared.psp.checkout import CheckoutAdapter
from shared.psp.signing import hex_hmac
from tests.fixtures.psp import raw
from tests.unit.webhooks.helpers import config, delivery

KEY, NEXT, AUTH = "cko_sig_not_a_secret", "cko_sig_next", "cko_auth_not_a_secret"
CFG = config("checkout", CHECKOUT_WEBHOOK_SECRETS=f"{KEY},{NEXT}", CHECKOUT_AUTHORIZATION=AUTH)
A = CheckoutAdapter()
BODY = raw("checkout_payment_captured.json")


def test_valid_signature_and_authorization() -> None:
    [note] = A.verify(delivery(BODY, {"Cko-Signature": hex_hmac(BODY, NEXT), "Authorization": AUTH}), CFG)
    ev = A.normalise(note, CFG)
    assert isinstance(ev, PaymentSucceeded)
    assert (ev.amount, ev.psp_payment_id, ev.refs.invoice_id) == (
        Money(6540, "GBP"),
        "pay_waji5li4qnoutj5yy4ji2rqimq",
        "INV-2026-000500",
    )


@pytest.mark.parametrize(
    "headers",
    [
        {"Cko-Signature": hex_hmac(BODY, KEY)},
        {"Cko-Signature": hex_hmac(BODY, KEY), "Authorization": "wrong"},
        {"Cko-Signature": hex_hmac(BODY, "wrong"), "Authorization": AUTH},
        {"Authorization": AUTH},
    ],
)
def test_rejections(headers: dict[str, str]) -> None:
    with pytest.raises(InvalidSignature):
        A.verify(delivery(BODY, headers), CFG)


def test_authorization_optional_when_not_configured() -> None:
    cfg = config("checkout", CHECKOUT_WEBHOOK_SECRETS=KEY)
    assert A.verify(delivery(BODY, {"Cko-Signature": hex_hmac(BODY, KEY)}), cfg)


def test_hard_decline() -> None:
    body = raw("checkout_payment_declined.json")
    [note] = A.verify(delivery(body, {"Cko-Signature": hex_hmac(body, KEY), "Authorization": AUTH}), CFG)
    ev = A.normalise(note, CFG)
    assert isinstance(ev, PaymentFailed)
    assert (ev.decline_code, ev.retryable) == ("30004", False)
