"""Price models to amounts: every model at its boundaries, one rounding point per line, prorations."""

from __future__ import annotations

import datetime as dt
import math
from decimal import Decimal
from fractions import Fraction

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from shared.domain.calendar import Anchor, Cadence, Schedule, Unit
from shared.domain.catalog import Package, PackageRounding, PerUnit, Tier, Tiered
from shared.domain.invoices import LineSpec, credit_lines, price_lines
from shared.domain.money import Money
from shared.domain.pricing import (
    Item,
    LineKind,
    PricingError,
    check_items,
    exact_amount,
    item_change,
    item_lines,
    line_amount,
    replace_price,
    split_inclusive,
)
from shared.domain.tax import decide
from tests.unit.billing.factories import price, tiers

STRIPE_TIERS = ((5, 700, 0), (10, 650, 0), (None, 600, 0))  # reference 2.3: 1-5 @ $7, 6-10 @ $6.50, 11+ @ $6
EUR_MONTH = Schedule(Anchor(dt.datetime(2026, 4, 1), "UTC"), Cadence(Unit.DAY, 30))  # a 30-day period


# -- reference test vectors (explicit cases) ------------------------------------------------------------------
@pytest.mark.parametrize(
    ("qty", "volume", "graduated"),
    [(6, 3_900, 4_150), (20, 12_000, 12_750), (25, 15_000, 15_750), (5, 3_500, 3_500)],
)
def test_vectors_1_2_volume_vs_graduated(qty: int, volume: int, graduated: int) -> None:
    assert line_amount(price(tiers("volume", *STRIPE_TIERS)), qty) == Money(volume, "EUR")
    assert line_amount(price(tiers("graduated", *STRIPE_TIERS)), qty) == Money(graduated, "EUR")


@pytest.mark.parametrize(
    ("qty", "graduated", "volume"), [(1_000, 2_000, 2_000), (1_500, 2_750, 2_250), (1_001, 2_002, 1_502)]
)
def test_vector_3_flat_fee_plus_tiers_and_the_volume_drop(qty: int, graduated: int, volume: int) -> None:
    rows = ((1000, 0, 2000), (None, "1.5", 0))
    assert line_amount(price(tiers("graduated", *rows)), qty).amount == graduated
    assert line_amount(price(tiers("volume", *rows)), qty).amount == volume


def test_vector_4_round_per_line_then_sum() -> None:
    p = price({"model": "per_unit", "unit_amount": "0.05"})
    one = line_amount(p, 30)
    assert one.amount == 2  # 1.5 -> 2, half-up
    assert (one + line_amount(p, 30)).amount == 4  # not 3


@pytest.mark.parametrize(
    ("usage", "rounding", "expected"),
    [(2_500, "up", 12), (999, "up", 4), (2_500, "down", 8), (999, "down", 0), (0, "up", 0), (1_000, "up", 4)],
)
def test_vector_5_package_rounding(usage: int, rounding: str, expected: int) -> None:
    p = price({"model": "package", "package_size": 1000, "package_amount": 4, "rounding": rounding})
    assert line_amount(p, usage).amount == expected


@pytest.mark.parametrize(("usage", "expected"), [(201, 1_000), (100, 0), (0, 0), (200, 500)])
def test_vector_6_package_with_free_units(usage: int, expected: int) -> None:
    p = price({"model": "package", "package_size": 100, "package_amount": 500, "free_units": 100})
    assert line_amount(p, usage).amount == expected


@pytest.mark.parametrize(("usage", "expected"), [(98, 5_000), (20, 1_000), (Decimal("20.1"), 2_000)])
def test_vector_7_package_with_decimal_usage(usage: int | Decimal, expected: int) -> None:
    p = price({"model": "package", "package_size": 20, "package_amount": 1000})
    assert line_amount(p, usage).amount == expected


