"""The console's pages on real data: search, customer, invoices, PDF, webhook archive (scrubbed), charts."""

from __future__ import annotations

import pytest

from shared import clients
from shared.console.app import SECURITY_HEADERS
from shared.console.config import ConsoleSettings
from shared.webhooks.store import record_id
from tests.card_data import leaks
from tests.console.forms import HEADERS
from tests.fixtures.console_world import World

pytestmark = pytest.mark.filterwarnings("ignore:The return_immediately flag:DeprecationWarning")


def _get(world: World, url: str, status: int = 200) -> str:
    r = world.app().test_client().get(url, headers=HEADERS)
    assert r.status_code == status, r.data[:800]
    return str(r.data.decode())


@pytest.mark.parametrize(
    ("query", "expect"),
    [
        ("cus_fr", "/customers/cus_fr"),  # a customer id (known from its subscription and invoices)
        ("sub_1", "/customers/cus_fr#sub-sub_1"),  # a subscription id
        ("INV-2026-000002", "/invoices/"),  # an invoice number
        ("pi_0001", "/customers/cus_fr"),  # a PSP reference
        ("evt_0001_00", "/webhooks/"),  # a PSP event id
        ("camille@example.com", "/customers/cus_fr"),  # an email
        ("Camille", "/customers/cus_fr"),  # the start of a name
    ],
)
def test_search_finds_every_kind_of_reference(world: World, query: str, expect: str) -> None:
    page = _get(world, f"/?q={query}")
    assert f'href="{expect}' in page
    assert "Nothing found" not in page


def test_search_for_nothing_says_so(world: World) -> None:
    assert "Nothing found" in _get(world, "/?q=no-such-thing")


def test_customer_page_shows_every_section_and_none_where_nothing_exists(world: World) -> None:
    page = _get(world, "/customers/cus_fr")
    for section in ("Subscriptions", "Invoices and credit notes", "Payments and refunds", "Credit balance"):
        assert f">{section}</h2>" in page
    assert "sub_1" in page
    assert "active" in page
    # the status history, newest first, from the subscription's own transitions
    assert "Status history of sub_1 (3)" in page
    assert page.index("v3: past_due → active (recovered)") < page.index("v2: active → past_due (payment_failed)")
    assert page.index("v2: active → past_due") < page.index("v1: — → active (created)")
    assert all(n in page for n in world.numbers)
    assert page.count('class="pdf"') == 3
    assert "pi_0002" in page
    # each payment links to its own page: the canonical events and the archived webhooks behind it
    import html
    import re

    links = re.findall(r'href="(/payments/[^"]+)" class="payment"', page)
    assert len(links) == 3
    payment = _get(world, html.unescape(links[-1]))  # newest first: pi_0000 is the oldest, last
    assert "pi_0000" in payment
    assert "archived webhook" in payment
    assert "payment.succeeded" in payment
    # no balance entries, disputes or usage collections exist in this project: shown as none
    assert page.count('<p class="none">None.</p>') == 3


def test_the_payment_page_lists_its_events_scrubbed_and_unknown_payments_are_404(world: World) -> None:
    payment = _get(world, f"/payments/{world.invoices[2]}:1")  # the third attempt fails (world.seed_payments)
    assert "pi_0002" in payment
    assert "payment.failed" in payment
    assert "insufficient_funds" in payment
    assert payment.count('href="/webhooks/') == 2  # both archived notifications behind it
    assert not leaks(payment)
    _get(world, "/payments/in_nobody:1", 404)
    _get(world, "/payments/..", 404)


def test_the_customer_page_costs_a_fixed_number_of_queries_whatever_the_payments(world: World) -> None:
    """The timeline no longer reads each payment's webhooks: queries do not grow with the payments shown."""
    from unittest import mock

    from google.cloud.firestore_v1.query import Query

    from tests.fixtures.console_world import seed_payments

    def count(url: str) -> int:
        with mock.patch.object(Query, "stream", autospec=True, side_effect=Query.stream) as stream:
            _get(world, url)
        return stream.call_count

    before = count("/customers/cus_fr")
    seed_payments("cus_fr", [f"in_more{i}" for i in range(12)], 3)
    assert count("/customers/cus_fr") == before <= 7


def test_unknown_customer_is_404(world: World) -> None:
    assert "no customer" in _get(world, "/customers/cus_nobody", 404)
    _get(world, "/customers/..", 404)


def test_archived_webhook_is_shown_scrubbed(world: World) -> None:
    page = _get(world, f"/webhooks/{record_id('stripe', 'default', 'evt_0000_00')}")
    assert "payment.succeeded" in page
    assert "pi_0000" in page
    assert leaks(page) == []
    raw = clients.firestore().collection("webhook_events").document(record_id("stripe", "default", "evt_0000_00"))
    assert leaks(str(raw.get().to_dict())) != []  # the seeded archive holds a card number; the page never shows it


