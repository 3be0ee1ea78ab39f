"""Braintree through its SDK against a local gateway stub: the exact sale, and exactly once without a key."""

from __future__ import annotations

import base64

import pytest
from pytest_httpserver import HTTPServer

from shared.charging import ChargeRejected, ChargeUnavailable, charger_for
from shared.charging import braintree as bt
from shared.charging.braintree import BraintreeCharger
from tests.integration.charging.braintree_stub import MERCHANT, BraintreeStub
from tests.integration.charging.conftest import req

PUBLIC, PRIVATE = "demo_public_key", "demo_private_key_not_a_secret"


@pytest.fixture
def bt_env(httpserver: HTTPServer, monkeypatch: pytest.MonkeyPatch) -> tuple[HTTPServer, BraintreeStub]:
    monkeypatch.setenv("BRAINTREE_MERCHANT_ID", MERCHANT)
    monkeypatch.setenv("BRAINTREE_PUBLIC_KEY", PUBLIC)
    monkeypatch.setenv("BRAINTREE_PRIVATE_KEY", PRIVATE)
    monkeypatch.setenv("BRAINTREE_MERCHANT_ACCOUNTS", "EUR=acme_eur, jpy=acme_jpy,KWD=acme_kwd")
    monkeypatch.setenv("BRAINTREE_API_URL", httpserver.url_for("").rstrip("/"))
    stub = BraintreeStub()
    httpserver.expect_request(f"/merchants/{MERCHANT}/transactions", method="POST").respond_with_handler(stub.handler)
    httpserver.expect_request(
        f"/merchants/{MERCHANT}/transactions/advanced_search_ids", method="POST"
    ).respond_with_handler(stub.handler)
    httpserver.expect_request(
        f"/merchants/{MERCHANT}/transactions/advanced_search", method="POST"
    ).respond_with_handler(stub.handler)
    return httpserver, stub


def test_sale_with_the_vaulted_method_is_exact_and_searched_first(bt_env: tuple[HTTPServer, BraintreeStub]) -> None:
    server, stub = bt_env
    result = BraintreeCharger().charge(req("braintree", "tok_ok"))
    assert (result.status, result.psp_payment_id, result.livemode) == ("succeeded", "bt000001", False)
    assert result.created_at.isoformat() == "2026-01-01T00:00:00+00:00"
    assert [(r.path.rsplit("/", 1)[-1]) for r, _ in server.log] == ["advanced_search_ids", "transactions"]
    assert stub.searches == ["inv_42:1"]
    assert stub.sales == [
        {
            "amount": "10.99",
            "merchant_account_id": "acme_eur",
            "payment_method_token": "tok_ok",
            "order_id": "inv_42:1",
            "transaction_source": "recurring",
            "custom_fields": {"invoice_id": "inv_42", "customer_id": "c-1", "subscription_id": "sub_7"},
            "options": {"submit_for_settlement": True},
            "type": "sale",
        }
    ]
    sale = server.log[1][0]
    assert sale.headers["Authorization"] == "Basic " + base64.b64encode(f"{PUBLIC}:{PRIVATE}".encode()).decode()


@pytest.mark.parametrize(("currency", "amount", "sent"), [("JPY", 1099, "1099"), ("KWD", 1099, "1.099")])
def test_amount_is_major_units_at_the_currency_exponent_on_its_merchant_account(
    bt_env: tuple[HTTPServer, BraintreeStub], currency: str, amount: int, sent: str
) -> None:
    _, stub = bt_env
    assert BraintreeCharger().charge(req("braintree", "tok_ok", amount=amount, currency=currency)).status == "succeeded"
    (sale,) = stub.sales
    assert (sale["amount"], sale["merchant_account_id"]) == (sent, f"acme_{currency.lower()}")


def test_currency_without_a_merchant_account_is_rejected_before_any_call(
    bt_env: tuple[HTTPServer, BraintreeStub],
) -> None:
    server, _ = bt_env
    with pytest.raises(ChargeRejected, match="USD"):
        BraintreeCharger().charge(req("braintree", "tok_ok", currency="USD"))
    assert server.log == []


@pytest.mark.parametrize(
    ("token", "code", "retryable"),
    [("tok_soft", "2001", True), ("tok_hard", "2015", False), ("tok_fraud", "fraud", False)],
)
def test_declines_and_rejections_are_failed_results(
    bt_env: tuple[HTTPServer, BraintreeStub], token: str, code: str, retryable: bool
) -> None:
    r = BraintreeCharger().charge(req("braintree", token))
    assert (r.status, r.psp_payment_id, r.decline_code, r.retryable) == ("failed", "bt000001", code, retryable)