def test_vector_8_volume_with_flat_fee_per_tier() -> None:
    rows = ((10_000, "0.1", 1000), (50_000, "0.08", 1000), (100_000, "0.06", 1000), (None, "0.05", 1000))
    assert line_amount(price(tiers("volume", *rows), currency="USD"), 65_000) == Money(4_900, "USD")


def test_worked_invoice_usage_graduated_and_volume() -> None:
    """Reference 4.3: 150,000 calls, first 10,000 free, then 0.08 then 0.05 cent."""
    rows = ((10_000, 0, 0), (100_000, "0.08", 0), (None, "0.05", 0))
    assert line_amount(price(tiers("graduated", *rows), currency="USD"), 150_000).amount == 9_700
    assert line_amount(price(tiers("volume", *rows), currency="USD"), 150_000).amount == 7_500


@pytest.mark.parametrize(
    ("currency", "unit", "qty", "expected"),
    [
        ("JPY", "0.5", 3, 2),  # 1.5 yen -> 2 (exponent 0)
        ("JPY", "0.4999", 1, 0),
        ("EUR", "0.005", 100, 1),  # 0.5 cent -> 1
        ("EUR", "0.004999999999", 100, 0),
        ("KWD", "12.3456", 10, 123),  # 123.456 fils -> 123 (exponent 3)
        ("KWD", "0.000000000001", 500_000_000_000, 1),  # 12 decimal places, half a fils -> 1
    ],
)
def test_decimal_unit_amounts_round_once_half_up(currency: str, unit: str, qty: int, expected: int) -> None:
    assert line_amount(price({"model": "per_unit", "unit_amount": unit}, currency=currency), qty).amount == expected


# -- properties: tiers at, below and above every bound --------------------------------------------------------
@st.composite
def tier_tables(draw: st.DrawFn) -> Tiered:
    n = draw(st.integers(1, 5))
    bounds = sorted(draw(st.sets(st.integers(1, 60), min_size=n - 1, max_size=n - 1)))
    amounts = st.decimals(0, 10_000, places=draw(st.integers(0, 4)))
    rows = [
        Tier(up_to=b, unit_amount=draw(amounts), flat_amount=draw(st.sampled_from([Decimal(0), draw(amounts)])))
        for b in [*bounds, None]
    ]
    return Tiered(model=draw(st.sampled_from(["graduated", "volume"])), tiers=tuple(rows))


def _tier_of(model: Tiered, unit: int) -> int:
    return next(i for i, t in enumerate(model.tiers) if t.up_to is None or unit <= t.up_to)


def _brute(model: Tiered, q: int) -> Fraction:
    """The definition, unit by unit: graduated prices unit i at its tier; volume prices all at q's tier."""
    if q == 0:
        return Fraction(0)
    if model.model == "volume":
        t = model.tiers[_tier_of(model, q)]
        return q * Fraction(t.unit_amount) + Fraction(t.flat_amount)
    reached = {_tier_of(model, i) for i in range(1, q + 1)}
    units = sum((Fraction(model.tiers[_tier_of(model, i)].unit_amount) for i in range(1, q + 1)), Fraction(0))
    return units + sum((Fraction(model.tiers[i].flat_amount) for i in reached), Fraction(0))


@settings(deadline=None)
@given(tier_tables())
def test_tiers_sum_correctly_at_below_and_above_every_bound(model: Tiered) -> None:
    bounds = [t.up_to for t in model.tiers if t.up_to is not None]
    for q in sorted({0, 1, *(b + d for b in bounds for d in (-1, 0, 1))}):
        if q >= 0:
            assert exact_amount(model, q) == _brute(model, q), q


@settings(deadline=None)
@given(tier_tables(), st.integers(0, 80))
def test_graduated_increment_is_the_next_units_tier(model: Tiered, q: int) -> None:
    g = model.model_copy(update={"model": "graduated"})
    t = g.tiers[_tier_of(g, q + 1)]
    first_of_tier = q == 0 or _tier_of(g, q) != _tier_of(g, q + 1)
    expected = Fraction(t.unit_amount) + (Fraction(t.flat_amount) if first_of_tier else 0)
    assert exact_amount(g, q + 1) - exact_amount(g, q) == expected


