"""Money: exactness, explicit rounding and exponents for every ISO 4217 currency (hypothesis)."""

from __future__ import annotations

from decimal import Decimal
from fractions import Fraction

import pytest
from hypothesis import given
from hypothesis import strategies as st

from shared.domain.iso4217 import EXPONENTS
from shared.domain.money import CurrencyError, Money, Rounding, exponent, total

CURRENCIES = sorted(c for c, e in EXPONENTS.items() if e is not None)
amounts = st.integers(min_value=-(10**15), max_value=10**15)
currencies = st.sampled_from(CURRENCIES)
roundings = st.sampled_from(list(Rounding))


def test_exponents_of_representative_currencies() -> None:
    assert exponent("JPY") == 0
    assert exponent("EUR") == 2
    assert exponent("KWD") == 3
    assert exponent("CLF") == 4
    assert len(CURRENCIES) > 150


@pytest.mark.parametrize("code", ["XAU", "XXX", "XDR"])
def test_codes_without_minor_unit_are_refused(code: str) -> None:
    with pytest.raises(CurrencyError, match="no minor unit"):
        Money(1, code)


@pytest.mark.parametrize("code", ["EURO", "eur", "HRK", ""])
def test_unknown_or_withdrawn_codes_are_refused(code: str) -> None:
    with pytest.raises(CurrencyError, match="unknown"):
        Money(1, code)


@pytest.mark.parametrize("bad", [1.0, True, "100", Decimal(1)])
def test_amount_must_be_int_minor_units(bad: object) -> None:
    with pytest.raises(TypeError):
        Money(bad, "EUR")  # type: ignore[arg-type]


def test_floats_are_refused_in_every_entry_point() -> None:
    with pytest.raises(TypeError):
        Money.from_decimal(10.99, "EUR", rounding=Rounding.HALF_UP)  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        Money(100, "EUR").multiply(0.2, rounding=Rounding.HALF_UP)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("value", "currency", "minor"),
    [("10.99", "EUR", 1099), ("1099", "JPY", 1099), ("1.234", "KWD", 1234), ("0.0001", "CLF", 1)],
)
def test_parse_exact_respects_exponent(value: str, currency: str, minor: int) -> None:
    assert Money.parse_exact(value, currency) == Money(minor, currency)


def test_parse_exact_refuses_extra_decimals() -> None:
    with pytest.raises(ValueError, match="more decimals"):
        Money.parse_exact("10.999", "EUR")
    with pytest.raises(ValueError, match="more decimals"):
        Money.parse_exact("1.5", "JPY")


@pytest.mark.parametrize(
    ("rounding", "expected"),
    [
        (Rounding.HALF_UP, [3, 2, -3]),
        (Rounding.HALF_EVEN, [2, 2, -2]),
        (Rounding.DOWN, [2, 2, -2]),
        (Rounding.UP, [3, 3, -3]),
        (Rounding.FLOOR, [2, 2, -3]),
        (Rounding.CEILING, [3, 3, -2]),
    ],
)
def test_rounding_modes_are_what_their_names_say(rounding: Rounding, expected: list[int]) -> None:
    got = [Money.from_decimal(v, "EUR", rounding=rounding).amount for v in ("0.025", "0.021", "-0.025")]
    assert got == expected


def test_formatting_uses_the_exponent() -> None:
    assert str(Money(1099, "EUR")) == "10.99 EUR"
    assert str(Money(500, "JPY")) == "500 JPY"
    assert str(Money(-1, "KWD")) == "-0.001 KWD"


def test_mixing_currencies_is_an_error() -> None:
    with pytest.raises(CurrencyError, match="mismatch"):
        Money(1, "EUR") + Money(1, "USD")
    with pytest.raises(CurrencyError):
        _ = Money(1, "EUR") < Money(2, "USD")


@given(amounts, amounts, currencies)
def test_addition_is_exact_and_subtraction_inverts_it(a: int, b: int, cur: str) -> None:
    x, y = Money(a, cur), Money(b, cur)
    assert (x + y).amount == a + b
    assert (x + y) - y == x
    assert (-x).amount == -a
    assert x + (-x) == Money.zero(cur)


@given(amounts, currencies, st.lists(st.integers(0, 1000), min_size=1, max_size=12).filter(lambda r: sum(r) > 0))
def test_allocate_parts_sum_to_the_whole_and_stay_fair(a: int, cur: str, ratios: list[int]) -> None:
    m = Money(a, cur)
    parts = m.allocate(ratios)
    assert total(parts, cur) == m
    for part, r in zip(parts, ratios, strict=True):
        exact = Fraction(a * r, sum(ratios))
        assert abs(part.amount - exact) < 1  # every part within one minor unit of its exact share


@given(amounts, currencies, st.integers(1, 50))
def test_split_is_near_equal(a: int, cur: str, n: int) -> None:
    parts = Money(a, cur).split(n)
    assert sum(p.amount for p in parts) == a
    assert max(p.amount for p in parts) - min(p.amount for p in parts) <= 1


@given(amounts, currencies, st.decimals(min_value=-10, max_value=10, places=6, allow_nan=False), roundings)
def test_multiply_is_within_one_unit_and_never_uses_float(a: int, cur: str, factor: Decimal, r: Rounding) -> None:
    got = Money(a, cur).multiply(factor, rounding=r)
    exact = Fraction(a) * Fraction(factor)
    assert abs(Fraction(got.amount) - exact) < 1
    assert type(got.amount) is int


@given(amounts, currencies)
def test_decimal_round_trip_is_lossless(a: int, cur: str) -> None:
    m = Money(a, cur)
    assert Money.parse_exact(str(m.to_decimal()), cur) == m
    assert Money.from_decimal(m.to_decimal(), cur, rounding=Rounding.HALF_EVEN) == m


@given(st.integers(-(10**6), 10**6), currencies)
def test_half_even_is_unbiased_on_exact_halves(a: int, cur: str) -> None:
    # x.5 minor units rounds to the even neighbour: the sum of many halves does not drift upwards.
    half = Money(a, cur).multiply(Fraction(1, 2), rounding=Rounding.HALF_EVEN)
    assert half.amount % 2 == 0 or a % 2 == 0
