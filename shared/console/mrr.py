"""Monthly recurring revenue of one subscription document (pure: no I/O, never a float).

The rule (README, "Operator console"): a subscription's recurring amount per period is the sum of its
plan lines (``unit_amount x quantity``) or of its items (the price snapshot's pricing model at the item's
quantity, exact fractions); it is normalised to a month: ``month / n``, ``year / (12 n)``,
``week x 52 / (12 n)``, ``day x 365 / (12 n)`` for an interval of ``n`` units. Discounts, taxes added on
top of exclusive prices and metered usage are NOT included (MRR is the list price of what renews). The
one rounding point: the exact monthly amount of a subscription is rounded to whole minor units
half-to-even, once per subscription; the total per currency is the sum of those integers.
"""

from __future__ import annotations

from collections.abc import Mapping
from fractions import Fraction
from typing import Any

# How many of a unit make a month, exactly (a year of 52 weeks or 365 days, as billing people count).
PER_MONTH: dict[str, Fraction] = {
    "day": Fraction(365, 12),
    "week": Fraction(52, 12),
    "month": Fraction(1),
    "year": Fraction(1, 12),
}
MRR_STATUSES = ("active", "past_due")  # what still renews; trialing, unpaid and canceled do not count


def monthly(period_amount: Fraction | int, interval: str, interval_count: int) -> Fraction:
    """The exact monthly equivalent of ``period_amount`` billed every ``interval_count`` ``interval``s."""
    if isinstance(period_amount, bool) or not isinstance(period_amount, int | Fraction):
        raise TypeError("period_amount is exact minor units (int or Fraction), never a float")
    if interval not in PER_MONTH:
        raise ValueError(f"interval must be one of {sorted(PER_MONTH)}")
    if isinstance(interval_count, bool) or not isinstance(interval_count, int) or interval_count < 1:
        raise ValueError("interval_count is a positive integer")
    return Fraction(period_amount) * PER_MONTH[interval] / interval_count


def round_half_even(value: Fraction) -> int:
    """Whole minor units, ties to even (Python's ``round`` of a Fraction is exact and half-to-even)."""
    return round(value)


def _plan_period(plan: Mapping[str, Any]) -> tuple[str, Fraction, str, int]:
    total = Fraction(0)
    for line in plan.get("lines") or []:
        amount = (line.get("unit_amount") or {}).get("amount")
        quantity = line.get("quantity", 1)
        if not isinstance(amount, int) or isinstance(amount, bool) or not isinstance(quantity, int):
            raise ValueError("a plan line without integer unit_amount.amount and quantity")
        total += amount * quantity
    return str(plan["currency"]), total, str(plan["interval"]), int(plan.get("interval_count", 1))


def _items_period(items: list[Mapping[str, Any]]) -> tuple[str, Fraction, str, int]:
    from shared.domain.catalog import Price
    from shared.domain.pricing import exact_amount

    total, cycle = Fraction(0), None
    for item in items:
        price = Price.model_validate(item["price"])
        if price.recurring is None:
            raise ValueError(f"item price {price.id} is not recurring")
        here = (price.currency, str(price.recurring.interval), price.recurring.interval_count)
        if cycle is not None and here != cycle:
            raise ValueError("items of one subscription share currency and cadence")
        cycle = here
        total += exact_amount(price.pricing, int(item["quantity"]))
    assert cycle is not None
    return cycle[0], total, cycle[1], cycle[2]


def subscription_mrr(doc: Mapping[str, Any]) -> tuple[str, int] | None:
    """(currency, MRR in minor units) of a subscription document; None when it does not renew now.

    Raises ``ValueError`` for a document whose plan or items cannot be read (the caller counts them).
    """
    if doc.get("status") not in MRR_STATUSES:
        return None
    items = doc.get("items")
    if items:
        currency, amount, interval, count = _items_period(list(items))
    elif doc.get("plan"):
        currency, amount, interval, count = _plan_period(doc["plan"])
    else:
        raise ValueError("a subscription without plan or items")
    return currency, round_half_even(monthly(amount, interval, count))
