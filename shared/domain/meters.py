"""Meters, usage events, exact associative aggregation and the rating of usage. Pure, no I/O.

Why associative partials: the aggregator folds events in batches into several shard documents per (customer,
period), in any order, with redeliveries; a total is exact only if folding is order-independent and merging the
shards gives what one fold of all the unique events would give. Each :class:`Partial` is a commutative monoid:

* ``count``: an int; ``sum``: an int of 10^-12 units (no rounding, no float, no Decimal context precision);
* ``max``: the greatest value; ``latest``: the value of the event with the greatest ``(timestamp, event id)``
  (ties broken by the id, so the order of arrival never matters);
* ``unique_count``: the set of distinct values (kept whole: a count of a union cannot be merged from counts).

An event counts for a meter when its name is the meter's ``event_name``, every filter matches (the property's
value, as a string, is one of the allowed values) and, for a meter with a ``property``, that property holds a
number (count ignores it; unique count takes any value). The group is the value of ``group_by`` as a string
("" when the event lacks it). Numbers are ints or decimal strings (at most 12 places, |v| <= 10^12): a JSON
float is refused at the edge, as everywhere else in the platform.

Rating: a usage quantity is priced by the catalog's price models (:func:`shared.domain.pricing.exact_amount`,
rounded once per line half-up); :func:`rate` also says which tiers were applied and how many units each took.
"""

from __future__ import annotations

import datetime as dt
import enum
import hashlib
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from pydantic import Field, model_validator

from shared.domain.catalog import ID_PATTERN, Frozen, Package, PerUnit, Price, Tiered
from shared.domain.money import Money
from shared.domain.pricing import exact_amount, to_minor

SCALE = 10**12  # sum/max/latest values are ints of 10^-12 units
MAX_VALUE = 10**12
MAX_FILTERS = 10
MAX_FILTER_VALUES = 20
MAX_FILTER_VALUE_CHARS = 256  # a string property holds at most 256 characters: a longer value never matches
DIGEST_BYTES = 12  # 96-bit event-id digests: a collision among 10^9 ids of one customer has odds below 10^-10


class Aggregation(enum.StrEnum):
    COUNT = "count"
    SUM = "sum"
    MAX = "max"
    UNIQUE_COUNT = "unique_count"
    LATEST = "latest"


PropertyName = str


class Meter(Frozen):
    """What a metered price counts: events named ``event_name``, filtered, aggregated, optionally grouped."""

    id: str = Field(pattern=ID_PATTERN)
    event_name: str = Field(min_length=1, max_length=100)
    aggregation: Aggregation
    property: str | None = Field(default=None, min_length=1, max_length=64)
    filters: dict[str, tuple[str, ...]] = Field(default_factory=dict, max_length=MAX_FILTERS)
    group_by: str | None = Field(default=None, min_length=1, max_length=64)
    active: bool = True

    @model_validator(mode="after")
    def _property(self) -> Meter:
        needs = self.aggregation is not Aggregation.COUNT
        if needs and not self.property:
            raise ValueError(f"a {self.aggregation} meter names the property it aggregates")
        if not needs and self.property:
            raise ValueError("a count meter takes no property")
        for k, values in self.filters.items():
            if not 1 <= len(k) <= 64 or not 1 <= len(values) <= MAX_FILTER_VALUES:
                raise ValueError("a filter is a property name (1-64 chars) with 1-20 allowed values")
            if (k.startswith("__") and k.endswith("__")) or not _encodable(k, *values):
                raise ValueError(f"filter {k[:64]!r}: a property name not of the form __x__, in valid UTF-8")
            if any(len(v) > MAX_FILTER_VALUE_CHARS for v in values):
                raise ValueError(f"filter {k}: values are at most {MAX_FILTER_VALUE_CHARS} characters (as properties)")
        return self


def _encodable(*texts: str) -> bool:
    """Firestore stores UTF-8: a lone surrogate (a JSON ``\\ud800`` escape) cannot be stored nor matched."""
    try:
        for t in texts:
            t.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


