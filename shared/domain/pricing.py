"""Price models to amounts, subscription items to lines, and the proration of an item change. Pure, no I/O.

THE rounding point of a price: a line's amount is computed **exactly** (quantity and decimal minor-unit amounts
as fractions, tiers summed exactly) and rounded **once per line, half-up** (away from zero) to the currency's
minor unit (:data:`PRICE_ROUNDING`). Lines are rounded before they are summed: 0.05 cent x 30 is 1.5 -> 2
cents on one line, 4 cents on two lines, never 3.

Tax-inclusive prices: the rounded line amount is the gross the customer sees; its tax is derived as
``gross * rate / (1 + rate)`` rounded half-up (the same per-line rule as :mod:`shared.domain.tax` and the
credit notes of :mod:`shared.domain.invoices`) and ``net = gross - tax``, so ``net + tax == gross`` exactly.

Proration of an item change reuses :func:`shared.domain.calendar.plan_change` (exact microsecond fractions,
one explicit rounding per line): the old item's period amount is credited for the unused share, the new
item's charged for it. Quantities are whole units for licensed items; metered usage may be decimal.
"""

from __future__ import annotations

import datetime as dt
import enum
import math
from collections.abc import Sequence
from decimal import Decimal
from fractions import Fraction

from pydantic import Field, StrictBool, StrictInt

from shared.domain.calendar import Period, plan_change
from shared.domain.catalog import (
    MAX_DECIMALS,
    MAX_QUANTITY,
    DecimalAmount,
    Frozen,
    Package,
    PackageRounding,
    PerUnit,
    Price,
    TaxBehavior,
    Tiered,
    same_cycle,
)
from shared.domain.money import Money, Rounding
from shared.domain.tax import TAX_ROUNDING

PRICE_ROUNDING = Rounding.HALF_UP
MAX_ITEMS = 20

Quantity = int | Decimal


class PricingError(ValueError):
    """A quantity or a set of items that cannot be priced."""


def exact_quantity(quantity: Quantity) -> Fraction:
    """A non-negative bounded quantity as an exact fraction; floats and bools are refused."""
    if isinstance(quantity, bool) or not isinstance(quantity, int | Decimal):
        raise PricingError(f"quantity must be int or Decimal, not {type(quantity).__name__}")
    if isinstance(quantity, Decimal):
        if not quantity.is_finite():
            raise PricingError("quantity must be finite")
        exp = quantity.as_tuple().exponent
        assert isinstance(exp, int)
        if exp < -MAX_DECIMALS and quantity != quantity.quantize(Decimal(1).scaleb(-MAX_DECIMALS)):
            raise PricingError(f"quantity has more than {MAX_DECIMALS} decimal places")
    q = Fraction(quantity)
    if not 0 <= q <= MAX_QUANTITY:
        raise PricingError(f"quantity must be within 0..{MAX_QUANTITY}")
    return q


def exact_amount(model: PerUnit | Package | Tiered, quantity: Quantity) -> Fraction:
    """The unrounded amount in minor units (a fraction of a minor unit is kept)."""
    q = exact_quantity(quantity)
    if isinstance(model, PerUnit):
        return q * Fraction(model.unit_amount)
    if isinstance(model, Package):
        paid = max(q - model.free_units, Fraction(0)) / model.package_size
        packages = math.ceil(paid) if model.rounding is PackageRounding.UP else math.floor(paid)
        return packages * Fraction(model.package_amount)
    if q == 0:
        return Fraction(0)
    if model.model == "volume":
        tier = next(t for t in model.tiers if t.up_to is None or q <= t.up_to)
        return q * Fraction(tier.unit_amount) + Fraction(tier.flat_amount)
    acc, lower = Fraction(0), 0
    for t in model.tiers:  # graduated: the units in (lower, up_to] at this tier's prices
        units = q - lower if t.up_to is None else min(q, Fraction(t.up_to)) - lower
        acc += units * Fraction(t.unit_amount) + Fraction(t.flat_amount)
        if t.up_to is None or q <= t.up_to:
            break
        lower = t.up_to
    return acc


def to_minor(value: Fraction, currency: str) -> Money:
    """The one rounding point: exact minor units -> whole minor units, half-up."""
    return Money(1, currency).multiply(value, rounding=PRICE_ROUNDING)


def line_amount(price: Price, quantity: Quantity) -> Money:
    """What ``quantity`` of ``price`` costs on one line (tax included for an inclusive price)."""
    return to_minor(exact_amount(price.pricing, quantity), price.currency)


def split_inclusive(gross: Money, rate: Decimal) -> tuple[Money, Money]:
    """``(net, tax)`` of a tax-inclusive amount: tax derived half-up per line, net the exact rest."""
    tax = gross.multiply(Fraction(rate) / (1 + Fraction(rate)), rounding=TAX_ROUNDING)
    return gross - tax, tax


class LineKind(enum.StrEnum):
    RECURRING = "recurring"
    ONE_OFF = "one_off"
    PRORATION = "proration"


