"""Billing periods from an anchor, a cadence and an IANA time zone; proration over a period.

Why computed from the anchor and never stepped from the previous boundary: stepping drifts (Jan 31 ->
Feb 29 -> Mar 29 ...). Boundary ``k`` is the anchor's local wall time moved by ``k * count`` units, with
the day clamped to the month's length, so Jan 31 -> Feb 29 -> Mar 31 -> Apr 30 -> May 31 always returns
to the anchor day. Local wall times become UTC instants through the zone:

* a wall time inside a DST gap (it does not exist) resolves with the offset before the gap, i.e. to the
  first instant after it (02:30 on a spring-forward night becomes 03:30 summer time);
* an ambiguous wall time (the repeated hour in autumn) takes its first occurrence (``fold=0``).

Period ``k`` is ``[boundary(k), boundary(k + 1))``: consecutive periods share their boundary, so they
never overlap nor leave a gap. Boundaries are non-decreasing; a period is empty only for a daily cadence
in a zone that skipped a whole calendar day (Pacific/Apia on 2011-12-30).

Proration is exact: the unused share of a period is a :class:`~fractions.Fraction` of microseconds and
the amount is rounded once, with an explicit :class:`~shared.domain.money.Rounding`.
"""

from __future__ import annotations

import calendar as _cal
import datetime as dt
import enum
import functools
from dataclasses import dataclass
from fractions import Fraction
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from shared.domain.money import Money, Rounding

_US = dt.timedelta(microseconds=1)


class CalendarError(ValueError):
    """An invalid anchor, zone or cadence."""


class Unit(enum.StrEnum):
    DAY = "day"
    WEEK = "week"
    MONTH = "month"
    YEAR = "year"


@functools.cache
def zone(name: str) -> ZoneInfo:
    """The IANA zone ``name``; raises :class:`CalendarError` for an unknown one."""
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise CalendarError(f"unknown IANA time zone {name!r}") from exc


def _utc(t: dt.datetime) -> dt.datetime:
    if t.tzinfo is None:
        raise CalendarError("instants must be timezone-aware")
    return t.astimezone(dt.UTC)


@dataclass(frozen=True, slots=True)
class Cadence:
    """Every ``count`` ``unit``s (1 month, 3 months, 2 weeks, 1 year ...)."""

    unit: Unit
    count: int = 1

    def __post_init__(self) -> None:
        if type(self.count) is not int or not 1 <= self.count <= 1000:
            raise CalendarError("interval count must be an int in 1..1000")
        object.__setattr__(self, "unit", Unit(self.unit))


@dataclass(frozen=True, slots=True)
class Anchor:
    """The local wall time (naive) of the start of period 0, and the zone it is read in."""

    local: dt.datetime
    zone: str

    def __post_init__(self) -> None:
        if self.local.tzinfo is not None:
            raise CalendarError("anchor.local is a wall time: pass a naive datetime and the zone separately")
        zone(self.zone)

    @classmethod
    def at(cls, instant: dt.datetime, zone_name: str) -> Anchor:
        """Anchor on an instant (e.g. the subscription's start), as seen in ``zone_name``."""
        local = _utc(instant).astimezone(zone(zone_name)).replace(tzinfo=None, fold=0)
        return cls(local, zone_name)


@dataclass(frozen=True, slots=True)
class Period:
    index: int
    start: dt.datetime  # UTC, inclusive
    end: dt.datetime  # UTC, exclusive

    @property
    def length(self) -> dt.timedelta:
        return self.end - self.start


@dataclass(frozen=True, slots=True)
class Schedule:
    """Anchor + cadence: the whole infinite sequence of periods, indexable both ways."""

    anchor: Anchor
    cadence: Cadence

    def local_boundary(self, k: int) -> dt.datetime:
        """Wall time of boundary ``k`` (before conversion to UTC)."""
        a, n = self.anchor.local, k * self.cadence.count
        unit = self.cadence.unit
        if unit is Unit.DAY:
            return a + dt.timedelta(days=n)
        if unit is Unit.WEEK:
            return a + dt.timedelta(weeks=n)
        months = n if unit is Unit.MONTH else 12 * n
        y, m = divmod(a.year * 12 + (a.month - 1) + months, 12)
        m += 1
        if not dt.MINYEAR <= y <= dt.MAXYEAR:
            raise CalendarError("period outside the supported calendar")
        return a.replace(year=y, month=m, day=min(a.day, _cal.monthrange(y, m)[1]))

    def boundary(self, k: int) -> dt.datetime:
        """UTC instant where period ``k`` starts (and ``k - 1`` ends)."""
        return self.local_boundary(k).replace(tzinfo=zone(self.anchor.zone), fold=0).astimezone(dt.UTC)

    def period(self, k: int) -> Period:
        return Period(k, self.boundary(k), self.boundary(k + 1))

    def index_at(self, instant: dt.datetime) -> int:
        """The ``k`` with ``boundary(k) <= instant < boundary(k + 1)``."""
        t = _utc(instant)
        local = t.astimezone(zone(self.anchor.zone)).replace(tzinfo=None)
        a, c = self.anchor.local, self.cadence
        if c.unit in (Unit.DAY, Unit.WEEK):
            step = c.count * (7 if c.unit is Unit.WEEK else 1)
            k = (local - a).days // step
        else:
            months = (local.year - a.year) * 12 + (local.month - a.month)
            k = months // (c.count * (12 if c.unit is Unit.YEAR else 1))
        # The estimate is off by at most one or two; walk to the exact period.
        while self.boundary(k) > t:
            k -= 1
        while self.boundary(k + 1) <= t:
            k += 1
        return k

    def period_at(self, instant: dt.datetime) -> Period:
        return self.period(self.index_at(instant))


def unused_fraction(period: Period, at: dt.datetime) -> Fraction:
    """Share of ``period`` still ahead at ``at``: 1 at its start, 0 at or after its end (exact)."""
    t = _utc(at)
    total = (period.end - period.start) // _US
    if total <= 0:
        return Fraction(0)
    left = (period.end - min(max(t, period.start), period.end)) // _US
    return Fraction(left, total)


def prorate(amount: Money, period: Period, at: dt.datetime, *, rounding: Rounding) -> Money:
    """``amount`` scaled to the part of ``period`` left at ``at``, rounded once, explicitly."""
    return amount.multiply(unused_fraction(period, at), rounding=rounding)


@dataclass(frozen=True, slots=True)
class Proration:
    """A mid-period plan change: a credit for the old plan's unused time, a charge for the new plan's."""

    credit: Money  # <= 0
    charge: Money  # >= 0

    @property
    def net(self) -> Money:
        return self.credit + self.charge


def plan_change(old: Money, new: Money, period: Period, at: dt.datetime, *, rounding: Rounding) -> Proration:
    """Proration of a change from ``old`` to ``new`` (per-period prices) at ``at`` within ``period``.

    Each side is rounded separately with the same rule, because each becomes its own invoice line.
    """
    return Proration(
        credit=-prorate(old, period, at, rounding=rounding), charge=prorate(new, period, at, rounding=rounding)
    )
