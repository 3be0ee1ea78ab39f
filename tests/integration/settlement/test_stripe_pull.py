"""Stripe pull through the official SDK against a local stub: the exact requests, pagination and the batch."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import pytest
from pytest_httpserver import HTTPServer

from shared.settlement.adapters import stripe
from shared.settlement.lines import LineType

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures" / "settlement"
KEY = "rk_test_settlement_demo_not_a_secret"
SINCE = dt.datetime(2026, 3, 1, tzinfo=dt.UTC)
UNTIL = dt.datetime(2026, 3, 8, tzinfo=dt.UTC)
PAYOUT = "po_1QxC9zLkdIwHu7ixPAYOUT01"


def fixture(name: str) -> object:
    return json.loads((FIXTURES / name).read_text())


@pytest.fixture
def stub(httpserver: HTTPServer, monkeypatch: pytest.MonkeyPatch) -> HTTPServer:
    monkeypatch.setenv("STRIPE_API_KEY__EU", KEY)
    monkeypatch.setenv("STRIPE_API_BASE", httpserver.url_for("").rstrip("/"))
    return httpserver


def test_pull_lists_paid_payouts_then_pages_through_each_automatic_payouts_transactions(stub: HTTPServer) -> None:
    stub.expect_ordered_request("/v1/payouts", method="GET").respond_with_json(fixture("stripe_payouts.json"))
    stub.expect_ordered_request("/v1/balance_transactions", method="GET").respond_with_json(
        fixture("stripe_balance_transactions_page1.json")
    )
    stub.expect_ordered_request("/v1/balance_transactions", method="GET").respond_with_json(
        fixture("stripe_balance_transactions_page2.json")
    )
    batch = stripe.pull(stripe.client("eu"), account="eu", since=SINCE, until=UNTIL)
    stub.check_assertions()
    payouts_req, page1, page2 = (r for r, _ in stub.log)
    assert all(r.headers["Authorization"] == f"Bearer {KEY}" for r in (payouts_req, page1, page2))
    assert payouts_req.args.to_dict() == {
        "arrival_date[gte]": str(int(SINCE.timestamp())),
        "arrival_date[lt]": str(int(UNTIL.timestamp())),
        "status": "paid",
        "limit": "100",
    }
    assert page1.args.to_dict() == {"payout": PAYOUT, "limit": "100", "expand[0]": "data.source"}
    assert page2.args.to_dict() == page1.args.to_dict() | {"starting_after": "txn_3QxA1bLkdIwHu7ix0AAAAAA3"}
    # the manual payout is listed but never itemised (Stripe cannot), so no third transactions request
    assert [(p.payout_id, p.amount, p.bank_reference) for p in batch.payouts] == [
        (PAYOUT, 4599, "FNBUS12345678"),
        ("po_1QxD0aLkdIwHu7ixMANUAL01", 10000, None),
    ]
    assert batch.payouts[0].arrival_date == dt.date(2026, 3, 4)
    assert len(batch.lines) == 6
    assert {ln.account for ln in batch.lines} == {"eu"}
    assert sum(ln.net for ln in batch.lines if ln.type is not LineType.PAYOUT) == batch.payouts[0].amount


def test_missing_key_is_a_configuration_error(monkeypatch: pytest.MonkeyPatch) -> None:
    from shared.config import ConfigError

    monkeypatch.delenv("STRIPE_API_KEY__NOPE", raising=False)
    with pytest.raises(ConfigError, match="STRIPE_API_KEY"):
        stripe.client("nope")