_DECIMAL = re.compile(r"[+-]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d{1,4})?", re.ASCII)


def parse_number(value: object) -> int | None:
    """``value`` in 10^-12 units, or None when it is no acceptable number (floats and bools are not).

    A string is ASCII decimal notation only (``Decimal`` would also take "1_000", " 5 ", "NaN" and non-ASCII
    digits), and exact: computed on integers, so a value with more than 12 significant decimal places is refused
    rather than rounded to the 28 digits of a ``Decimal`` context."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value * SCALE if abs(value) <= MAX_VALUE else None
    if not isinstance(value, str) or len(value) > 40 or not _DECIMAL.fullmatch(value):
        return None
    mantissa, _, exp = value.lower().partition("e")
    neg = mantissa.startswith("-")
    whole, _, frac = mantissa.lstrip("+-").partition(".")
    digits, shift = int(whole + frac or "0"), int(exp or "0") - len(frac) + 12
    if shift >= 0:
        if shift > 40:
            return None if digits else 0
        scaled: int = digits * pow(10, shift)
    else:
        scaled, r = divmod(digits, pow(10, -shift))
        if r:
            return None  # more than 12 decimal places
    if scaled > MAX_VALUE * SCALE:
        return None
    return -scaled if neg else scaled


def number_problem(value: object) -> str | None:
    if isinstance(value, float):
        return "non-integer numbers are sent as strings (no floats)"
    if isinstance(value, int) and not isinstance(value, bool) and abs(value) > MAX_VALUE:
        return f"numbers are bounded by 10^12 in absolute value ({value})"
    return None


def from_scaled(v: int) -> Decimal:
    return (Decimal(v).scaleb(-12)).normalize() if v else Decimal(0)


@dataclass(frozen=True, slots=True)
class Event:
    """A usage event as the aggregator sees it (validated at the edge)."""

    id: str
    customer: str
    name: str
    timestamp: dt.datetime
    properties: Mapping[str, str | int] = field(default_factory=dict)

    def digest(self) -> bytes:
        return digest(self.customer, self.id)


def digest(customer: str, event_id: str) -> bytes:
    """The event's identity: a producer-chosen id is unique per customer."""
    return hashlib.sha256(f"{customer}\x1f{event_id}".encode()).digest()[:DIGEST_BYTES]


def shard_of(d: bytes, shards: int) -> int:
    return int.from_bytes(d[:4], "big") % shards


def group_of(meter: Meter, event: Event) -> str | None:
    """The group ``event`` counts in for ``meter`` ("" without ``group_by``), or None if it does not count."""
    if event.name != meter.event_name or not meter.active:
        return None
    for k, allowed in meter.filters.items():
        v = event.properties.get(k)
        if v is None or str(v) not in allowed:
            return None
    if meter.property is not None:
        value = event.properties.get(meter.property)
        if value is None if meter.aggregation is Aggregation.UNIQUE_COUNT else parse_number(value) is None:
            return None
    if meter.group_by is None:
        return ""
    g = event.properties.get(meter.group_by)
    return "" if g is None else str(g)


EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)


def _us(t: dt.datetime) -> int:
    return (t.astimezone(dt.UTC) - EPOCH) // dt.timedelta(microseconds=1)


