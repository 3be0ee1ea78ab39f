"""Catalog values: products and their prices, validated, immutable, serialisable to plain dicts. Pure, no I/O.

Why immutable prices: an issued invoice must be reproducible from the price it names, so once a price has
been used its amounts, model, currency and tax treatment never change (:func:`check_price_update`); a price
change is a new price, existing subscriptions keep the old one until they are moved (grandfathering).

A product has several prices: one per currency (and per cadence), each a single currency, never converted.

Amounts in a price model are **decimal minor units** of the price's currency (``Decimal("0.05")`` EUR is
0.05 cent), at most 12 decimal places, so sub-cent unit prices are exact; they become integer minor units
at one place only, the end of a line (:mod:`shared.domain.pricing`). Floats are refused everywhere: a JSON
number that is not an integer must arrive as a string.

Serialisation: ``model_dump(mode="json")`` gives plain dicts (decimals as strings, money as
``{"amount", "currency"}``) that ``model_validate`` reads back; that is the Firestore and JSON form.
"""

from __future__ import annotations

import datetime as dt
import enum
import itertools
from collections.abc import Iterable
from decimal import Decimal, InvalidOperation
from typing import Annotated, Literal

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    PlainSerializer,
    StrictBool,
    StrictInt,
    model_validator,
)

from shared.domain.calendar import Unit
from shared.domain.money import exponent

MAX_DECIMALS = 12  # places of a minor unit a decimal amount may carry (Stripe's unit_amount_decimal)
MAX_AMOUNT = 10**12  # bound of any decimal amount, in minor units (10 billion EUR)
MAX_QUANTITY = 10**12  # bound of a quantity or a tier bound
MAX_TIERS = 50
# The tax categories of shared.domain.tax's rate table; a price names one, the invoice's treatment gives the rate.
TAX_CATEGORIES = frozenset({"standard", "reduced"})
# Longest cadence a recurring price may have (Stripe's bound): 3 years in each unit.
_MAX_COUNT = {Unit.DAY: 3 * 365, Unit.WEEK: 156, Unit.MONTH: 36, Unit.YEAR: 3}
ID_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.:-]{0,99}$"


class CatalogError(ValueError):
    """A product or price that can never be valid, or a forbidden change to a used price."""


def to_decimal(value: object) -> Decimal:
    """An exact decimal from an int, a str or a Decimal; floats and bools are refused (binary fractions)."""
    if isinstance(value, bool) or not isinstance(value, int | str | Decimal):
        raise ValueError(f"decimal amounts are given as int, str or Decimal, not {type(value).__name__}")
    try:
        d = Decimal(value)
    except InvalidOperation:
        raise ValueError(f"not a decimal number: {value!r}") from None
    if not d.is_finite():
        raise ValueError(f"not a finite number: {value!r}")
    exp = d.as_tuple().exponent
    assert isinstance(exp, int)
    if exp < -MAX_DECIMALS and d != d.quantize(Decimal(1).scaleb(-MAX_DECIMALS)):
        raise ValueError(f"{value} has more than {MAX_DECIMALS} decimal places")
    if abs(d) > MAX_AMOUNT:
        raise ValueError(f"{value} exceeds the bound {MAX_AMOUNT}")
    return d


def _non_negative(value: object) -> Decimal:
    d = to_decimal(value)
    if d < 0:
        raise ValueError("amounts in a price are never negative")
    return d


# A non-negative exact decimal stored as its string (Firestore and JSON have no decimal type).
DecimalAmount = Annotated[Decimal, BeforeValidator(_non_negative), PlainSerializer(lambda d: f"{d:f}", return_type=str)]


class Frozen(BaseModel):
    """Base of every catalog/billing value: immutable, unknown fields refused."""

    # defer_build: validators are built on first use, not at import (cold start, README).
    model_config = ConfigDict(frozen=True, extra="forbid", defer_build=True)


class TaxBehavior(enum.StrEnum):
    """Whether the price's amounts already contain the tax (``inclusive``) or the tax is added (``exclusive``)."""

    EXCLUSIVE = "exclusive"
    INCLUSIVE = "inclusive"


class PackageRounding(enum.StrEnum):
    UP = "up"  # a started package is a full package (Lago, OpenMeter, Kill Bill)
    DOWN = "down"  # only complete packages are billed (Stripe's transform_quantity round=down)


class PerUnit(Frozen):
    """``quantity * unit_amount``."""

    model: Literal["per_unit"] = "per_unit"
    unit_amount: DecimalAmount


class Package(Frozen):
    """Units bought in blocks: ``round(max(quantity - free_units, 0) / size) * package_amount``."""

    model: Literal["package"] = "package"
    package_size: StrictInt = Field(ge=1, le=MAX_QUANTITY)
    package_amount: DecimalAmount
    rounding: PackageRounding = PackageRounding.UP
    free_units: StrictInt = Field(default=0, ge=0, le=MAX_QUANTITY)


class Tier(Frozen):
    """Units up to ``up_to`` inclusive (``None``: open-ended, the last tier only), from the previous bound (exclusive).

    ``flat_amount`` is charged once when the quantity reaches into the tier: every tier reached (graduated),
    the one tier reached (volume). A quantity of 0 reaches no tier and costs 0; a fee due whatever the usage is
    a separate per-unit item of quantity 1.
    """

    up_to: StrictInt | None = Field(default=None, ge=1, le=MAX_QUANTITY)
    unit_amount: DecimalAmount = Decimal(0)
    flat_amount: DecimalAmount = Decimal(0)


