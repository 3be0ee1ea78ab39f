"""PSP adapters against a local HTTP stub: the exact request the official SDKs send, and its key."""

from __future__ import annotations

import json

import pytest
from pytest_httpserver import HTTPServer

from shared.charging import ChargeRejected, ChargeRequest, ChargeUnavailable, charger_for
from shared.charging.adyen import AdyenCharger
from shared.charging.stripe import StripeCharger
from shared.domain.money import Money
from shared.events.billing import PaymentMethodRef

STRIPE_KEY = "sk_test_demo_not_a_secret"
ADYEN_KEY = "adyen_demo_key_not_a_secret"


def req(psp: str, attempt: int = 1, amount: int = 1099) -> ChargeRequest:
    return ChargeRequest(
        invoice_id="inv_42",
        attempt=attempt,
        amount=Money(amount, "EUR"),
        method=PaymentMethodRef(psp=psp, customer_ref="cus_9", method_ref="pm_card_visa"),
        customer_id="c-1",
        subscription_id="sub_7",
        description="Pro plan",
    )


@pytest.fixture
def stripe_env(httpserver: HTTPServer, monkeypatch: pytest.MonkeyPatch) -> HTTPServer:
    monkeypatch.setenv("STRIPE_API_KEY", STRIPE_KEY)
    monkeypatch.setenv("STRIPE_API_BASE", httpserver.url_for("").rstrip("/"))
    return httpserver


def pi(status: str, **extra: object) -> dict[str, object]:
    base: dict[str, object] = {"id": "pi_123", "object": "payment_intent", "status": status, "created": 1767225600}
    return base | {"livemode": False} | extra


def test_stripe_success_sends_off_session_confirm_with_idempotency_key(stripe_env: HTTPServer) -> None:
    stripe_env.expect_request("/v1/payment_intents", method="POST").respond_with_json(pi("succeeded"))
    result = StripeCharger().charge(req("stripe"))
    assert result.status == "succeeded"
    assert result.psp_payment_id == "pi_123"
    assert result.created_at.isoformat() == "2026-01-01T00:00:00+00:00"
    ((sent, _),) = stripe_env.log
    assert sent.headers["Idempotency-Key"] == "renewal-inv_42-1"
    assert sent.headers["Authorization"] == f"Bearer {STRIPE_KEY}"
    assert sent.form.to_dict() == {
        "amount": "1099",
        "currency": "eur",
        "payment_method": "pm_card_visa",
        "customer": "cus_9",
        "confirm": "true",
        "off_session": "true",
        "description": "Pro plan",
        "metadata[invoice_id]": "inv_42",
        "metadata[customer_id]": "c-1",
        "metadata[attempt_id]": "inv_42:1",
        "metadata[subscription_id]": "sub_7",
    }


def test_stripe_retry_of_same_attempt_reuses_key_and_next_attempt_gets_a_new_one(stripe_env: HTTPServer) -> None:
    stripe_env.expect_request("/v1/payment_intents").respond_with_json(pi("succeeded"))
    c = StripeCharger()
    c.charge(req("stripe", attempt=2))
    c.charge(req("stripe", attempt=2))
    c.charge(req("stripe", attempt=3))
    keys = [r.headers["Idempotency-Key"] for r, _ in stripe_env.log]
    assert keys == ["renewal-inv_42-2", "renewal-inv_42-2", "renewal-inv_42-3"]


@pytest.mark.parametrize(("decline", "retryable"), [("insufficient_funds", True), ("stolen_card", False)])
def test_stripe_card_decline_is_a_failed_result(stripe_env: HTTPServer, decline: str, retryable: bool) -> None:
    body = {
        "error": {
            "type": "card_error",
            "code": "card_declined",
            "decline_code": decline,
            "message": "Your card was declined.",
            "payment_intent": pi("requires_payment_method", id="pi_declined"),
        }
    }
    stripe_env.expect_request("/v1/payment_intents").respond_with_json(body, status=402)
    result = StripeCharger().charge(req("stripe"))
    assert (result.status, result.psp_payment_id, result.decline_code) == ("failed", "pi_declined", decline)
    assert result.retryable is retryable