@dataclass(slots=True)
class Partial:
    """One (meter, group) total being folded: every field of every aggregation (cheap, and merge is uniform)."""

    count: int = 0
    sum: int = 0
    max: int | None = None
    latest: tuple[int, str, int] | None = None  # (timestamp in µs, event id, value)
    unique: set[str] = field(default_factory=set)

    def fold(self, meter: Meter, event: Event) -> None:
        self.count += 1
        if meter.property is None:
            return
        raw = event.properties.get(meter.property)
        if meter.aggregation is Aggregation.UNIQUE_COUNT:
            self.unique.add(str(raw))
            return
        v = parse_number(raw)
        assert v is not None  # group_of checked it
        self.sum += v
        self.max = v if self.max is None else max(self.max, v)
        key = (_us(event.timestamp), event.id, v)
        if self.latest is None or key[:2] > self.latest[:2]:
            self.latest = key

    def merge(self, other: Partial) -> Partial:
        out = Partial(self.count + other.count, self.sum + other.sum, self.max, self.latest, self.unique | other.unique)
        if other.max is not None:
            out.max = other.max if self.max is None else max(self.max, other.max)
        if other.latest is not None and (self.latest is None or other.latest[:2] > self.latest[:2]):
            out.latest = other.latest
        return out

    def quantity(self, aggregation: Aggregation) -> Decimal:
        """The billable quantity; a negative sum or level bills as 0 (prices are never negative)."""
        if aggregation is Aggregation.COUNT:
            return Decimal(self.count)
        if aggregation is Aggregation.UNIQUE_COUNT:
            return Decimal(len(self.unique))
        raw = {
            Aggregation.SUM: self.sum,
            Aggregation.MAX: self.max or 0,
            Aggregation.LATEST: self.latest[2] if self.latest else 0,
        }[aggregation]
        return from_scaled(max(raw, 0))

    def to_doc(self) -> dict[str, Any]:
        """Decimal strings and an RFC 3339 instant: exact, readable, and never a long run of digits."""
        latest = self.latest
        return {
            "n": self.count,
            "s": _text(self.sum),
            "m": None if self.max is None else _text(self.max),
            "l": None if latest is None else [_instant(latest[0]), latest[1], _text(latest[2])],
            "u": sorted(self.unique),
        }

    @classmethod
    def from_doc(cls, d: Mapping[str, Any]) -> Partial:
        latest = d.get("l")
        return cls(
            count=int(d.get("n", 0)),
            sum=_scaled(d.get("s") or "0"),
            max=None if d.get("m") is None else _scaled(d["m"]),
            latest=None if not latest else (_us(_parse_instant(latest[0])), str(latest[1]), _scaled(latest[2])),
            unique=set(d.get("u") or ()),
        )


def _text(v: int) -> str:
    """An int of 10^-12 units as a decimal string, exactly (no Decimal context involved)."""
    q, r = divmod(abs(v), SCALE)
    frac = f"{r:012d}".rstrip("0")
    return f"{'-' if v < 0 else ''}{q}{'.' + frac if frac else ''}"


def _scaled(text: str) -> int:
    neg = text.startswith("-")
    q, _, frac = text.lstrip("-").partition(".")
    v = int(q) * SCALE + int((frac or "0").ljust(12, "0"))
    return -v if neg else v


def _instant(us: int) -> str:
    return (EPOCH + dt.timedelta(microseconds=us)).isoformat()


def _parse_instant(text: str) -> dt.datetime:
    return dt.datetime.fromisoformat(text)


Totals = dict[str, dict[str, Partial]]  # meter id -> group -> partial


def fold(meters: Iterable[Meter], events: Iterable[Event], into: Totals | None = None) -> Totals:
    """Fold ``events`` (already deduplicated) into per-meter, per-group partials."""
    out: Totals = into if into is not None else {}
    ms = list(meters)
    for e in events:
        for m in ms:
            g = group_of(m, e)
            if g is not None:
                out.setdefault(m.id, {}).setdefault(g, Partial()).fold(m, e)
    return out


def merge_totals(parts: Iterable[Totals]) -> Totals:
    out: Totals = {}
    for t in parts:
        for mid, groups in t.items():
            dst = out.setdefault(mid, {})
            for g, p in groups.items():
                dst[g] = dst[g].merge(p) if g in dst else Partial().merge(p)
    return out


def totals_to_doc(t: Totals) -> list[dict[str, Any]]:
    """A list, not a map: group values are arbitrary strings ("" included), which Firestore map keys are not."""
    return [
        {"meter": mid, "group": g, **p.to_doc()} for mid, groups in sorted(t.items()) for g, p in sorted(groups.items())
    ]


def totals_from_doc(d: Iterable[Mapping[str, Any]] | None) -> Totals:
    out: Totals = {}
    for x in d or ():
        out.setdefault(x["meter"], {})[x["group"]] = Partial.from_doc(x)
    return out


