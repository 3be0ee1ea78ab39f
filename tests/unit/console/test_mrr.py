"""MRR normalisation: exact fractions to a month, one half-even rounding per subscription."""

from __future__ import annotations

from fractions import Fraction
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from shared.console.mrr import monthly, round_half_even, subscription_mrr

amounts = st.integers(min_value=0, max_value=10**12)
counts = st.integers(min_value=1, max_value=36)


@given(amounts, counts)
def test_twelve_monthly_periods_equal_one_yearly_period(amount: int, n: int) -> None:
    assert monthly(amount, "month", n) == monthly(amount * 12, "year", n)  # a month's price x12 billed yearly
    assert monthly(amount, "month", 12 * n) == monthly(amount, "year", n)  # 12 months are a year
    assert 12 * monthly(amount, "year", n) == Fraction(amount, n)


@given(amounts, counts)
def test_weekly_and_daily_use_52_and_365_per_year(amount: int, n: int) -> None:
    assert monthly(amount, "week", n) * 12 == Fraction(amount * 52, n)
    assert monthly(amount, "day", n) * 12 == Fraction(amount * 365, n)


@given(amounts, counts, st.sampled_from(["day", "week", "month", "year"]))
def test_the_result_is_exact_never_a_float(amount: int, n: int, interval: str) -> None:
    value = monthly(amount, interval, n)
    assert isinstance(value, Fraction)
    assert isinstance(round_half_even(value), int)


def test_floats_and_bad_intervals_are_refused() -> None:
    with pytest.raises(TypeError):
        monthly(10.0, "month", 1)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="interval must be"):
        monthly(10, "fortnight", 1)
    with pytest.raises(ValueError, match="positive integer"):
        monthly(10, "month", 0)


def test_rounding_is_half_to_even_once_per_subscription() -> None:
    assert round_half_even(Fraction(5, 2)) == 2
    assert round_half_even(Fraction(7, 2)) == 4
    # 1 EUR yearly -> 8.333.. cents a month: rounded once on the subscription's total, not per line
    doc = _plan(
        "year", 1, [{"unit_amount": {"amount": 50, "currency": "EUR"}, "quantity": 1}] * 2
    )  # 2 x 4.1666 -> 8.33 -> 8 (per line rounding would give 4 + 4 = 8 too; see the weekly case)
    assert subscription_mrr(doc) == ("EUR", 8)
    weekly = _plan("week", 1, [{"unit_amount": {"amount": 3, "currency": "EUR"}, "quantity": 1}] * 2)
    # per line: round(3*52/12 = 13) = 13 each; 6*52/12 = 26 exactly
    assert subscription_mrr(weekly) == ("EUR", 26)
    yearly = _plan("year", 1, [{"unit_amount": {"amount": 6, "currency": "EUR"}, "quantity": 1}] * 3)
    # per line round(0.5) = 0 three times -> 0; once on the total: round(1.5) = 2
    assert subscription_mrr(yearly) == ("EUR", 2)


def test_plan_quantity_interval_count_and_statuses() -> None:
    doc = _plan("month", 3, [{"unit_amount": {"amount": 1000, "currency": "EUR"}, "quantity": 3}])
    assert subscription_mrr(doc) == ("EUR", 1000)
    assert subscription_mrr({**doc, "status": "past_due"}) == ("EUR", 1000)
    for status in ("trialing", "unpaid", "canceled"):
        assert subscription_mrr({**doc, "status": status}) is None


def test_items_use_their_price_snapshots_at_their_quantity() -> None:
    price = {
        "id": "price_seat",
        "product_id": "prod_a",
        "currency": "JPY",
        "recurring": {"interval": "year", "interval_count": 1},
        "pricing": {"model": "per_unit", "unit_amount": "1200"},
    }
    doc = {"status": "active", "items": [{"price": price, "quantity": 5}], "plan": None}
    assert subscription_mrr(doc) == ("JPY", 500)


def test_unreadable_documents_raise_rather_than_guess() -> None:
    with pytest.raises(ValueError, match="without plan or items"):
        subscription_mrr({"status": "active"})
    with pytest.raises(ValueError, match="integer unit_amount"):
        subscription_mrr(_plan("month", 1, [{"unit_amount": {"amount": 1.5, "currency": "EUR"}, "quantity": 1}]))


def _plan(interval: str, n: int, lines: list[dict[str, Any]]) -> dict[str, Any]:
    plan = {"id": "p", "currency": "EUR", "interval": interval, "interval_count": n, "lines": lines}
    return {"status": "active", "plan": plan}
