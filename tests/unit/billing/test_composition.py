"""Invoice composition: lines, discounts before tax, per-line tax, credit after tax; previews; credit notes."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from fractions import Fraction
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from shared.domain.calendar import Anchor, Cadence, Schedule, Unit
from shared.domain.catalog import TaxBehavior
from shared.domain.composition import ComposedInvoice, CompositionError, compose, credit_note
from shared.domain.credit import CreditEntry, application_id, balance, check_ledger, grant
from shared.domain.discounts import AppliedDiscount, Duration
from shared.domain.money import Money
from shared.domain.pricing import Item, LineKind, item_change, item_lines, price_line, split_inclusive
from shared.domain.tax import decide, line_tax
from tests.unit.billing.factories import T0, fixed, line, percent, price, tiers

FR = decide("FR", "FR", vat_id=None, tax_exempt=False)  # 20 % / 5.5 %
DE = decide("DE", "DE", vat_id=None, tax_exempt=False)  # 19 % / 7 %
REVERSE = decide("FR", "DE", vat_id="DE123456789", tax_exempt=False)


def _check(inv: ComposedInvoice) -> None:
    """Every identity of the composition module doc."""
    for ln in inv.lines:
        assert ln.discount.amount == sum(p.amount.amount for p in ln.discounts)
        if ln.tax_behavior is TaxBehavior.EXCLUSIVE:
            assert ln.amount - ln.discount == ln.net
            assert ln.tax == line_tax(ln.net, ln.rate)  # the per-line rule on the discounted line
        else:
            assert ln.amount - ln.discount == ln.net + ln.tax
            assert (ln.net, ln.tax) == split_inclusive(ln.amount - ln.discount, ln.rate)
        assert ln.total == ln.net + ln.tax
    assert inv.subtotal.amount == sum(ln.amount.amount for ln in inv.lines)
    assert inv.discount.amount == sum(d.amount.amount for d in inv.discounts)
    assert inv.total == inv.subtotal - inv.discount + inv.exclusive_tax == inv.net + inv.tax
    assert inv.total.amount == sum(ln.total.amount for ln in inv.lines)
    assert inv.amount_due == Money(max(inv.total.amount, 0), inv.currency) - inv.credit_applied
    assert inv.amount_due.amount >= 0
    assert inv.credit_applied.amount >= 0
    assert inv.excess.amount == max(-inv.total.amount, 0)
    for m in (inv.subtotal, inv.discount, inv.net, inv.tax, inv.total, inv.credit_applied, inv.amount_due):
        assert type(m.amount) is int
        assert m.currency == inv.currency


# -- reference vectors ----------------------------------------------------------------------------------------
def test_vector_10_coupon_before_tax_credit_after() -> None:
    ledger = [grant("cus", "wallet", Money(5000, "EUR"), T0)]
    inv = compose(
        [line(3000), line(7000, product="prod-b")],
        currency="EUR",
        tax=FR,
        discounts=[percent(15)],
        credit_entries=ledger,
        customer_id="cus",
        invoice_id="in_1",
        at=T0,
    )
    assert [ln.discount.amount for ln in inv.lines] == [450, 1050]
    assert (inv.discount.amount, inv.tax.amount, inv.total.amount) == (1500, 1700, 10_200)
    assert (inv.credit_applied.amount, inv.amount_due.amount) == (5000, 5200)
    _check(inv)


def test_vector_11_worked_invoice_with_a_balance_credit() -> None:
    usage = price(
        tiers("graduated", (10_000, 0, 0), (100_000, "0.08", 0), (None, "0.05", 0)), id="usage", currency="USD"
    )
    fee = price({"model": "per_unit", "unit_amount": 4900}, id="plan", currency="USD")
    lines = [price_line(fee, 1), price_line(usage, 150_000)]
    gb = decide("GB", "GB", vat_id=None, tax_exempt=False)  # 20 %
    ledger = [grant("cus", "g", Money(3000, "USD"), T0)]
    inv = compose(
        lines,
        currency="USD",
        tax=gb,
        discounts=[percent(20)],
        credit_entries=ledger,
        customer_id="cus",
        invoice_id="in_1",
        at=T0,
    )
    assert [ln.amount.amount for ln in inv.lines] == [4900, 9700]
    assert [ln.discount.amount for ln in inv.lines] == [980, 1940]
    assert (inv.net.amount, inv.tax.amount, inv.total.amount) == (11_680, 2336, 14_016)
    assert inv.amount_due.amount == 11_016  # the credit is a payment: the tax base is unchanged
    _check(inv)


def test_vector_12_once_fixed_coupon_over_two_invoices() -> None:
    d = fixed(Money(12_000, "EUR"), duration=Duration.ONCE)
    first, second = (compose([line(10_000)], currency="EUR", tax=FR, discounts=[d], period_index=k) for k in (0, 1))
    assert (first.discount.amount, first.total.amount) == (10_000, 0)  # never below zero
    assert (second.discount.amount, second.total.amount) == (0, 12_000)


def test_vectors_14_15_prorations_are_not_discounted_but_taxed() -> None:
    schedule = Schedule(Anchor(dt.datetime(2026, 4, 1), "UTC"), Cadence(Unit.DAY, 30))
    period = schedule.period(1)
    seat = Item(
        price=price({"model": "per_unit", "unit_amount": 1000}, currency="USD", recurring={"interval": "month"}),
        quantity=5,
    )
    changes = item_change(
        seat,
        seat.model_copy(update={"quantity": 8}),
        schedule.period(0),
        schedule.period(0).start + dt.timedelta(days=15),
    )
    gb = decide("GB", "GB", vat_id=None, tax_exempt=False)
    lines = [*item_lines([seat.model_copy(update={"quantity": 8})], period), *changes]
    inv = compose(lines, currency="USD", tax=gb, discounts=[percent(10)], period_index=1)
    assert [(ln.kind, ln.amount.amount, ln.discount.amount, ln.tax.amount) for ln in inv.lines] == [
        (LineKind.RECURRING, 8000, 800, 1440),
        (LineKind.PRORATION, -2500, 0, -500),
        (LineKind.PRORATION, 4000, 0, 800),
    ]
    assert inv.total.amount == 7200 + 1440 - 2500 - 500 + 4000 + 800
    _check(inv)


# -- tax behaviours and currencies --------------------------------------------------------------------------
def test_inclusive_line_discounted_then_split() -> None:
    inv = compose([line(11_900, behavior=TaxBehavior.INCLUSIVE)], currency="EUR", tax=DE, discounts=[percent(10)])
    (ln,) = inv.lines
    assert (ln.amount.amount, ln.discount.amount, ln.total.amount) == (11_900, 1190, 10_710)
    assert (ln.net.amount, ln.tax.amount) == (9000, 1710)
    assert inv.exclusive_tax.amount == 0
    assert inv.total == inv.subtotal - inv.discount
    # a reverse-charge buyer pays the same gross, with no tax in it
    (rc,) = compose([line(11_900, behavior=TaxBehavior.INCLUSIVE)], currency="EUR", tax=REVERSE).lines
    assert (rc.net.amount, rc.tax.amount) == (11_900, 0)


@pytest.mark.parametrize(
    ("currency", "unit", "qty", "amount", "tax"),
    [("JPY", "0.5", 3, 2, 0), ("EUR", "0.05", 30, 2, 0), ("KWD", "12.3456", 10, 123, 25)],
)
def test_decimal_prices_in_each_exponent(currency: str, unit: str, qty: int, amount: int, tax: int) -> None:
    p = price({"model": "per_unit", "unit_amount": unit}, currency=currency)
    inv = compose([price_line(p, qty)], currency=currency, tax=FR)
    assert (inv.subtotal.amount, inv.tax.amount) == (amount, tax)
    _check(inv)


def test_composition_refuses_what_can_never_be_invoiced() -> None:
    with pytest.raises(CompositionError):
        compose([], currency="EUR", tax=FR)
    with pytest.raises(CompositionError):
        compose([line(1, currency="USD")], currency="EUR", tax=FR)
    with pytest.raises(CompositionError):
        compose([line(1)], currency="EUR", tax=FR, credit_entries=[grant("c", "g", Money(1, "EUR"), T0)])


# -- properties -----------------------------------------------------------------------------------------------
@st.composite
def invoices(draw: st.DrawFn) -> dict[str, Any]:
    cur = draw(st.sampled_from(["EUR", "JPY", "KWD"]))
    lines = [
        line(
            draw(st.integers(-(10**5), 10**8)),
            currency=cur,
            product=draw(st.sampled_from("ab")),
            behavior=draw(st.sampled_from(list(TaxBehavior))),
            category=draw(st.sampled_from(["standard", "reduced"])),
            discountable=draw(st.booleans()),
            description=f"line {i}",
        )
        for i in range(draw(st.integers(1, 6)))
    ]
    discounts: list[AppliedDiscount] = []
    for i in range(draw(st.integers(0, 3))):
        products = draw(st.none() | st.just(("a",)))
        if draw(st.booleans()):
            discounts.append(percent(draw(st.decimals(1, 100, places=2)), id=f"d{i}", products=products))  # type: ignore[arg-type]
        else:
            discounts.append(fixed(Money(draw(st.integers(1, 10**8)), cur), id=f"d{i}", products=products))
    credit = draw(st.integers(0, 10**8))
    ledger = [grant("cus", "g", Money(credit, cur), T0)] if credit else []
    return {
        "lines": lines,
        "currency": cur,
        "discounts": discounts,
        "credit_entries": ledger,
        "tax": draw(st.sampled_from([FR, DE, REVERSE])),
        "customer_id": "cus",
        "invoice_id": "in_1",
        "at": T0,
    }


@settings(deadline=None)
@given(invoices())
def test_every_part_reconciles_in_integer_minor_units(kw: dict[str, Any]) -> None:
    inv = compose(**kw)
    _check(inv)
    available = balance(kw["credit_entries"], kw["currency"]).amount
    assert inv.credit_applied.amount == min(available, max(inv.total.amount, 0))


@settings(deadline=None)
@given(invoices())
def test_the_preview_is_the_invoice(kw: dict[str, Any]) -> None:
    """Preview before the credit is written == the invoice composed after writing it (and again on a retry)."""
    preview = compose(**kw)
    ledger: list[CreditEntry] = list(kw["credit_entries"])
    if preview.credit_entry is not None:
        ledger.append(preview.credit_entry)
    check_ledger(ledger, kw["currency"])
    real = compose(
        **{
            **kw,
            "credit_entries": ledger,
            "lines": list(reversed(kw["lines"]))[::-1],
            "discounts": list(reversed(kw["discounts"])),
        }
    )
    assert real.model_copy(update={"credit_entry": preview.credit_entry}) == preview
    assert compose(**{**kw, "credit_entries": ledger}).credit_entry is None
    assert ComposedInvoice.model_validate(preview.model_dump(mode="json")) == preview


# -- credit notes -----------------------------------------------------------------------------------------------
def test_a_partial_credit_note_carries_the_proportional_discount() -> None:
    inv = compose([line(10_000)], currency="EUR", tax=FR, discounts=[percent(20)])
    assert (inv.discount.amount, inv.net.amount, inv.tax.amount, inv.total.amount) == (2000, 8000, 1600, 9600)
    note = credit_note(inv, Money(4800, "EUR"))  # half of it
    (ln,) = note.lines
    assert (ln.amount.amount, ln.discount.amount, ln.net.amount, ln.tax.amount, ln.total.amount) == (
        5000,
        1000,
        4000,
        800,
        4800,
    )
    assert ln.discounts[0].coupon_id == "c-d1"
    full = credit_note(inv)
    assert (full.subtotal, full.discount, full.tax, full.total) == (inv.subtotal, inv.discount, inv.tax, inv.total)
    with pytest.raises(CompositionError):
        credit_note(inv, Money(9601, "EUR"))


@settings(deadline=None)
@given(invoices(), st.integers(1, 10**9))
def test_partial_credit_notes_sum_exactly_and_never_exceed_the_discount(kw: dict[str, Any], raw: int) -> None:
    inv = compose(**kw)
    if inv.total.amount < 2:
        return
    amount = Money(1 + raw % (inv.total.amount - 1), inv.currency)
    note = credit_note(inv, amount)
    assert note.total == amount
    assert note.total == note.subtotal - note.discount + note.exclusive_tax == note.net + note.tax
    by_desc = {f"Credit: {ln.description}": ln for ln in inv.lines}
    for cl in note.lines:
        src = by_desc[cl.description]
        assert cl.total.amount <= src.total.amount
        assert cl.net + cl.tax == cl.total
        assert cl.amount - cl.discount == (cl.total if cl.tax_behavior is TaxBehavior.INCLUSIVE else cl.net)
        for d in cl.discounts:
            (orig,) = [p for p in src.discounts if p.discount_id == d.discount_id]
            assert 0 < d.amount.amount <= orig.amount.amount
            exact = orig.amount.amount * Fraction(cl.total.amount, src.total.amount)
            assert abs(d.amount.amount - exact) <= Fraction(1, 2)


def test_application_keyed_by_invoice_in_the_composition() -> None:
    ledger = [grant("cus", "g", Money(700, "EUR"), T0)]
    inv = compose(
        [line(1000)], currency="EUR", tax=FR, credit_entries=ledger, customer_id="cus", invoice_id="in_9", at=T0
    )
    assert inv.credit_entry is not None
    assert inv.credit_entry.id == application_id("in_9")
    assert (inv.credit_applied.amount, inv.amount_due.amount) == (700, 500)
    assert Decimal(inv.model_dump(mode="json")["lines"][0]["rate"]) == Decimal("0.2")
