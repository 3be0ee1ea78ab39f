"""Totals, breakdown, credit notes and state transitions as pure values (hypothesis where it fits)."""

from __future__ import annotations

from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from shared.domain import invoices as dom
from shared.domain.money import Money
from shared.domain.tax import TaxDecision, Treatment, decide

FR = decide("FR", "FR", vat_id=None, tax_exempt=False)
CURRENCIES = st.sampled_from(["EUR", "JPY", "KWD"])


@st.composite
def specs(draw: st.DrawFn) -> tuple[str, list[dom.LineSpec]]:
    cur = draw(CURRENCIES)
    n = draw(st.integers(1, 8))
    lines = [
        dom.LineSpec(
            f"line {i}",
            draw(st.integers(1, 50)),
            Money(draw(st.integers(-(10**6), 10**7)), cur),
            tax_category=draw(st.sampled_from(["standard", "reduced"])),
        )
        for i in range(n)
    ]
    return cur, lines


@given(specs())
def test_totals_are_the_sum_of_their_parts(case: tuple[str, list[dom.LineSpec]]) -> None:
    cur, lines_in = case
    lines = dom.price_lines(lines_in, cur, FR)
    t = dom.totals(lines, cur)
    assert t.subtotal.amount == sum(ln.net.amount for ln in lines)
    assert t.tax.amount == sum(ln.tax.amount for ln in lines)
    assert t.total == t.subtotal + t.tax
    assert sum(r.tax.amount for r in t.breakdown) == t.tax.amount
    assert sum(r.net.amount for r in t.breakdown) == t.subtotal.amount
    assert all(ln.net == ln.unit_amount.times(ln.quantity) for ln in lines)
    assert t.amount_due.amount == max(t.total.amount, 0)


@given(specs(), st.integers(1, 10**9))
def test_partial_credit_lines_sum_exactly_to_the_credit(case: tuple[str, list[dom.LineSpec]], raw: int) -> None:
    cur, lines_in = case
    lines = dom.price_lines(lines_in, cur, FR)
    if not any(ln.gross.amount > 0 for ln in lines):
        return
    credit = dom.credit_lines(lines, Money(raw, cur), full=False)
    t = dom.totals(credit, cur)
    assert t.total == Money(raw, cur)
    assert all(ln.net + ln.tax == ln.gross for ln in credit)


def test_full_credit_mirrors_the_invoice() -> None:
    lines = dom.price_lines([dom.LineSpec("Pro", 2, Money(1999, "EUR"))], "EUR", FR)
    credit = dom.credit_lines(lines, Money(4798, "EUR"), full=True)
    assert dom.totals(credit, "EUR") == dom.totals(lines, "EUR")


def test_known_invoice_in_each_exponent() -> None:
    jp = decide("JP", "JP", vat_id=None, tax_exempt=False)
    t = dom.totals(dom.price_lines([dom.LineSpec("Plan", 3, Money(333, "JPY"))], "JPY", jp), "JPY")
    assert (t.subtotal.amount, t.tax.amount, t.total.amount) == (999, 100, 1099)
    bh = TaxDecision(Treatment.DOMESTIC, "BH")
    t = dom.totals(dom.price_lines([dom.LineSpec("Plan", 1, Money(12345, "KWD"))], "KWD", bh), "KWD")
    assert (str(t.tax), str(t.total)) == ("1.235 KWD", "13.580 KWD")
    mixed = dom.price_lines(
        [
            dom.LineSpec("Plan", 1, Money(1000, "EUR")),
            dom.LineSpec("Book", 1, Money(1000, "EUR"), tax_category="reduced"),
        ],
        "EUR",
        FR,
    )
    rows = dom.totals(mixed, "EUR").breakdown
    assert [(r.rate, r.tax.amount) for r in rows] == [(Decimal("0.2"), 200), (Decimal("0.055"), 55)]


def test_lines_in_another_currency_are_refused() -> None:
    with pytest.raises(dom.InvoiceError):
        dom.price_lines([dom.LineSpec("x", 1, Money(1, "USD"))], "EUR", FR)
    with pytest.raises(dom.InvoiceError):
        dom.price_lines([], "EUR", FR)


@pytest.mark.parametrize(
    ("current", "target", "writes"),
    [
        ("draft", "open", True),
        ("open", "paid", True),
        ("open", "void", True),
        ("open", "uncollectible", True),
        ("uncollectible", "paid", True),
        ("uncollectible", "void", True),
        ("paid", "paid", False),
        ("void", "void", False),
    ],
)
def test_allowed_transitions(current: str, target: str, writes: bool) -> None:
    assert dom.transition(dom.Status(current), dom.Status(target)) is writes


@pytest.mark.parametrize(
    ("current", "target"),
    [("draft", "paid"), ("draft", "void"), ("paid", "void"), ("paid", "open"), ("void", "paid"), ("open", "draft")],
)
def test_forbidden_transitions(current: str, target: str) -> None:
    with pytest.raises(dom.InvalidTransition):
        dom.transition(dom.Status(current), dom.Status(target))