class ChargeLine(Frozen):
    """A priced line before discounts and tax: the input of :func:`shared.domain.composition.compose`.

    ``amount`` is signed (a proration credit is negative) and in the price's tax behaviour: net for an
    exclusive price, gross for an inclusive one. Proration lines are not discountable: the period amount
    they prorate was already discounted on its own invoice, or not.
    """

    description: str = Field(min_length=1, max_length=500)
    kind: LineKind
    price_id: str
    product_id: str
    tax_category: str
    tax_behavior: TaxBehavior
    quantity: DecimalAmount
    amount: Money
    discountable: StrictBool = True
    period_start: dt.datetime | None = None
    period_end: dt.datetime | None = None


def _label(price: Price, quantity: Quantity) -> str:
    return f"{quantity} x {price.nickname or price.product_id}"


def price_line(
    price: Price,
    quantity: Quantity,
    *,
    description: str | None = None,
    period: Period | None = None,
) -> ChargeLine:
    """The line for ``quantity`` of ``price`` (over ``period`` for a recurring price)."""
    return ChargeLine(
        description=description or _label(price, quantity),
        kind=LineKind.ONE_OFF if price.one_off else LineKind.RECURRING,
        price_id=price.id,
        product_id=price.product_id,
        tax_category=price.tax_category,
        tax_behavior=price.tax_behavior,
        quantity=Decimal(quantity),
        amount=line_amount(price, quantity),
        period_start=period.start if period else None,
        period_end=period.end if period else None,
    )


class Item(Frozen):
    """One price with a quantity on a subscription (seats, licences)."""

    price: Price
    quantity: StrictInt = Field(ge=1, le=MAX_QUANTITY)


def check_items(items: Sequence[Item]) -> None:
    """Items of one subscription: 1..20, distinct prices, all recurring on the same cadence and currency."""
    if not 1 <= len(items) <= MAX_ITEMS:
        raise PricingError(f"a subscription has 1..{MAX_ITEMS} items")
    if len({i.price.id for i in items}) != len(items):
        raise PricingError("a price appears once per subscription (change its quantity instead)")
    if not same_cycle(i.price for i in items):
        raise PricingError("all items must be recurring prices of one currency and one cadence")


def replace_price(items: Sequence[Item], old_price_id: str, new: Price) -> tuple[Item, ...]:
    """The items with ``old_price_id``'s item moved to price ``new`` (same quantity, same place): a price migration.

    The new price keeps the subscription's currency and cadence (one invoice per period) and is not already an item.
    """
    if not any(i.price.id == old_price_id for i in items):
        raise PricingError(f"no item of price {old_price_id}")
    if any(i.price.id == new.id for i in items):
        raise PricingError(f"price {new.id} is already an item of the subscription")
    old = next(i.price for i in items if i.price.id == old_price_id)
    if (new.currency, new.recurring) != (old.currency, old.recurring):
        raise PricingError("a price migration keeps the currency and the cadence")
    out = tuple(Item(price=new, quantity=i.quantity) if i.price.id == old_price_id else i for i in items)
    check_items(out)
    return out


def item_lines(items: Sequence[Item], period: Period) -> tuple[ChargeLine, ...]:
    """The renewal lines of a subscription for ``period``, in item order."""
    check_items(items)
    return tuple(price_line(i.price, i.quantity, period=period) for i in items)


def item_change(
    old: Item | None,
    new: Item | None,
    period: Period,
    at: dt.datetime,
    *,
    rounding: Rounding = PRICE_ROUNDING,
) -> tuple[ChargeLine, ...]:
    """Proration lines for an item added (``old`` None), removed (``new`` None) or changed at ``at``.

    A credit (negative) for the unused share of the old item's period amount, a charge for the new item's;
    each rounded once; a zero line is omitted. A volume price is re-tiered at the new quantity.
    """
    if old is None and new is None:
        raise PricingError("an item change needs an old or a new item")
    currency = (old or new).price.currency  # type: ignore[union-attr]
    if old is not None and new is not None and old.price.currency != new.price.currency:
        raise PricingError("an item change keeps the currency")
    zero = Money.zero(currency)
    old_amount = line_amount(old.price, old.quantity) if old else zero
    new_amount = line_amount(new.price, new.quantity) if new else zero
    p = plan_change(old_amount, new_amount, period, at, rounding=rounding)
    out = []
    for item, amount, text in ((old, p.credit, "Unused time on"), (new, p.charge, "Remaining time on")):
        if item is None or amount.amount == 0:
            continue
        out.append(
            ChargeLine(
                description=f"{text} {_label(item.price, item.quantity)}",
                kind=LineKind.PRORATION,
                price_id=item.price.id,
                product_id=item.price.product_id,
                tax_category=item.price.tax_category,
                tax_behavior=item.price.tax_behavior,
                quantity=Decimal(item.quantity),
                amount=amount,
                discountable=False,
                period_start=max(at, period.start),
                period_end=period.end,
            )
        )
    return tuple(out)
