"""GoCardless pull through the official SDK against a local stub: payouts, paginated payout items, the batch."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import pytest
from pytest_httpserver import HTTPServer

from shared.settlement.adapters import gocardless

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures" / "settlement"
TOKEN = "sandbox_settlement_demo_not_a_secret"


def fixture(name: str) -> object:
    return json.loads((FIXTURES / name).read_text())


@pytest.fixture
def stub(httpserver: HTTPServer, monkeypatch: pytest.MonkeyPatch) -> HTTPServer:
    monkeypatch.setenv("GOCARDLESS_ACCESS_TOKEN", TOKEN)
    monkeypatch.setenv("GOCARDLESS_API_BASE", httpserver.url_for("").rstrip("/"))
    return httpserver


def test_pull_reads_paid_payouts_and_pages_through_their_items(stub: HTTPServer) -> None:
    stub.expect_ordered_request("/payouts", method="GET").respond_with_json(fixture("gocardless_payouts.json"))
    for page in ("page1", "page2", "empty"):
        stub.expect_ordered_request("/payout_items", method="GET").respond_with_json(
            fixture(f"gocardless_payout_items_{page}.json")
        )
    since, until = dt.datetime(2026, 3, 1, tzinfo=dt.UTC), dt.datetime(2026, 3, 8, tzinfo=dt.UTC)
    batch = gocardless.pull(gocardless.client("default"), account="default", since=since, until=until)
    stub.check_assertions()
    requests = [r for r, _ in stub.log]
    for r in requests:
        assert r.headers["Authorization"] == f"Bearer {TOKEN}"
        assert r.headers["GoCardless-Version"] == "2015-07-06"
    assert requests[0].args.to_dict() == {
        "created_at[gte]": "2026-03-01T00:00:00.000Z",
        "created_at[lt]": "2026-03-08T00:00:00.000Z",
        "status": "paid",
        "limit": "500",
    }
    assert [r.args.to_dict() for r in requests[1:]] == [
        {"payout": "PO0000ABCD1234", "limit": "500"},
        {"payout": "PO0000ABCD1234", "limit": "500", "after": "BQ0000ITEMCURSOR5"},
        {"payout": "PO0000ABCD1299", "limit": "500"},
    ]
    assert [(p.payout_id, p.amount, p.currency, p.bank_reference, p.arrival_date) for p in batch.payouts] == [
        ("PO0000ABCD1234", 1313, "GBP", "ACME-9TK2HQ7JBS", dt.date(2026, 3, 5)),
        ("PO0000ABCD1299", 0, "GBP", "ACME-7XQ3LM2PRC", dt.date(2026, 3, 6)),
    ]
    assert len(batch.lines) == 5
    assert sum(ln.net for ln in batch.lines if ln.payout_id == "PO0000ABCD1234") == 1313