@settings(deadline=None)
@given(tier_tables(), st.integers(0, 10**6), st.sampled_from(["EUR", "JPY", "KWD"]))
def test_a_line_is_its_exact_amount_rounded_once_half_up(model: Tiered, q: int, currency: str) -> None:
    exact = exact_amount(model, q)
    got = line_amount(price(model.model_dump(mode="json"), currency=currency), q).amount
    assert abs(got - exact) <= Fraction(1, 2)
    assert got == math.floor(exact + Fraction(1, 2))  # half-up on non-negative amounts


@settings(deadline=None)
@given(
    st.integers(1, 500),
    st.decimals(0, 10_000, places=3),
    st.integers(0, 300),
    st.integers(0, 10_000),
)
def test_package_up_is_ceiling_and_down_is_floor(size: int, amount: Decimal, free: int, usage: int) -> None:
    up = Package(package_size=size, package_amount=amount, free_units=free)
    down = up.model_copy(update={"rounding": PackageRounding.DOWN})
    paid = max(usage - free, 0)
    assert exact_amount(up, usage) == -(-paid // size) * Fraction(amount)
    assert exact_amount(down, usage) == (paid // size) * Fraction(amount)
    assert exact_amount(down, usage) <= exact_amount(up, usage) <= exact_amount(down, usage) + Fraction(amount)


@settings(deadline=None)
@given(st.integers(0, 10**9), st.decimals(0, 10**6, places=12))
def test_per_unit_is_quantity_times_unit(q: int, unit: Decimal) -> None:
    assert exact_amount(PerUnit(unit_amount=unit), q) == q * Fraction(unit)


@pytest.mark.parametrize("bad", [1.0, True, -1, Decimal("NaN"), Decimal("1e13"), Decimal("0.0000000000001")])
def test_quantities_are_exact_bounded_and_never_float(bad: object) -> None:
    with pytest.raises(PricingError):
        exact_amount(PerUnit(unit_amount=1), bad)  # type: ignore[arg-type]


# -- tax-inclusive lines ------------------------------------------------------------------------------------
@settings(deadline=None)
@given(st.integers(0, 10**10), st.sampled_from(["0.2", "0.055", "0.255", "0.1", "0", "0.077"]))
def test_inclusive_split_is_exact_and_the_per_line_half_up_rule(gross: int, rate: str) -> None:
    g = Money(gross, "EUR")
    net, tax = split_inclusive(g, Decimal(rate))
    assert net + tax == g
    r = Fraction(Decimal(rate))
    assert tax.amount == math.floor(gross * r / (1 + r) + Fraction(1, 2))
    # the same split the credit notes of shared.domain.invoices use for a part of a line
    fr = decide("FR", "FR", vat_id=None, tax_exempt=False)
    if rate == "0.2" and gross > 0:
        (cl,) = credit_lines(price_lines([LineSpec("x", 1, Money(10**11, "EUR"))], "EUR", fr), g, full=False)
        assert (cl.net, cl.tax) == (net, tax)


def test_inclusive_example() -> None:
    """119.00 EUR VAT included at 19 %: tax 19.00, net 100.00; 10.00 at 19 %: tax 1.597 -> 1.60."""
    assert split_inclusive(Money(11_900, "EUR"), Decimal("0.19")) == (Money(10_000, "EUR"), Money(1_900, "EUR"))
    assert split_inclusive(Money(1_000, "EUR"), Decimal("0.19")) == (Money(840, "EUR"), Money(160, "EUR"))


# -- items and prorations -----------------------------------------------------------------------------------
def _monthly(unit: int, *, id: str = "seat", currency: str = "USD") -> Item:
    return Item(
        price=price(
            {"model": "per_unit", "unit_amount": unit}, currency=currency, id=id, recurring={"interval": "month"}
        ),
        quantity=1,
    )


def test_vector_14_price_change_halfway() -> None:
    period = EUR_MONTH.period(0)
    half = period.start + dt.timedelta(days=15)
    credit, charge = item_change(_monthly(1000, id="basic"), _monthly(2000, id="pro"), period, half)
    assert (credit.amount.amount, charge.amount.amount) == (-500, 1000)
    assert credit.kind is charge.kind is LineKind.PRORATION
    assert not credit.discountable
    assert not charge.discountable
    assert (charge.period_start, charge.period_end) == (half, period.end)


def test_vector_15_quantity_change_day_15_of_30() -> None:
    period = EUR_MONTH.period(0)
    seats = _monthly(1000)
    lines = item_change(
        seats.model_copy(update={"quantity": 5}),
        seats.model_copy(update={"quantity": 8}),
        period,
        period.start + dt.timedelta(days=15),
    )
    assert [ln.amount.amount for ln in lines] == [-2_500, 4_000]
    assert sum(ln.amount.amount for ln in lines) == 1_500


def test_item_added_and_removed_mid_period_and_volume_retiered() -> None:
    period = EUR_MONTH.period(0)
    at = period.start + dt.timedelta(days=20)  # a third of the period left
    (added,) = item_change(None, _monthly(3000), period, at)
    (removed,) = item_change(_monthly(3000), None, period, at)
    assert (added.amount.amount, removed.amount.amount) == (1000, -1000)
    vol = Item(price=price(tiers("volume", *STRIPE_TIERS), recurring={"interval": "month"}), quantity=5)
    credit, charge = item_change(vol, vol.model_copy(update={"quantity": 6}), period, at)
    assert (credit.amount.amount, charge.amount.amount) == (-1_167, 1_300)  # 3500/3 half-up; 3900/3
    assert item_change(_monthly(3000), _monthly(3000), period, period.end) == ()  # nothing left to prorate


def test_items_share_one_cycle() -> None:
    period = EUR_MONTH.period(0)
    a, b = _monthly(1000, id="a"), _monthly(500, id="b").model_copy(update={"quantity": 3})
    assert [ln.amount.amount for ln in item_lines([a, b], period)] == [1000, 1500]
    yearly = Item(
        price=price({"model": "per_unit", "unit_amount": 1}, currency="USD", id="y", recurring={"interval": "year"}),
        quantity=1,
    )
    for bad in ([a, yearly], [a, a], [], [a, _monthly(1, id="eur", currency="EUR")]):
        with pytest.raises(PricingError):
            check_items(bad)
    with pytest.raises(PricingError):
        item_change(a, _monthly(1, id="eur", currency="EUR"), period, period.start)


def test_a_price_migration_moves_one_item_keeping_quantity_place_and_cycle() -> None:
    a, b = _monthly(1000, id="a").model_copy(update={"quantity": 4}), _monthly(500, id="b")
    new = _monthly(1200, id="a2").price
    moved = replace_price([a, b], "a", new)
    assert [(i.price.id, i.quantity) for i in moved] == [("a2", 4), ("b", 1)]
    assert replace_price([a, b], "b", _monthly(600, id="b2").price)[0] is a  # the other items untouched
    yearly = price({"model": "per_unit", "unit_amount": 1}, currency="USD", id="y", recurring={"interval": "year"})
    refused = {
        "no item": ([a, b], "zzz", new),
        "already an item": ([a, b], "a", b.price),
        "another cadence": ([a, b], "a", yearly),
        "another currency": ([a, b], "a", _monthly(1, id="eur", currency="EUR").price),
    }
    for why, (items, old, target) in refused.items():
        with pytest.raises(PricingError):
            replace_price(items, old, target)  # refused: see ``why``
        assert why