class Tiered(Frozen):
    """``graduated``: each unit at the tier it falls in; ``volume``: all units at the tier the quantity reaches.

    A tier's flat amount plus unit amounts expresses "flat fee plus tiers".
    """

    model: Literal["graduated", "volume"]
    tiers: tuple[Tier, ...] = Field(min_length=1, max_length=MAX_TIERS)

    @model_validator(mode="after")
    def _ascending_open_ended(self) -> Tiered:
        *bounded, last = self.tiers
        if last.up_to is not None:
            raise ValueError("the last tier must be open-ended (up_to null)")
        bounds = [t.up_to for t in bounded]
        if any(b is None for b in bounds):
            raise ValueError("only the last tier may be open-ended")
        if any(b2 <= b1 for b1, b2 in itertools.pairwise(bounds)):  # type: ignore[operator]
            raise ValueError("tier bounds must be strictly ascending")
        return self


PriceModel = Annotated[PerUnit | Package | Tiered, Field(discriminator="model")]


class Recurring(Frozen):
    """Billed every ``interval_count`` ``interval``s (the subscription's cadence), at most 3 years."""

    interval: Unit
    interval_count: StrictInt = Field(default=1, ge=1)

    @model_validator(mode="after")
    def _bounded(self) -> Recurring:
        if self.interval_count > _MAX_COUNT[self.interval]:
            limit = _MAX_COUNT[self.interval]
            raise ValueError(f"a recurring price renews at least every 3 years ({limit} {self.interval}s)")
        return self


class Product(Frozen):
    """What is sold; its prices name it. ``active=False``: archived, no new purchases."""

    id: str = Field(pattern=ID_PATTERN)
    name: str = Field(min_length=1, max_length=250)
    active: StrictBool = True


class Price(Frozen):
    """How much a product costs in ONE currency: one-off (``recurring`` null) or recurring."""

    id: str = Field(pattern=ID_PATTERN)
    product_id: str = Field(pattern=ID_PATTERN)
    currency: str = Field(pattern=r"^[A-Z]{3}$")
    recurring: Recurring | None = None
    tax_category: str = "standard"
    tax_behavior: TaxBehavior = TaxBehavior.EXCLUSIVE
    pricing: PriceModel
    active: StrictBool = True
    nickname: str | None = Field(default=None, max_length=250)
    created_at: dt.datetime | None = None

    @model_validator(mode="after")
    def _known(self) -> Price:
        exponent(self.currency)  # raises CurrencyError (a ValueError) for unknown or unit-less codes
        if self.tax_category not in TAX_CATEGORIES:
            raise ValueError(f"tax_category must be one of {sorted(TAX_CATEGORIES)}")
        return self

    @property
    def one_off(self) -> bool:
        return self.recurring is None


# What may change on a price once an invoice used it (Stripe's rule); everything else defines the amount.
MUTABLE_WHEN_USED = frozenset({"active", "nickname"})


def check_price_update(current: Price, proposed: Price, *, used: bool) -> None:
    """Raise :class:`CatalogError` unless ``proposed`` may replace ``current``.

    The id never changes. A used price changes only ``active`` and ``nickname``: a new amount is a new price.
    """
    if proposed.id != current.id:
        raise CatalogError("a price keeps its id")
    if not used:
        return
    fields = type(current).model_fields
    changed = sorted(k for k in fields if k not in MUTABLE_WHEN_USED and getattr(current, k) != getattr(proposed, k))
    if changed:
        raise CatalogError(f"price {current.id} is in use: {', '.join(changed)} cannot change; create a new price")


class Catalog(Frozen):
    """Products and their prices, checked together (every price names a known product, ids unique)."""

    products: tuple[Product, ...] = ()
    prices: tuple[Price, ...] = ()

    @model_validator(mode="after")
    def _consistent(self) -> Catalog:
        product_ids = [p.id for p in self.products]
        if len(set(product_ids)) != len(product_ids):
            raise ValueError("product ids must be unique")
        price_ids = [p.id for p in self.prices]
        if len(set(price_ids)) != len(price_ids):
            raise ValueError("price ids must be unique")
        unknown = {p.product_id for p in self.prices} - set(product_ids)
        if unknown:
            raise ValueError(f"prices name unknown products: {sorted(unknown)}")
        return self

    def price(self, price_id: str) -> Price:
        for p in self.prices:
            if p.id == price_id:
                return p
        raise CatalogError(f"unknown price {price_id}")

    def prices_for(self, product_id: str, currency: str, *, recurring: Recurring | None = None) -> tuple[Price, ...]:
        """Active prices of an active product in ``currency`` (and cadence, if given): what can be bought."""
        if not any(p.id == product_id and p.active for p in self.products):
            return ()
        return tuple(
            p
            for p in self.prices
            if p.product_id == product_id
            and p.currency == currency
            and p.active
            and (recurring is None or p.recurring == recurring)
        )

    def currencies(self, product_id: str) -> frozenset[str]:
        return frozenset(p.currency for p in self.prices if p.product_id == product_id and p.active)


def same_cycle(prices: Iterable[Price]) -> bool:
    """True if every price is recurring on the same cadence and currency (they can share one subscription)."""
    keys = {(p.currency, p.recurring) for p in prices}
    return len(keys) <= 1 and all(r is not None for _, r in keys)
