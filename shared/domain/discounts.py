"""Coupons, promotion codes, and how discounts are applied to an invoice's lines. Pure, no I/O.

A :class:`Coupon` is the discount (percent, or a fixed amount in one currency) and how long it lasts; a
:class:`PromotionCode` is a customer-typed code for a coupon with its own restrictions. Redeeming one
(:func:`redemption_refusal`, then the caller records an :class:`AppliedDiscount`) is checked once, when it
is attached; like Stripe, expiry and redemption limits stop **new** redemptions, not applied ones.

Duration in billing periods of the subscription, counted from the period it was attached for
(``start_period``): ``once`` that period only, ``repeating`` exactly ``duration_in_periods`` periods,
``forever`` every period from it (:meth:`AppliedDiscount.active_for`).

Application (:func:`allocate`), always before tax, in THE stacking order:

1. discounts restricted to products first, then unrestricted ones (targeted before general);
2. within each group by ``applied_at`` then ``id`` (deterministic whatever the input order);
3. each discount works on what the previous ones left of the lines it covers: two 10 % coupons give 19 %.

A line is covered when it is discountable (not a proration), positive, and its product is in the coupon's
products (or the coupon is unrestricted). The discount of one coupon is computed once on the covered
remaining subtotal (percent: rounded half-up to the minor unit; fixed: capped at that subtotal, so never
below zero, and a surplus is lost, not carried to the next invoice), then allocated over the covered lines
in proportion to their remaining amounts with the largest-remainder rule, so the parts sum exactly to the
discount and no line goes below zero.
"""

from __future__ import annotations

import datetime as dt
import enum
from collections.abc import Sequence
from decimal import Decimal
from fractions import Fraction
from typing import Annotated

from pydantic import BeforeValidator, Field, PlainSerializer, StrictBool, StrictInt, model_validator

from shared.domain.catalog import ID_PATTERN, Frozen, to_decimal
from shared.domain.money import CurrencyError, Money, Rounding
from shared.domain.pricing import ChargeLine

DISCOUNT_ROUNDING = Rounding.HALF_UP
MAX_DURATION_PERIODS = 1000


class DiscountError(ValueError):
    """A coupon or promotion code that can never be valid, or a discount that cannot apply to an invoice."""


def _percent(value: object) -> Decimal:
    d = to_decimal(value)
    if not 0 < d <= 100:
        raise ValueError("percent_off must be in (0, 100]")
    return d


Percent = Annotated[Decimal, BeforeValidator(_percent), PlainSerializer(lambda d: f"{d:f}", return_type=str)]


class Duration(enum.StrEnum):
    ONCE = "once"
    REPEATING = "repeating"
    FOREVER = "forever"


class Coupon(Frozen):
    """A discount: exactly one of ``percent_off`` and ``amount_off``; how long; who may redeem it."""

    id: str = Field(pattern=ID_PATTERN)
    name: str | None = Field(default=None, max_length=250)
    percent_off: Percent | None = None
    amount_off: Money | None = None
    duration: Duration = Duration.ONCE
    duration_in_periods: StrictInt | None = Field(default=None, ge=1, le=MAX_DURATION_PERIODS)
    max_redemptions: StrictInt | None = Field(default=None, ge=1)
    redeem_by: dt.datetime | None = None
    applies_to_products: tuple[str, ...] | None = Field(default=None, min_length=1, max_length=100)

    @model_validator(mode="after")
    def _coherent(self) -> Coupon:
        if (self.percent_off is None) == (self.amount_off is None):
            raise ValueError("a coupon has exactly one of percent_off and amount_off")
        if self.amount_off is not None and self.amount_off.amount <= 0:
            raise ValueError("amount_off must be positive")
        if (self.duration is Duration.REPEATING) != (self.duration_in_periods is not None):
            raise ValueError("duration_in_periods is given for, and only for, a repeating coupon")
        return self

    @property
    def restricted(self) -> bool:
        return self.applies_to_products is not None

    def covers(self, product_id: str) -> bool:
        return self.applies_to_products is None or product_id in self.applies_to_products


class PromotionCode(Frozen):
    """A code a customer types, for one coupon; matched case-insensitively."""

    code: str = Field(pattern=r"^[A-Za-z0-9-]{1,50}$")
    coupon_id: str = Field(pattern=ID_PATTERN)
    active: StrictBool = True
    expires_at: dt.datetime | None = None
    max_redemptions: StrictInt | None = Field(default=None, ge=1)
    customer_id: str | None = None
    first_time_only: StrictBool = False
    minimum_amount: Money | None = None

    @property
    def key(self) -> str:
        """The stored key of the code (unique among codes, case-insensitive)."""
        return self.code.upper()


def find_code(codes: Sequence[PromotionCode], typed: str) -> PromotionCode | None:
    """The active promotion code a customer typed (case-insensitive), or None."""
    key = typed.strip().upper()
    return next((c for c in codes if c.key == key and c.active), None)


