"""Builders shared by the billing tests (values only, no I/O). Properties run with ``deadline=None``: no timing."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Any

from shared.domain.catalog import Price, TaxBehavior
from shared.domain.discounts import AppliedDiscount, Coupon, Duration
from shared.domain.money import Money
from shared.domain.pricing import ChargeLine, LineKind

T0 = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)


def price(pricing: dict[str, Any], *, currency: str = "EUR", **kw: Any) -> Price:
    return Price.model_validate(
        {"id": kw.pop("id", "price-1"), "product_id": "prod-1", "currency": currency, "pricing": pricing, **kw}
    )


def tiers(mode: str, *rows: tuple[int | None, Any, Any]) -> dict[str, Any]:
    return {"model": mode, "tiers": [{"up_to": u, "unit_amount": a, "flat_amount": f} for u, a, f in rows]}


def line(
    amount: int,
    *,
    currency: str = "EUR",
    product: str = "prod-a",
    behavior: TaxBehavior = TaxBehavior.EXCLUSIVE,
    category: str = "standard",
    discountable: bool = True,
    kind: LineKind = LineKind.RECURRING,
    description: str | None = None,
) -> ChargeLine:
    return ChargeLine(
        description=description or f"{product} line",
        kind=kind,
        price_id=f"price-{product}",
        product_id=product,
        tax_category=category,
        tax_behavior=behavior,
        quantity=Decimal(1),
        amount=Money(amount, currency),
        discountable=discountable,
    )


def percent(
    pct: str | int,
    *,
    id: str = "d1",
    at: dt.datetime = T0,
    products: tuple[str, ...] | None = None,
    duration: Duration = Duration.FOREVER,
    n: int | None = None,
    start: int = 0,
) -> AppliedDiscount:
    coupon = Coupon(
        id=f"c-{id}", percent_off=Decimal(pct), duration=duration, duration_in_periods=n, applies_to_products=products
    )
    return AppliedDiscount(id=id, coupon=coupon, start_period=start, applied_at=at)


def fixed(
    amount: Money,
    *,
    id: str = "d1",
    at: dt.datetime = T0,
    products: tuple[str, ...] | None = None,
    duration: Duration = Duration.FOREVER,
    n: int | None = None,
    start: int = 0,
) -> AppliedDiscount:
    coupon = Coupon(
        id=f"c-{id}", amount_off=amount, duration=duration, duration_in_periods=n, applies_to_products=products
    )
    return AppliedDiscount(id=id, coupon=coupon, start_period=start, applied_at=at)
