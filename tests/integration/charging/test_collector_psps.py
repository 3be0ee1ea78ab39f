"""The collector on the emulators with the new adapters: a direct debit waits pending, Braintree charges once."""

from __future__ import annotations

from typing import Any

import pytest
from pytest_httpserver import HTTPServer

from shared.charging import ChargeUnavailable
from shared.renewals import collector, repository
from tests.conftest import Gcp
from tests.helpers import drain
from tests.integration.charging.braintree_stub import MERCHANT, BraintreeStub
from tests.integration.charging.test_gocardless import MANDATE, TOKEN, payment


def spec(psp: str, method_ref: str, invoice_id: str) -> dict[str, Any]:
    """A one-off invoice (no subscription): the result lives on the attempt document."""
    return {
        "invoice_id": invoice_id,
        "subscription_id": None,
        "customer_id": "c-1",
        "number": "INV-2026-0001",
        "amount": {"amount": 1099, "currency": "EUR"},
        "payment_method": {"psp": psp, "account": "default", "customer_ref": None, "method_ref": method_ref},
        "period_start": None,
        "period_end": None,
    }


@pytest.fixture
def facts(gcp: Gcp) -> str:
    gcp.topic("payment-events")
    return gcp.pull_subscription("payment-events")


def attempt(invoice_id: str) -> dict[str, Any]:
    return repository.attempts().document(f"{invoice_id}:1").get().to_dict() or {}


def test_direct_debit_is_pending_and_a_redelivery_does_not_debit_again(
    facts: str, httpserver: HTTPServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("GOCARDLESS_ACCESS_TOKEN", TOKEN)
    monkeypatch.setenv("GOCARDLESS_API_URL", httpserver.url_for("").rstrip("/"))
    httpserver.expect_request("/payments", method="POST").respond_with_json(payment("pending_submission"), 201)
    out = collector.charge(spec("gocardless", MANDATE, "inv_dd"), attempt=1)
    assert (out["status"], out["psp_payment_id"]) == ("pending", "PM00AB12")
    got = drain(facts)
    assert [(a["event_type"], b["psp"], b["refs"]["attempt_id"]) for a, b in got] == [
        ("payment.pending", "gocardless", "inv_dd:1")
    ]
    stored = attempt("inv_dd")
    assert (stored["status"], stored["result"]["status"]) == ("claimed", "pending")  # the webhook decides
    again = collector.charge(spec("gocardless", MANDATE, "inv_dd"), attempt=1)
    assert again == {"attempt_id": "inv_dd:1", "status": "pending", "duplicate": True}
    assert len(httpserver.log) == 1


def test_braintree_lost_answer_then_redelivery_charges_once(
    facts: str, httpserver: HTTPServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    for k, v in {
        "MERCHANT_ID": MERCHANT,
        "PUBLIC_KEY": "pk",
        "PRIVATE_KEY": "sk",
        "MERCHANT_ACCOUNTS": "EUR=acme_eur",
    }.items():
        monkeypatch.setenv(f"BRAINTREE_{k}", v)
    monkeypatch.setenv("BRAINTREE_API_URL", httpserver.url_for("").rstrip("/"))
    stub = BraintreeStub(lose_answers=1, hide_searches=2)
    httpserver.expect_request(f"/merchants/{MERCHANT}/transactions", method="POST").respond_with_handler(stub.handler)
    httpserver.expect_request(
        f"/merchants/{MERCHANT}/transactions/advanced_search_ids", method="POST"
    ).respond_with_handler(stub.handler)
    httpserver.expect_request(
        f"/merchants/{MERCHANT}/transactions/advanced_search", method="POST"
    ).respond_with_handler(stub.handler)
    with pytest.raises(ChargeUnavailable):
        collector.charge(spec("braintree", "tok_ok", "inv_bt"), attempt=1)
    assert attempt("inv_bt").get("claim") != "charged"  # released for the redelivery
    out = collector.charge(spec("braintree", "tok_ok", "inv_bt"), attempt=1)
    assert (out["status"], out["psp_payment_id"]) == ("succeeded", "bt000001")
    searches = len(stub.searches)
    late = collector.charge(spec("braintree", "tok_ok", "inv_bt"), attempt=1)
    assert late["duplicate"] is True
    assert len(stub.searches) == searches  # a completed attempt never asks Braintree again
    assert len(stub.sales) == 1
    got = drain(facts)
    assert {(a["event_type"], b["psp_payment_id"]) for a, b in got} == {("payment.succeeded", "bt000001")}