def redemption_refusal(
    coupon: Coupon,
    *,
    at: dt.datetime,
    times_redeemed: int,
    currency: str,
    promotion: PromotionCode | None = None,
    promotion_times_redeemed: int = 0,
    customer_id: str | None = None,
    first_time: bool = False,
    subtotal: Money | None = None,
    products: Sequence[str] | None = None,
) -> str | None:
    """Why ``coupon`` (through ``promotion``) cannot be redeemed now, or None when it can.

    ``times_redeemed`` counts the coupon's redemptions by everyone; ``first_time`` says the customer has no
    earlier invoice; ``subtotal`` is the order's amount before discounts (for a minimum amount); ``products``
    are the products of what it is redeemed for: a coupon restricted to products none of them is refused
    (``products_not_covered``) rather than redeemed for nothing, which would still count against its limits.
    """
    if promotion is not None and promotion.coupon_id != coupon.id:
        raise DiscountError("the promotion code is for another coupon")
    if coupon.redeem_by is not None and at >= coupon.redeem_by:
        return "coupon_expired"
    if coupon.max_redemptions is not None and times_redeemed >= coupon.max_redemptions:
        return "coupon_exhausted"
    if coupon.amount_off is not None and coupon.amount_off.currency != currency:
        return "currency_mismatch"
    if products is not None and not any(coupon.covers(p) for p in products):
        return "products_not_covered"
    if promotion is None:
        return None
    if not promotion.active:
        return "promotion_inactive"
    if promotion.expires_at is not None and at >= promotion.expires_at:
        return "promotion_expired"
    if promotion.max_redemptions is not None and promotion_times_redeemed >= promotion.max_redemptions:
        return "promotion_exhausted"
    if promotion.customer_id is not None and promotion.customer_id != customer_id:
        return "promotion_customer"
    if promotion.first_time_only and not first_time:
        return "first_time_only"
    if promotion.minimum_amount is not None:
        if subtotal is None or subtotal.currency != promotion.minimum_amount.currency:
            return "minimum_amount"
        if subtotal.amount < promotion.minimum_amount.amount:
            return "minimum_amount"
    return None


class AppliedDiscount(Frozen):
    """A redeemed coupon on a subscription (or a one-off invoice), in force from period ``start_period``."""

    id: str = Field(pattern=ID_PATTERN)
    coupon: Coupon
    start_period: StrictInt = Field(default=0, ge=0)
    applied_at: dt.datetime
    promotion_code: str | None = None

    def active_for(self, k: int) -> bool:
        """Is the discount in force for billing period ``k``? ``repeating`` N: periods start .. start + N - 1."""
        if k < self.start_period:
            return False
        c = self.coupon
        if c.duration is Duration.ONCE:
            return k == self.start_period
        if c.duration is Duration.REPEATING:
            assert c.duration_in_periods is not None
            return k < self.start_period + c.duration_in_periods
        return True


def stacking_order(discounts: Sequence[AppliedDiscount]) -> list[AppliedDiscount]:
    """Product-restricted first, then unrestricted; each group by ``applied_at``, then ``id``."""
    return sorted(discounts, key=lambda d: (not d.coupon.restricted, d.applied_at, d.id))


class LineDiscount(Frozen):
    """The part of one discount on one line (always > 0; lines a discount does not reach have no entry)."""

    discount_id: str
    coupon_id: str
    amount: Money


def allocate(
    lines: Sequence[ChargeLine],
    discounts: Sequence[AppliedDiscount],
    *,
    period_index: int,
    currency: str,
) -> tuple[tuple[LineDiscount, ...], ...]:
    """The discounts of each line (same order as ``lines``), under the rules of the module doc."""
    remaining = [ln.amount.amount for ln in lines]
    for ln in lines:
        if ln.amount.currency != currency:
            raise CurrencyError(f"line {ln.description!r} is in {ln.amount.currency}, invoice is in {currency}")
    parts: list[list[LineDiscount]] = [[] for _ in lines]
    for d in stacking_order([d for d in discounts if d.active_for(period_index)]):
        c = d.coupon
        covered = [i for i, ln in enumerate(lines) if ln.discountable and remaining[i] > 0 and c.covers(ln.product_id)]
        base = sum(remaining[i] for i in covered)
        if base == 0:
            continue
        if c.percent_off is not None:
            amount = Money(base, currency).multiply(Fraction(c.percent_off) / 100, rounding=DISCOUNT_ROUNDING)
        else:
            assert c.amount_off is not None
            if c.amount_off.currency != currency:
                raise DiscountError(f"coupon {c.id} is in {c.amount_off.currency}, invoice is in {currency}")
            amount = Money(min(c.amount_off.amount, base), currency)
        if amount.amount == 0:
            continue
        for i, part in zip(covered, amount.allocate([remaining[i] for i in covered]), strict=True):
            if part.amount:
                remaining[i] -= part.amount
                parts[i].append(LineDiscount(discount_id=d.id, coupon_id=c.id, amount=part))
    return tuple(tuple(p) for p in parts)