def test_stripe_processing_is_pending(stripe_env: HTTPServer) -> None:
    stripe_env.expect_request("/v1/payment_intents").respond_with_json(pi("processing"))
    assert StripeCharger().charge(req("stripe")).status == "pending"


def test_stripe_server_error_is_transient_and_bad_request_is_rejected(stripe_env: HTTPServer) -> None:
    err = {"error": {"type": "api_error", "message": "boom"}}
    stripe_env.expect_request("/v1/payment_intents").respond_with_json(err, status=500)
    with pytest.raises(ChargeUnavailable):
        StripeCharger().charge(req("stripe"))
    stripe_env.clear()
    bad = {"error": {"type": "invalid_request_error", "code": "parameter_invalid_integer", "message": "bad"}}
    stripe_env.expect_request("/v1/payment_intents").respond_with_json(bad, status=400)
    with pytest.raises(ChargeRejected):
        StripeCharger().charge(req("stripe"))


def test_missing_key_is_rejected(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("STRIPE_API_KEY", raising=False)
    with pytest.raises(ChargeRejected):
        charger_for("stripe")
    with pytest.raises(ChargeRejected):
        charger_for("paypal-classic")


# -- Adyen ------------------------------------------------------------------------------------
@pytest.fixture
def adyen_env(httpserver: HTTPServer, monkeypatch: pytest.MonkeyPatch) -> HTTPServer:
    monkeypatch.setenv("ADYEN_API_KEY", ADYEN_KEY)
    monkeypatch.setenv("ADYEN_MERCHANT_ACCOUNT", "DemoMerchantECOM")
    monkeypatch.setenv("ADYEN_CHECKOUT_URL", httpserver.url_for("").rstrip("/"))
    return httpserver


def test_adyen_recurring_subscription_payment_request(adyen_env: HTTPServer) -> None:
    adyen_env.expect_request("/v71/payments", method="POST").respond_with_json(
        {"pspReference": "QFQTPCQ8HXSKGK82", "resultCode": "Authorised", "merchantReference": "inv_42:1"}
    )
    result = AdyenCharger().charge(req("adyen"))
    assert (result.status, result.psp_payment_id) == ("succeeded", "QFQTPCQ8HXSKGK82")
    ((sent, _),) = adyen_env.log
    assert sent.headers["Idempotency-Key"] == "renewal-inv_42-1"
    assert sent.headers["X-API-Key"] == ADYEN_KEY
    assert json.loads(sent.get_data()) == {
        "amount": {"currency": "EUR", "value": 1099},
        "reference": "inv_42:1",
        "merchantAccount": "DemoMerchantECOM",
        "paymentMethod": {"type": "scheme", "storedPaymentMethodId": "pm_card_visa"},
        "shopperReference": "cus_9",
        "shopperInteraction": "ContAuth",
        "recurringProcessingModel": "Subscription",
        "metadata": {
            "invoice_id": "inv_42",
            "customer_id": "c-1",
            "attempt_id": "inv_42:1",
            "subscription_id": "sub_7",
        },
        "shopperStatement": "Pro plan",
    }


@pytest.mark.parametrize(
    ("answer", "status", "retryable"),
    [
        ({"resultCode": "Refused", "refusalReason": "Not enough balance", "refusalReasonCode": "51"}, "failed", True),
        ({"resultCode": "Refused", "refusalReason": "Stolen Card", "refusalReasonCode": "15"}, "failed", False),
        ({"resultCode": "Received"}, "pending", True),
    ],
)
def test_adyen_results(adyen_env: HTTPServer, answer: dict[str, str], status: str, retryable: bool) -> None:
    adyen_env.expect_request("/v71/payments").respond_with_json({"pspReference": "P1"} | answer)
    result = AdyenCharger().charge(req("adyen"))
    assert (result.status, result.retryable) == (status, retryable)


def test_adyen_errors(adyen_env: HTTPServer) -> None:
    adyen_env.expect_request("/v71/payments").respond_with_json({"status": 500, "errorCode": "905"}, status=500)
    with pytest.raises(ChargeUnavailable):
        AdyenCharger().charge(req("adyen"))
    adyen_env.clear()
    adyen_env.expect_request("/v71/payments").respond_with_json({"status": 422, "errorCode": "14_030"}, status=422)
    with pytest.raises(ChargeRejected):
        AdyenCharger().charge(req("adyen"))
