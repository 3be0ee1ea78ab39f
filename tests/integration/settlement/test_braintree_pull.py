"""Braintree pull through the official SDK against a local stub: the search by disbursement date, id pages."""

from __future__ import annotations

import base64
import datetime as dt
from pathlib import Path

import pytest
from pytest_httpserver import HTTPServer

from shared.settlement.adapters import braintree
from shared.settlement.lines import LineType

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures" / "settlement"
MERCHANT, PUBLIC, PRIVATE = "acmemerchant42", "pub_demo_key", "priv_demo_not_a_secret"


@pytest.fixture
def stub(httpserver: HTTPServer, monkeypatch: pytest.MonkeyPatch) -> HTTPServer:
    monkeypatch.setenv("BRAINTREE_MERCHANT_ID__US", MERCHANT)
    monkeypatch.setenv("BRAINTREE_PUBLIC_KEY__US", PUBLIC)
    monkeypatch.setenv("BRAINTREE_PRIVATE_KEY__US", PRIVATE)
    monkeypatch.setenv("BRAINTREE_API_BASE", httpserver.url_for("").rstrip("/"))
    return httpserver


def xml(name: str) -> str:
    return (FIXTURES / name).read_text()


def test_pull_searches_by_disbursement_date_and_fetches_the_ids_in_pages(stub: HTTPServer) -> None:
    base = f"/merchants/{MERCHANT}/transactions"
    for path, body in [
        ("advanced_search_ids", "braintree_advanced_search_ids.xml"),
        ("advanced_search", "braintree_advanced_search_page1.xml"),
        ("advanced_search", "braintree_advanced_search_page2.xml"),
    ]:
        stub.expect_ordered_request(f"{base}/{path}", method="POST").respond_with_data(
            xml(body), content_type="application/xml"
        )
    since, until = dt.datetime(2026, 3, 3, tzinfo=dt.UTC), dt.datetime(2026, 3, 4, tzinfo=dt.UTC)
    batch = braintree.pull(braintree.client("us"), account="us", since=since, until=until)
    stub.check_assertions()
    ids_req, page1, page2 = (r for r, _ in stub.log)
    auth = "Basic " + base64.b64encode(f"{PUBLIC}:{PRIVATE}".encode()).decode()
    for r in (ids_req, page1, page2):
        assert r.headers["Authorization"] == auth
        assert r.headers["X-ApiVersion"] == "6"
    search = ids_req.get_data(as_text=True)
    # one whole date, inclusive on both ends: [2026-03-03, 2026-03-04) is the 3rd only
    assert search == (
        "<search><disbursement_date>"
        '<min type="datetime">2026-03-03T00:00:00Z</min><max type="datetime">2026-03-03T00:00:00Z</max>'
        "</disbursement_date></search>"
    )
    ids = '<ids type="array">{}</ids></search>'
    assert page1.get_data(as_text=True) == search.replace(
        "</search>", ids.format("<item>k7m2q9xr</item><item>3fz8c1wd</item>")
    )
    assert page2.get_data(as_text=True) == search.replace("</search>", ids.format("<item>p4n6t0ve</item>"))
    sale, fx, refund = batch.lines
    assert (sale.gross, sale.payout_id, sale.our_reference) == (4900, "acme_eur:2026-03-03", "inv_4001:1")
    assert (fx.currency, fx.gross, fx.presentment_currency, fx.presentment_amount) == ("EUR", 2295, "USD", 2500)
    assert (refund.type, refund.gross, refund.psp_payment_id) == (LineType.REFUND, -1000, "k7m2q9xr")
    assert batch.payouts == ()  # disbursement objects exist only in the webhook
