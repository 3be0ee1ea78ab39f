"""Coupons and promotion codes: durations, redemption rules, allocation, stacking order."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from shared.domain.catalog import TaxBehavior
from shared.domain.discounts import (
    AppliedDiscount,
    Coupon,
    DiscountError,
    Duration,
    PromotionCode,
    allocate,
    find_code,
    redemption_refusal,
    stacking_order,
)
from shared.domain.money import Money, Rounding
from shared.domain.pricing import LineKind
from tests.unit.billing.factories import T0, fixed, line, percent


def _totals(parts: tuple[tuple[Any, ...], ...]) -> list[int]:
    return [sum(p.amount.amount for p in ps) for ps in parts]


# -- durations ------------------------------------------------------------------------------------------------
@settings(deadline=None)
@given(st.integers(0, 50), st.integers(1, 40))
def test_repeating_coupons_end_exactly_after_n_periods(start: int, n: int) -> None:
    d = percent(10, duration=Duration.REPEATING, n=n, start=start)
    active = [k for k in range(start + n + 20) if d.active_for(k)]
    assert active == list(range(start, start + n))


@settings(deadline=None)
@given(st.integers(0, 50), st.integers(0, 200))
def test_once_and_forever(start: int, k: int) -> None:
    assert percent(10, duration=Duration.ONCE, start=start).active_for(k) == (k == start)
    assert percent(10, duration=Duration.FOREVER, start=start).active_for(k) == (k >= start)


def test_an_inactive_discount_does_not_apply() -> None:
    d = percent(50, duration=Duration.REPEATING, n=2, start=1)
    lines = [line(1000)]
    assert [_totals(allocate(lines, [d], period_index=k, currency="EUR")) for k in range(4)] == [[0], [500], [500], [0]]


@pytest.mark.parametrize(
    "kw",
    [
        {},  # neither kind
        {"percent_off": "10", "amount_off": {"amount": 100, "currency": "EUR"}},  # both
        {"percent_off": "0"},
        {"percent_off": "100.01"},
        {"percent_off": 10.5},  # float
        {"amount_off": {"amount": 0, "currency": "EUR"}},
        {"amount_off": {"amount": 10.0, "currency": "EUR"}},
        {"percent_off": "10", "duration": "repeating"},  # without N
        {"percent_off": "10", "duration": "forever", "duration_in_periods": 3},
        {"percent_off": "10", "applies_to_products": []},
    ],
)
def test_coupon_validation(kw: dict[str, Any]) -> None:
    with pytest.raises(ValidationError):
        Coupon.model_validate({"id": "c", **kw})


# -- redemption ---------------------------------------------------------------------------------------------
def test_redemption_rules() -> None:
    c = Coupon(id="c", percent_off=Decimal(20), max_redemptions=2, redeem_by=T0 + dt.timedelta(days=10))
    ok = {"at": T0, "times_redeemed": 1, "currency": "EUR"}
    assert redemption_refusal(c, **ok) is None  # type: ignore[arg-type]
    assert redemption_refusal(c, **{**ok, "times_redeemed": 2}) == "coupon_exhausted"  # type: ignore[arg-type]
    assert redemption_refusal(c, **{**ok, "at": T0 + dt.timedelta(days=10)}) == "coupon_expired"  # type: ignore[arg-type]
    usd = Coupon(id="u", amount_off=Money(500, "USD"))
    assert redemption_refusal(usd, **ok) == "currency_mismatch"  # type: ignore[arg-type]

    promo = PromotionCode(
        code="Spring-26",
        coupon_id="c",
        max_redemptions=1,
        expires_at=T0 + dt.timedelta(days=5),
        first_time_only=True,
        minimum_amount=Money(5000, "EUR"),
    )
    good = {**ok, "promotion": promo, "first_time": True, "subtotal": Money(5000, "EUR")}
    assert redemption_refusal(c, **good) is None  # type: ignore[arg-type]
    cases: dict[str, dict[str, Any]] = {
        "promotion_expired": {"at": T0 + dt.timedelta(days=5)},
        "promotion_exhausted": {"promotion_times_redeemed": 1},
        "first_time_only": {"first_time": False},
        "minimum_amount": {"subtotal": Money(4999, "EUR")},
        "promotion_inactive": {"promotion": promo.model_copy(update={"active": False})},
        "promotion_customer": {"promotion": promo.model_copy(update={"customer_id": "cus_1"}), "customer_id": "cus_2"},
    }
    for reason, change in cases.items():
        assert redemption_refusal(c, **{**good, **change}) == reason
    assert redemption_refusal(c, **{**good, "subtotal": Money(5000, "USD")}) == "minimum_amount"  # type: ignore[arg-type]
    with pytest.raises(DiscountError):
        redemption_refusal(usd, **good)  # type: ignore[arg-type]


def test_a_product_restricted_coupon_is_redeemed_only_for_something_it_covers() -> None:
    c = Coupon(id="c", percent_off=Decimal(10), applies_to_products=("seat",))
    ok: dict[str, Any] = {"at": T0, "times_redeemed": 0, "currency": "EUR"}
    assert redemption_refusal(c, **ok, products=["support", "seat"]) is None
    assert redemption_refusal(c, **ok, products=["support"]) == "products_not_covered"
    assert redemption_refusal(c, **ok, products=[]) == "products_not_covered"
    assert redemption_refusal(c, **ok) is None  # nothing known about the order: the caller did not ask
    anything = Coupon(id="a", percent_off=Decimal(10))
    assert redemption_refusal(anything, **ok, products=["support"]) is None


def test_promotion_codes_match_case_insensitively_and_only_when_active() -> None:
    codes = [PromotionCode(code="SPRING", coupon_id="c"), PromotionCode(code="OLD", coupon_id="c", active=False)]
    assert find_code(codes, " spring ") == codes[0]
    assert find_code(codes, "old") is None
    assert find_code(codes, "nope") is None
    with pytest.raises(ValidationError):
        PromotionCode(code="no spaces", coupon_id="c")


# -- allocation ---------------------------------------------------------------------------------------------
def test_vector_10_percent_allocated_per_line() -> None:
    parts = allocate([line(3000), line(7000, product="prod-b")], [percent(15)], period_index=0, currency="EUR")
    assert _totals(parts) == [450, 1050]


def test_vector_13_two_ten_percent_coupons_stack_to_nineteen() -> None:
    d1, d2 = percent(10, id="d1"), percent(10, id="d2", at=T0 + dt.timedelta(seconds=1))
    parts = allocate([line(10_000)], [d2, d1], period_index=0, currency="EUR")
    assert [(p.discount_id, p.amount.amount) for p in parts[0]] == [("d1", 1000), ("d2", 900)]


def test_vector_12_fixed_larger_than_the_invoice_is_capped_and_not_carried() -> None:
    """The reference's Lago carries the rest (-10,000 then -2,000); ours caps per invoice, like Stripe: -10,000, 0."""
    d = fixed(Money(12_000, "EUR"), duration=Duration.ONCE)
    assert _totals(allocate([line(10_000)], [d], period_index=0, currency="EUR")) == [10_000]
    assert _totals(allocate([line(10_000)], [d], period_index=1, currency="EUR")) == [0]