def test_bank_debit_stays_pending(bt_env: tuple[HTTPServer, BraintreeStub]) -> None:
    assert BraintreeCharger().charge(req("braintree", "tok_ach")).status == "pending"


def test_a_lost_answer_is_adopted_by_the_search_that_follows(bt_env: tuple[HTTPServer, BraintreeStub]) -> None:
    _, stub = bt_env
    stub.lose_answers = 1
    r = BraintreeCharger().charge(req("braintree", "tok_ok"))
    assert (r.status, r.psp_payment_id) == ("succeeded", "bt000001")
    assert len(stub.sales) == 1
    assert stub.searches == ["inv_42:1", "inv_42:1"]


def test_retry_after_a_lost_answer_finds_the_sale_instead_of_selling_again(
    bt_env: tuple[HTTPServer, BraintreeStub],
) -> None:
    _, stub = bt_env
    stub.lose_answers, stub.hide_searches = 1, 2  # the answer is lost and search lags behind
    c = BraintreeCharger()
    with pytest.raises(ChargeUnavailable):
        c.charge(req("braintree", "tok_ok"))
    r = c.charge(req("braintree", "tok_ok"))  # the redelivery (or the lease's takeover)
    assert (r.status, r.psp_payment_id) == ("succeeded", "bt000001")
    assert len(stub.sales) == 1
    assert len(stub.created()) == 1
    # the next attempt of the same invoice is a different order: it is charged
    assert c.charge(req("braintree", "tok_soft", attempt=2)).psp_payment_id == "bt000002"


def test_duplicate_rejection_resolves_to_the_original(bt_env: tuple[HTTPServer, BraintreeStub]) -> None:
    _, stub = bt_env
    original = stub.add("inv_42:1")
    stub.hide_searches = 1  # the first search misses the original; the sale hits duplicate checking
    r = BraintreeCharger().charge(req("braintree", "tok_ok"))
    assert (r.status, r.psp_payment_id) == ("succeeded", original)
    assert len(stub.sales) == 1
    assert len(stub.created()) == 1


def test_adopted_transaction_of_another_amount_is_rejected(bt_env: tuple[HTTPServer, BraintreeStub]) -> None:
    _, stub = bt_env
    stub.add("inv_42:1", amount="12.00")
    with pytest.raises(ChargeRejected, match=r"12\.00"):
        BraintreeCharger().charge(req("braintree", "tok_ok"))
    assert stub.sales == []


def test_gateway_unavailable_then_retry_with_the_same_order_id(bt_env: tuple[HTTPServer, BraintreeStub]) -> None:
    _, stub = bt_env
    c = BraintreeCharger()
    stub.fail_next = 1  # the search itself fails: no sale is sent
    with pytest.raises(ChargeUnavailable):
        c.charge(req("braintree", "tok_ok"))
    assert stub.sales == []
    stub.fail_next = 0
    stub.lose_answers = 1
    stub.hide_searches = 2
    with pytest.raises(ChargeUnavailable):
        c.charge(req("braintree", "tok_ok"))
    assert c.charge(req("braintree", "tok_ok")).status == "succeeded"
    assert [s["order_id"] for s in stub.sales] == ["inv_42:1"]


def test_timeout_is_unavailable(silent_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    for k, v in {"MERCHANT_ID": MERCHANT, "PUBLIC_KEY": PUBLIC, "PRIVATE_KEY": PRIVATE}.items():
        monkeypatch.setenv(f"BRAINTREE_{k}", v)
    monkeypatch.setenv("BRAINTREE_MERCHANT_ACCOUNTS", "EUR=acme_eur")
    monkeypatch.setenv("BRAINTREE_API_URL", silent_url)
    monkeypatch.setattr(bt, "TIMEOUT_S", 0.2)
    with pytest.raises(ChargeUnavailable, match="braintree unavailable"):
        BraintreeCharger().charge(req("braintree", "tok_ok"))


def test_bad_credentials_and_invalid_requests_are_rejected(bt_env: tuple[HTTPServer, BraintreeStub]) -> None:
    server, _ = bt_env
    with pytest.raises(ChargeRejected, match="Payment method token is invalid"):
        BraintreeCharger().charge(req("braintree", "tok_unknown"))
    server.clear()
    server.expect_request(f"/merchants/{MERCHANT}/transactions/advanced_search_ids").respond_with_data("", status=401)
    with pytest.raises(ChargeRejected, match="AuthenticationError"):
        BraintreeCharger().charge(req("braintree", "tok_ok"))


def test_missing_keys_are_rejected(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("BRAINTREE_PRIVATE_KEY", raising=False)
    with pytest.raises(ChargeRejected):
        charger_for("braintree")
