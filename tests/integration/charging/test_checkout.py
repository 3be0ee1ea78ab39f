"""Checkout.com through checkout-sdk against a local stub: the exact payment request, its key, its answers."""

from __future__ import annotations

import json
from typing import Any

import pytest
from pytest_httpserver import HTTPServer

from shared.charging import ChargeRejected, ChargeUnavailable, charger_for
from shared.charging import checkout as cko
from shared.charging.checkout import CheckoutCharger
from tests.integration.charging.conftest import req

# The SDK checks the key's shape (sk_sbox_ + 27 base32 characters); this one is fake.
SECRET = "sk_sbox_m73dzbpy7cf3gfd46xr4yj5xo4e"
CHANNEL = "pc_demochannel000000000000"
INSTRUMENT = "src_wmlfc3zyhqzehihu7giusaaawu"


@pytest.fixture
def cko_env(httpserver: HTTPServer, monkeypatch: pytest.MonkeyPatch) -> HTTPServer:
    monkeypatch.setenv("CHECKOUT_SECRET_KEY", SECRET)
    monkeypatch.setenv("CHECKOUT_PROCESSING_CHANNEL_ID", CHANNEL)
    monkeypatch.setenv("CHECKOUT_API_URL", httpserver.url_for("").rstrip("/"))
    return httpserver


def answer(status: str, approved: bool, **extra: Any) -> dict[str, Any]:
    return {
        "id": "pay_mbabizu24mvu3mela5njyhpit4",
        "action_id": "act_mbabizu24mvu3mela5njyhpit4",
        "amount": 1099,
        "currency": "EUR",
        "approved": approved,
        "status": status,
        "reference": "inv_42:1",
        "processed_on": "2026-01-01T00:00:00Z",
        "_links": {"self": {"href": "https://api.sandbox.checkout.com/payments/pay_mbabizu24mvu3mela5njyhpit4"}},
    } | extra


def test_stored_instrument_payment_is_exact_and_succeeds(cko_env: HTTPServer) -> None:
    cko_env.expect_request("/payments", method="POST").respond_with_json(
        answer("Authorized", True, response_code="10000", response_summary="Approved"), status=201
    )
    result = CheckoutCharger().charge(req("checkout", INSTRUMENT))
    assert (result.status, result.psp_payment_id) == ("succeeded", "pay_mbabizu24mvu3mela5njyhpit4")
    assert result.created_at.isoformat() == "2026-01-01T00:00:00+00:00"
    ((sent, _),) = cko_env.log
    assert sent.headers["Cko-Idempotency-Key"] == "renewal-inv_42-1"
    assert sent.headers["Authorization"] == f"Bearer {SECRET}"
    assert json.loads(sent.get_data()) == {
        "source": {"type": "id", "id": INSTRUMENT},
        "amount": 1099,
        "currency": "EUR",
        "payment_type": "Recurring",
        "merchant_initiated": True,
        "capture": True,
        "reference": "inv_42:1",
        "processing_channel_id": CHANNEL,
        "metadata": {
            "invoice_id": "inv_42",
            "customer_id": "c-1",
            "attempt_id": "inv_42:1",
            "subscription_id": "sub_7",
        },
        "customer": {"id": "cus_9"},
        "description": "Pro plan",
    }


def test_minor_units_follow_the_currency_exponent(cko_env: HTTPServer) -> None:
    cko_env.expect_request("/payments").respond_with_json(answer("Captured", True), status=201)
    CheckoutCharger().charge(req("checkout", INSTRUMENT, amount=1099, currency="KWD"))
    CheckoutCharger().charge(req("checkout", INSTRUMENT, amount=1099, currency="JPY"))
    sent = [json.loads(r.get_data()) for r, _ in cko_env.log]
    assert [(b["amount"], b["currency"]) for b in sent] == [(1099, "KWD"), (1099, "JPY")]


