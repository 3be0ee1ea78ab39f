"""Checkout.com pull over the Reports API against a local stub: list pages, file downloads, the closed batch."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest
from pytest_httpserver import HTTPServer

from shared.settlement.adapters import checkout
from shared.settlement.adapters.common import SettlementFormatError

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures" / "settlement"
KEY = "sk_sbox_settlement_demo_not_a_secret"
SINCE, UNTIL = dt.datetime(2026, 3, 2, tzinfo=dt.UTC), dt.datetime(2026, 3, 3, tzinfo=dt.UTC)


def report(report_id: str, *file_ids: str) -> dict[str, object]:
    files = [{"id": f, "filename": f"{f}.csv", "format": "CSV"} for f in file_ids]
    return {"id": report_id, "created_on": "2026-03-02T06:00:00Z", "type": "Settlement", "files": files}


@pytest.fixture
def stub(httpserver: HTTPServer, monkeypatch: pytest.MonkeyPatch) -> HTTPServer:
    monkeypatch.setenv("CHECKOUT_SECRET_KEY", KEY)
    monkeypatch.setenv("CHECKOUT_API_BASE", httpserver.url_for("").rstrip("/"))
    return httpserver


def test_pull_pages_reports_downloads_their_files_and_closes_the_payout(stub: HTTPServer) -> None:
    next_href = stub.url_for("/reports") + "?pagination_token=tok_page2&limit=100"
    stub.expect_ordered_request("/reports", method="GET").respond_with_json(
        {
            "data": [report("rpt_breakdown01", "file_breakdown01", "file_payments01")],
            "_links": {"next": {"href": next_href}},
        }
    )
    stub.expect_ordered_request("/reports/rpt_breakdown01/files/file_breakdown01").respond_with_data(
        (FIXTURES / "checkout_settlement-breakdown_ent_acme_20260302.csv").read_bytes(), content_type="text/csv"
    )
    stub.expect_ordered_request("/reports/rpt_breakdown01/files/file_payments01").respond_with_data(
        b"Payment ID,Processed On,Amount\npay_1,2026-03-02,1.00\n", content_type="text/csv"
    )
    stub.expect_ordered_request("/reports", method="GET").respond_with_json(
        {"data": [report("rpt_payouts01", "file_payouts01")], "_links": {}}
    )
    stub.expect_ordered_request("/reports/rpt_payouts01/files/file_payouts01").respond_with_data(
        (FIXTURES / "checkout_payouts_ent_acme_20260302.csv").read_bytes(), content_type="text/csv"
    )
    batch = checkout.pull(checkout.client("default"), account="default", since=SINCE, until=UNTIL)
    stub.check_assertions()
    sent = [r for r, _ in stub.log]
    assert all(r.headers["Authorization"] == f"Bearer {KEY}" for r in sent)
    assert sent[0].args.to_dict() == {
        "created_after": "2026-03-02T00:00:00Z",
        "created_before": "2026-03-03T00:00:00Z",
        "limit": "100",
    }
    assert sent[3].args.to_dict() == {"pagination_token": "tok_page2", "limit": "100"}
    (payout,) = batch.payouts
    assert payout.amount == 7619 == sum(ln.net for ln in batch.lines)
    assert len(batch.lines) == 6  # five breakdown rows + the rounding line; the payments report is skipped


def test_a_pagination_link_to_another_origin_is_refused(stub: HTTPServer) -> None:
    stub.expect_request("/reports").respond_with_json(
        {"data": [], "_links": {"next": {"href": "https://reports.example.invalid/reports?pagination_token=x"}}}
    )
    with pytest.raises(SettlementFormatError, match="another origin"):
        checkout.pull(checkout.client("default"), account="default", since=SINCE, until=UNTIL)
    assert len(stub.log) == 1  # the secret key never left for the other host
