"""Money as integer minor units of an ISO 4217 currency.

Why: floats cannot represent 0.10 exactly and PSPs speak minor units anyway (Stripe, Adyen: ``1099``
EUR means 10.99). An amount is an ``int`` of the currency's minor unit (JPY exponent 0, EUR 2, KWD 3),
so addition is exact. Anything that can produce a fraction of a minor unit (a percentage, a ratio,
a decimal string with too many places) takes an explicit :class:`Rounding`: there is no default,
because the right rule is a business decision (tax authorities often mandate half-up per line).
Splitting uses largest remainder so the parts always sum to the whole.
"""

from __future__ import annotations

import decimal
import enum
from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal
from fractions import Fraction
from typing import Annotated, Any

from pydantic import Strict

from shared.domain.iso4217 import EXPONENTS


class CurrencyError(ValueError):
    """Unknown currency, a currency without minor units, or a mix of currencies."""


class Rounding(enum.Enum):
    """How a fraction of a minor unit becomes a whole one. Named after :mod:`decimal` modes."""

    HALF_UP = decimal.ROUND_HALF_UP  # 0.5 -> 1, -0.5 -> -1 (away from zero): common for tax
    HALF_EVEN = decimal.ROUND_HALF_EVEN  # 0.5 -> 0, 1.5 -> 2: banker's rounding, unbiased in sums
    DOWN = decimal.ROUND_DOWN  # towards zero: never charge more than computed
    UP = decimal.ROUND_UP  # away from zero
    FLOOR = decimal.ROUND_FLOOR
    CEILING = decimal.ROUND_CEILING


def exponent(currency: str) -> int:
    """Minor-unit exponent of an active ISO 4217 currency; raises for unknown or unit-less codes."""
    if currency not in EXPONENTS:
        raise CurrencyError(f"unknown ISO 4217 currency {currency!r}")
    exp = EXPONENTS[currency]
    if exp is None:
        raise CurrencyError(f"ISO 4217 currency {currency} has no minor unit")
    return exp


# -- bounds --------------------------------------------------------------------------------------
# Why: Firestore stores integers as int64 and consumers add amounts (lines x quantity, totals, tax), so an
# amount must be far below 2**63 with room for sums; and an amount no business ever charges is a bug or an
# attack, not a payment. The bound is in major units so it means the same in every currency: at most
# ``MAX_MAJOR_DIGITS`` digits before the decimal point, i.e. ``10**(12 + exponent) - 1`` minor units
# (EUR 999,999,999,999.99; JPY 999,999,999,999; CLF, exponent 4, 10**16 - 1: still 900 times below int64).
MAX_MAJOR_DIGITS = 12
INT64_MAX = 2**63 - 1


def max_minor(currency: str) -> int:
    """The largest amount accepted at the edge, in minor units of ``currency``."""
    return int(10 ** (MAX_MAJOR_DIGITS + exponent(currency))) - 1


def within_bounds(money: Money, *, allow_negative: bool = False) -> bool:
    """True when ``money`` is at most :func:`max_minor` in absolute value (and not negative unless allowed)."""
    low = -max_minor(money.currency) if allow_negative else 0
    return low <= money.amount <= max_minor(money.currency)


def _round_fraction(value: Fraction, rounding: Rounding) -> int:
    # Exact: Decimal division of two ints at a precision large enough for any int we handle.
    ctx = decimal.Context(prec=max(60, len(str(value.numerator)) + 10), rounding=rounding.value)
    q = ctx.divide(Decimal(value.numerator), Decimal(value.denominator))
    return int(q.quantize(Decimal(1), rounding=rounding.value, context=ctx))