def test_invoice_pdf_is_served_inline(world: World) -> None:
    r = world.app().test_client().get(f"/invoices/{world.invoices[0]}/pdf", headers=HEADERS)
    assert r.status_code == 200
    assert r.mimetype == "application/pdf"
    assert r.data.startswith(b"%PDF")
    assert world.numbers[0] in r.headers["Content-Disposition"]


def test_invoice_list_filters_and_series_audit(world: World) -> None:
    page = _get(world, "/invoices?status=open&series=acme-fr.INV.2026&currency=eur&from=2020-01-01&to=2100-01-01")
    assert all(n in page for n in world.numbers)
    assert "Series audit: acme-fr.INV.2026" in page
    assert "3 invoice(s)" in page
    assert "No invoices match" in _get(world, "/invoices?status=paid")
    assert "3 invoice(s)" in _get(world, "/invoices?customer=cus_fr")
    assert "No invoices match" in _get(world, "/invoices?customer=cus_other")
    assert "No invoices match" in _get(world, "/invoices?currency=JPY")
    for bad in ("status=bogus", "currency=EURO", "from=yesterday", "series=a/b", "customer=a/b"):
        assert "invalid_filter" in _get(world, f"/invoices?{bad}", 422)


def test_invoice_page_offers_the_actions_of_its_state(world: World) -> None:
    page = _get(world, f"/invoices/{world.invoices[0]}")
    assert world.numbers[0] in page
    for kind in ("invoice.void", "invoice.uncollectible", "invoice.mark_paid"):
        assert f"/confirm/{kind}?invoice_id={world.invoices[0]}" in page
    assert "no invoice" in _get(world, "/invoices/in_missing", 404)


def test_invoice_page_shows_the_billing_reason(world: World) -> None:
    page = _get(world, f"/invoices/{world.invoices[0]}")
    assert "<dt>Billing reason</dt><dd>subscription cycle</dd>" in page  # derived: a period of a subscription


def test_charts_are_server_rendered_svg_with_their_numbers(world: World) -> None:
    page = _get(world, "/charts")
    assert page.count('<svg xmlns="http://www.w3.org/2000/svg"') == 4
    assert page.count('role="img"') == 4
    assert "insufficient_funds" in page  # the seeded failed renewals, by decline category
    assert "<script" not in page.split("</head>")[1]


def test_operations_page_without_dead_letters(world: World) -> None:
    page = _get(world, "/operations")
    assert "Reconciliation exceptions" in page
    assert "Open disputes" in page
    assert "stripe" in page  # webhooks received per PSP and account


def test_pages_carry_the_security_headers_and_static_files_are_served(world: World) -> None:
    r = world.app().test_client().get("/", headers=HEADERS)
    for k, v in SECURITY_HEADERS.items():
        assert r.headers[k] == v
    client = world.app().test_client()
    assert client.get("/static/console.css", headers=HEADERS).mimetype == "text/css"
    assert client.get("/static/../main.py", headers=HEADERS).status_code == 404
    assert client.get("/static/nope.css", headers=HEADERS).status_code == 404


def test_dev_identity_stands_in_only_when_configured(world: World) -> None:
    dev = ConsoleSettings(dev_identity="dev@localhost", csrf_secret=b"k" * 32, deadletter_subscriptions=())
    r = world.app(dev).test_client().get("/")
    assert r.status_code == 200
    assert b"dev@localhost" in r.data


def test_the_payments_timeline_pages_by_ten(world: World) -> None:
    import html
    import re

    from tests.fixtures.console_world import seed_payments

    seed_payments("cus_fr", [f"in_more{i}" for i in range(15)], 1)
    first = _get(world, "/customers/cus_fr")
    assert first.count("stripe charge") == 10
    match = re.search(r'href="(/customers/cus_fr\?before=[^"#]+)', first)
    assert match is not None
    older = _get(world, html.unescape(match.group(1)))
    assert older.count("stripe charge") == 8
    assert "Older payments" not in older


def test_charts_show_the_real_mrr_per_currency(world: World) -> None:
    db = clients.firestore()

    def sub(sub_id: str, status: str, interval: str, amount: int, quantity: int = 1) -> None:
        line = {"description": "plan", "quantity": quantity, "unit_amount": {"amount": amount, "currency": "EUR"}}
        plan = {"id": "p", "currency": "EUR", "interval": interval, "interval_count": 1, "lines": [line]}
        db.collection("subscriptions").document(sub_id).set({"status": status, "plan": plan})

    sub("sub_m", "active", "month", 1000, 2)  # 20.00 a month
    sub("sub_y", "past_due", "year", 12000)  # 120.00 a year: 10.00 a month
    sub("sub_t", "trialing", "month", 99900)  # not renewing yet: left out
    sub("sub_c", "canceled", "month", 99900)
    page = _get(world, "/charts")
    mrr = page.split('<table class="mrr">')[1].split("</table>")[0]
    assert 'data-minor="3000"' in mrr
    assert "<td>EUR</td>" in mrr
    assert ">2</td>" in mrr  # two subscriptions count
    assert "1 subscription(s) could not be read" in page  # the seeded sub_1 has neither plan nor items
    assert "not MRR" in page  # the collected-revenue chart says what it is