@pytest.mark.parametrize(
    ("http", "body", "status", "code", "retryable"),
    [
        (202, {"id": "pay_p", "status": "Pending", "reference": "inv_42:1"}, "pending", None, True),
        (201, answer("Declined", False, response_code="20051", response_summary="Insufficient Funds"), "failed",
         "20051", True),
        (201, answer("Declined", False, response_code="30043", response_summary="Stolen Card"), "failed",
         "30043", False),
    ],
)  # fmt: skip
def test_pending_and_declines(
    cko_env: HTTPServer, http: int, body: dict[str, Any], status: str, code: str | None, retryable: bool
) -> None:
    cko_env.expect_request("/payments").respond_with_json(body, status=http)
    r = CheckoutCharger().charge(req("checkout", INSTRUMENT))
    assert (r.status, r.decline_code, r.retryable) == (status, code, retryable)
    if status == "failed":
        assert r.failure_message == body["response_summary"]


def test_server_error_is_unavailable_and_the_retry_sends_the_same_key(cko_env: HTTPServer) -> None:
    cko_env.expect_ordered_request("/payments").respond_with_json({"request_id": "r1"}, status=502)
    for _ in range(2):
        cko_env.expect_ordered_request("/payments").respond_with_json(answer("Authorized", True), status=201)
    c = CheckoutCharger()
    with pytest.raises(ChargeUnavailable, match="HTTP 502"):
        c.charge(req("checkout", INSTRUMENT))
    assert c.charge(req("checkout", INSTRUMENT)).status == "succeeded"
    c.charge(req("checkout", INSTRUMENT, attempt=2))
    keys = [r.headers["Cko-Idempotency-Key"] for r, _ in cko_env.log]
    assert keys == ["renewal-inv_42-1", "renewal-inv_42-1", "renewal-inv_42-2"]
    assert cko_env.log[0][0].get_data() == cko_env.log[1][0].get_data()


def test_rate_limit_is_unavailable(cko_env: HTTPServer) -> None:
    cko_env.expect_request("/payments").respond_with_json({"request_id": "r1"}, status=429)
    with pytest.raises(ChargeUnavailable):
        CheckoutCharger().charge(req("checkout", INSTRUMENT))


def test_timeout_is_unavailable(silent_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CHECKOUT_SECRET_KEY", SECRET)
    monkeypatch.setenv("CHECKOUT_PROCESSING_CHANNEL_ID", CHANNEL)
    monkeypatch.setenv("CHECKOUT_API_URL", silent_url)
    monkeypatch.setattr(cko, "TIMEOUT_S", 0.2)
    with pytest.raises(ChargeUnavailable, match=r"checkout\.com unavailable"):
        CheckoutCharger().charge(req("checkout", INSTRUMENT))


@pytest.mark.parametrize(
    ("http", "body"),
    [
        (401, None),
        (422, {"request_id": "r1", "error_type": "request_invalid", "error_codes": ["source_id_invalid"]}),
    ],
)
def test_refused_requests_are_rejected(cko_env: HTTPServer, http: int, body: dict[str, Any] | None) -> None:
    if body is None:
        cko_env.expect_request("/payments").respond_with_data("", status=http)
    else:
        cko_env.expect_request("/payments").respond_with_json(body, status=http)
    with pytest.raises(ChargeRejected, match=f"HTTP {http}"):
        CheckoutCharger().charge(req("checkout", INSTRUMENT))


def test_missing_or_malformed_settings_are_rejected(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("CHECKOUT_SECRET_KEY", raising=False)
    monkeypatch.setenv("CHECKOUT_PROCESSING_CHANNEL_ID", CHANNEL)
    with pytest.raises(ChargeRejected):
        charger_for("checkout")
    monkeypatch.setenv("CHECKOUT_SECRET_KEY", "not-a-checkout-key")
    monkeypatch.setenv("CHECKOUT_SUBDOMAIN", "abc123")
    with pytest.raises(ChargeRejected, match="settings rejected"):
        charger_for("checkout")
    monkeypatch.setenv("CHECKOUT_SECRET_KEY", SECRET)
    monkeypatch.delenv("CHECKOUT_SUBDOMAIN")
    with pytest.raises(ChargeRejected, match="CHECKOUT_SUBDOMAIN"):
        charger_for("checkout")
    monkeypatch.setenv("CHECKOUT_SUBDOMAIN", "abc123")
    assert isinstance(charger_for("checkout"), CheckoutCharger)