@dataclass(frozen=True, slots=True, order=False)
class Money:
    """An amount in integer minor units of ``currency``. Immutable; arithmetic never rounds silently."""

    amount: Annotated[int, Strict()]
    currency: str

    def __post_init__(self) -> None:
        if type(self.amount) is not int:  # bool is an int subclass; floats are never money
            raise TypeError(f"Money.amount must be int minor units, got {type(self.amount).__name__}")
        exponent(self.currency)

    # -- construction -------------------------------------------------------------------------
    @classmethod
    def zero(cls, currency: str) -> Money:
        return cls(0, currency)

    @classmethod
    def from_decimal(cls, value: Decimal | str | int, currency: str, *, rounding: Rounding) -> Money:
        """Major units (``"10.99"`` EUR) to minor units, rounding explicitly to the exponent."""
        if isinstance(value, float):
            raise TypeError("floats are not accepted for money; pass a str or Decimal")
        d = Decimal(value)
        if not d.is_finite():
            raise ValueError(f"not a finite amount: {value!r}")
        return cls(_round_fraction(Fraction(d) * 10 ** exponent(currency), rounding), currency)

    @classmethod
    def parse_exact(cls, value: str, currency: str) -> Money:
        """Major units that must already fit the exponent (``"10.999"`` EUR is an error, not rounded)."""
        d = Decimal(value)
        scaled = Fraction(d) * 10 ** exponent(currency)
        if scaled.denominator != 1:
            raise ValueError(f"{value} has more decimals than {currency} allows ({exponent(currency)})")
        return cls(int(scaled), currency)

    # -- views ----------------------------------------------------------------------------------
    @property
    def exponent(self) -> int:
        return exponent(self.currency)

    def to_decimal(self) -> Decimal:
        return Decimal(self.amount).scaleb(-self.exponent)

    def __str__(self) -> str:
        return f"{self.to_decimal():.{self.exponent}f} {self.currency}"

    def as_dict(self) -> dict[str, Any]:
        return {"amount": self.amount, "currency": self.currency}

    # -- arithmetic -----------------------------------------------------------------------------
    def _same(self, other: Money) -> None:
        if not isinstance(other, Money):
            raise TypeError(f"cannot combine Money with {type(other).__name__}")
        if other.currency != self.currency:
            raise CurrencyError(f"currency mismatch: {self.currency} vs {other.currency}")

    def __add__(self, other: Money) -> Money:
        self._same(other)
        return Money(self.amount + other.amount, self.currency)

    def __sub__(self, other: Money) -> Money:
        self._same(other)
        return Money(self.amount - other.amount, self.currency)

    def __neg__(self) -> Money:
        return Money(-self.amount, self.currency)

    def __lt__(self, other: Money) -> bool:
        self._same(other)
        return self.amount < other.amount

    def __le__(self, other: Money) -> bool:
        self._same(other)
        return self.amount <= other.amount

    def __gt__(self, other: Money) -> bool:
        self._same(other)
        return self.amount > other.amount

    def __ge__(self, other: Money) -> bool:
        self._same(other)
        return self.amount >= other.amount

    def __bool__(self) -> bool:
        return self.amount != 0

    def times(self, quantity: int) -> Money:
        """Exact multiplication by a whole quantity (seats, units)."""
        if type(quantity) is not int:
            raise TypeError("quantity must be int; use multiply() with a rounding for fractions")
        return Money(self.amount * quantity, self.currency)

    def multiply(self, factor: Decimal | Fraction | int | str, *, rounding: Rounding) -> Money:
        """Multiply by a rate or ratio (``Decimal("0.20")`` VAT, ``Fraction(12, 31)`` proration)."""
        if isinstance(factor, float):
            raise TypeError("floats are not accepted for money factors; pass Decimal, Fraction or str")
        f = factor if isinstance(factor, Fraction) else Fraction(Decimal(factor))
        return Money(_round_fraction(self.amount * f, rounding), self.currency)

    def allocate(self, ratios: Sequence[int]) -> list[Money]:
        """Split by integer weights with the largest-remainder method: parts sum exactly to ``self``.

        Remainder units go to the largest fractional parts first, ties to the earliest part, so the
        result is deterministic. Negative amounts split symmetrically to positive ones.
        """
        if not ratios or any(type(r) is not int or r < 0 for r in ratios) or sum(ratios) == 0:
            raise ValueError("ratios must be non-negative ints with a positive sum")
        total = sum(ratios)
        sign = -1 if self.amount < 0 else 1
        whole = abs(self.amount)
        floors = [whole * r // total for r in ratios]
        remainders = [whole * r % total for r in ratios]
        left = whole - sum(floors)
        order = sorted(range(len(ratios)), key=lambda i: (-remainders[i], i))
        for i in order[:left]:
            floors[i] += 1
        return [Money(sign * p, self.currency) for p in floors]

    def split(self, parts: int) -> list[Money]:
        """Split into ``parts`` near-equal amounts that sum exactly to ``self``."""
        if type(parts) is not int or parts < 1:
            raise ValueError("parts must be a positive int")
        return self.allocate([1] * parts)


def total(items: Sequence[Money], currency: str) -> Money:
    """Exact sum of amounts in one currency (``currency`` fixes the result for an empty list)."""
    acc = Money.zero(currency)
    for m in items:
        acc = acc + m
    return acc