def quantities(meter: Meter, totals: Totals) -> dict[str, Decimal]:
    """Quantity per group of ``meter`` (an empty dict when nothing counted)."""
    return {g: p.quantity(meter.aggregation) for g, p in sorted(totals.get(meter.id, {}).items())}


# -- edge checks ------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class TimePolicy:
    """Which event times are accepted: not older than ``horizon``, not ahead of the clock by more than ``skew``."""

    horizon: dt.timedelta = dt.timedelta(days=35)
    skew: dt.timedelta = dt.timedelta(minutes=5)

    def problem(self, t: dt.datetime, now: dt.datetime) -> str | None:
        return self.bounds(now)(t)

    def bounds(self, now: dt.datetime) -> Callable[[dt.datetime], str | None]:
        """The check for one ``now`` (its bounds computed once per batch)."""
        oldest, newest = now - self.horizon, now + self.skew

        def problem(t: dt.datetime) -> str | None:
            if t < oldest:
                return f"timestamp_too_old: older than {self.horizon.days} days"
            if t > newest:
                return f"timestamp_in_future: more than {int(self.skew.total_seconds())} s ahead"
            return None

        return problem


# -- rating -----------------------------------------------------------------------------------------


class TierUse(Frozen):
    """One tier that took units: its bound, how many units fell in it, what it cost (exact, unrounded)."""

    tier: int
    up_to: int | None
    units: str
    amount: str


class Rated(Frozen):
    """A usage quantity priced: the amount (rounded once) and how it was reached."""

    price_id: str
    model: str
    quantity: Decimal
    amount: Money
    tiers: tuple[TierUse, ...] = ()

    def describe(self) -> str:
        tiers = "; ".join(f"tier {t.tier}: {t.units} units" for t in self.tiers)
        return f"{self.model}{f' ({tiers})' if tiers else ''}"


def _dec(f: Any) -> str:
    from fractions import Fraction

    x = Fraction(f)
    return f"{Decimal(x.numerator) / Decimal(x.denominator):f}" if x.denominator != 1 else str(x.numerator)


def rate(price: Price, quantity: Decimal) -> Rated:
    """Price ``quantity`` with ``price``'s model; the same arithmetic as every other line of the platform."""
    from fractions import Fraction

    model = price.pricing
    q = Fraction(quantity)
    tiers: list[TierUse] = []
    if isinstance(model, Tiered) and q > 0:
        if model.model == "volume":
            i, t = next((i, t) for i, t in enumerate(model.tiers) if t.up_to is None or q <= t.up_to)
            tiers.append(TierUse(tier=i + 1, up_to=t.up_to, units=_dec(q), amount=_dec(exact_amount(model, quantity))))
        else:
            lower = 0
            for i, t in enumerate(model.tiers):
                units = q - lower if t.up_to is None else min(q, Fraction(t.up_to)) - lower
                cost = units * Fraction(t.unit_amount) + Fraction(t.flat_amount)
                tiers.append(TierUse(tier=i + 1, up_to=t.up_to, units=_dec(units), amount=_dec(cost)))
                if t.up_to is None or q <= t.up_to:
                    break
                lower = t.up_to
    name = model.model if isinstance(model, Tiered | PerUnit | Package) else "?"
    return Rated(
        price_id=price.id,
        model=name,
        quantity=quantity,
        amount=to_minor(exact_amount(model, quantity), price.currency),
        tiers=tuple(tiers),
    )


def threshold_crossed(amount: int, threshold: int, billed_index: int) -> int | None:
    """The index of the threshold multiple the open usage ``amount`` has reached, when above ``billed_index``.

    Progressive billing invoices at ``threshold``, ``2 x threshold`` ...: index ``amount // threshold``. A batch
    that jumps several multiples at once crosses only the highest (one invoice, not one per multiple); an index
    is never crossed twice because the caller records it with the invoice it issues (integers, minor units).
    """
    if threshold <= 0 or amount <= 0:
        return None
    n = amount // threshold
    return n if n > billed_index else None