def test_stacking_order_restricted_first_then_by_time_whatever_the_input_order() -> None:
    lines = [line(10_000, product="a"), line(10_000, product="b")]
    general = fixed(Money(5000, "EUR"), id="general", at=T0)
    targeted = percent(50, id="targeted", products=("a",), at=T0 + dt.timedelta(days=1))
    assert [d.id for d in stacking_order([general, targeted])] == ["targeted", "general"]
    for given_order in ([general, targeted], [targeted, general]):
        parts = allocate(lines, given_order, period_index=0, currency="EUR")
        # 50 % of a = 5,000 first; then 5,000 over a 5,000 + b 10,000 -> 1,667 / 3,333 (largest remainder)
        assert [[(p.discount_id, p.amount.amount) for p in ps] for ps in parts] == [
            [("targeted", 5000), ("general", 1667)],
            [("general", 3333)],
        ]


def test_what_a_discount_covers() -> None:
    lines = [
        line(1000, product="a"),
        line(1000, product="b"),
        line(-400, product="a", kind=LineKind.PRORATION, discountable=False),
        line(600, product="a", kind=LineKind.PRORATION, discountable=False),
        line(1000, product="a", behavior=TaxBehavior.INCLUSIVE),
    ]
    assert _totals(allocate(lines, [percent(10, products=("a",))], period_index=0, currency="EUR")) == [
        100,
        0,
        0,
        0,
        100,
    ]
    with pytest.raises(DiscountError):
        allocate(lines, [fixed(Money(100, "USD"))], period_index=0, currency="EUR")


@st.composite
def cases(draw: st.DrawFn) -> tuple[list[Any], list[AppliedDiscount], str]:
    cur = draw(st.sampled_from(["EUR", "JPY", "KWD"]))
    lines = [
        line(
            draw(st.integers(-5000, 10**7)),
            currency=cur,
            product=draw(st.sampled_from("abc")),
            discountable=draw(st.booleans()),
        )
        for _ in range(draw(st.integers(1, 8)))
    ]
    discounts = []
    for i in range(draw(st.integers(0, 4))):
        products = draw(st.none() | st.lists(st.sampled_from("abc"), min_size=1, max_size=2).map(tuple))
        at = T0 + dt.timedelta(minutes=draw(st.integers(0, 5)))
        if draw(st.booleans()):
            pct = draw(st.decimals(Decimal("0.01"), 100, places=2))
            discounts.append(percent(pct, id=f"d{i}", products=products, at=at))  # type: ignore[arg-type]
        else:
            discounts.append(fixed(Money(draw(st.integers(1, 10**7)), cur), id=f"d{i}", products=products, at=at))
    return lines, discounts, cur


@settings(deadline=None)
@given(cases())
def test_allocation_is_exact_capped_and_never_below_zero(case: tuple[list[Any], list[AppliedDiscount], str]) -> None:
    lines, discounts, cur = case
    parts = allocate(lines, discounts, period_index=0, currency=cur)
    remaining = [ln.amount.amount for ln in lines]
    for i, ps in enumerate(parts):
        assert all(p.amount.amount > 0 for p in ps)
        remaining[i] -= sum(p.amount.amount for p in ps)
        if ps:
            assert lines[i].discountable
            assert remaining[i] >= 0
        else:
            assert remaining[i] == lines[i].amount.amount
    # replay each discount in the stacking order: its parts sum exactly to its rounded or capped amount
    left = [ln.amount.amount for ln in lines]
    for d in stacking_order(discounts):
        covered = [
            i for i, ln in enumerate(lines) if ln.discountable and left[i] > 0 and d.coupon.covers(ln.product_id)
        ]
        base = sum(left[i] for i in covered)
        if d.coupon.percent_off is not None:
            expected = Money(base, cur).multiply(d.coupon.percent_off / 100, rounding=Rounding.HALF_UP).amount
        else:
            assert d.coupon.amount_off is not None
            expected = min(d.coupon.amount_off.amount, base)
        got = {i: p.amount.amount for i, ps in enumerate(parts) for p in ps if p.discount_id == d.id}
        assert sum(got.values()) == expected
        assert set(got) <= set(covered)
        for i, a in got.items():
            left[i] -= a
