"""Calendar properties over every IANA zone and many anchors; proration arithmetic."""

from __future__ import annotations

import datetime as dt
import itertools
import zoneinfo
from fractions import Fraction

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from shared.domain.calendar import (
    Anchor,
    Cadence,
    CalendarError,
    Period,
    Schedule,
    Unit,
    plan_change,
    prorate,
    unused_fraction,
)
from shared.domain.money import Money, Rounding

ZONES = sorted(zoneinfo.available_timezones())
UTC = dt.UTC

anchors = st.datetimes(min_value=dt.datetime(1971, 1, 1), max_value=dt.datetime(2099, 12, 31))
cadences = st.builds(Cadence, st.sampled_from(list(Unit)), st.integers(1, 13))
schedules = st.builds(Schedule, st.builds(Anchor, anchors, st.sampled_from(ZONES)), cadences)
ks = st.integers(-30, 60)


def month_schedule(local: dt.datetime, zone: str = "Europe/Berlin", count: int = 1) -> Schedule:
    return Schedule(Anchor(local, zone), Cadence(Unit.MONTH, count))


def test_month_end_clamps_and_returns_to_the_anchor_day() -> None:
    s = month_schedule(dt.datetime(2024, 1, 31, 0, 0))
    days = [s.local_boundary(k).date() for k in range(5)]
    assert days == [
        dt.date(2024, 1, 31),
        dt.date(2024, 2, 29),
        dt.date(2024, 3, 31),
        dt.date(2024, 4, 30),
        dt.date(2024, 5, 31),
    ]
    assert s.local_boundary(13).date() == dt.date(2025, 2, 28)
    assert s.local_boundary(-1).date() == dt.date(2023, 12, 31)


def test_leap_day_anchor_yearly() -> None:
    s = Schedule(Anchor(dt.datetime(2024, 2, 29, 12, 0), "America/New_York"), Cadence(Unit.YEAR))
    assert [s.local_boundary(k).date() for k in range(5)] == [
        dt.date(2024, 2, 29),
        dt.date(2025, 2, 28),
        dt.date(2026, 2, 28),
        dt.date(2027, 2, 28),
        dt.date(2028, 2, 29),
    ]


def test_dst_gap_moves_forward_and_overlap_takes_first_occurrence() -> None:
    # 02:30 does not exist in New York on 2024-03-10: it becomes 03:30 EDT (07:30Z).
    s = Schedule(Anchor(dt.datetime(2024, 3, 9, 2, 30), "America/New_York"), Cadence(Unit.DAY))
    assert s.boundary(1) == dt.datetime(2024, 3, 10, 7, 30, tzinfo=UTC)
    assert s.boundary(2) == dt.datetime(2024, 3, 11, 6, 30, tzinfo=UTC)  # 02:30 EDT
    assert s.period(1).length == dt.timedelta(hours=23)
    # 01:30 happens twice on 2024-11-03: the first one (EDT, 05:30Z).
    s2 = Schedule(Anchor(dt.datetime(2024, 11, 2, 1, 30), "America/New_York"), Cadence(Unit.DAY))
    assert s2.boundary(1) == dt.datetime(2024, 11, 3, 5, 30, tzinfo=UTC)
    assert s2.period(1).length == dt.timedelta(hours=25)


def test_the_anchor_zone_decides_the_instant() -> None:
    s = month_schedule(dt.datetime(2026, 1, 1), "Asia/Tokyo")
    assert s.boundary(0) == dt.datetime(2025, 12, 31, 15, 0, tzinfo=UTC)


def test_invalid_inputs_are_refused() -> None:
    with pytest.raises(CalendarError):
        Anchor(dt.datetime(2024, 1, 1), "Mars/Olympus")
    with pytest.raises(CalendarError):
        Anchor(dt.datetime(2024, 1, 1, tzinfo=UTC), "UTC")
    with pytest.raises(CalendarError):
        Cadence(Unit.MONTH, 0)
    with pytest.raises(ValueError):  # noqa: PT011
        Cadence("fortnight", 1)  # type: ignore[arg-type]


@settings(max_examples=200, deadline=None)
@given(schedules, ks)
def test_consecutive_periods_share_boundaries_and_never_go_back(s: Schedule, k: int) -> None:
    p, q = s.period(k), s.period(k + 1)
    assert p.end == q.start  # no gap, no overlap
    assert p.start <= p.end
    if not (s.cadence.unit is Unit.DAY and s.cadence.count == 1):
        assert p.start < p.end  # only a skipped calendar day can empty a daily period
    assert p.start.tzinfo is not None
    assert p.start.utcoffset() == dt.timedelta(0)


@settings(max_examples=200, deadline=None)
@given(schedules, ks)
def test_boundaries_return_to_the_anchor_day(s: Schedule, k: int) -> None:
    a = s.anchor.local
    local = s.local_boundary(k)
    if s.cadence.unit in (Unit.MONTH, Unit.YEAR):
        import calendar

        assert local.day == min(a.day, calendar.monthrange(local.year, local.month)[1])
        assert (local.hour, local.minute, local.second) == (a.hour, a.minute, a.second)
    else:
        step = s.cadence.count * (7 if s.cadence.unit is Unit.WEEK else 1)
        assert local - a == dt.timedelta(days=k * step)


@settings(max_examples=120, deadline=None)
@given(schedules, ks, st.integers(0, 10**6))
def test_every_instant_falls_in_exactly_one_period(s: Schedule, k: int, offset_s: int) -> None:
    p = s.period(k)
    if p.start == p.end:
        return
    t = p.start + min(dt.timedelta(seconds=offset_s), p.length - dt.timedelta(microseconds=1))
    found = s.period_at(t)
    assert found == p
    assert found.start <= t < found.end


def test_every_zone_has_monotone_monthly_boundaries_for_two_years() -> None:
    for name in ZONES:
        s = month_schedule(dt.datetime(2025, 1, 31, 2, 30), name)
        b = [s.boundary(k) for k in range(25)]
        assert all(x < y for x, y in itertools.pairwise(b)), name


# -- proration ----------------------------------------------------------------------------------
PERIOD = Period(0, dt.datetime(2026, 3, 1, tzinfo=UTC), dt.datetime(2026, 3, 31, tzinfo=UTC))  # 30 days


def test_proration_exact_values() -> None:
    at = dt.datetime(2026, 3, 21, tzinfo=UTC)  # 10 of 30 days left
    assert unused_fraction(PERIOD, at) == Fraction(1, 3)
    assert prorate(Money(1000, "EUR"), PERIOD, at, rounding=Rounding.HALF_UP) == Money(333, "EUR")
    assert prorate(Money(1000, "EUR"), PERIOD, at, rounding=Rounding.UP) == Money(334, "EUR")
    assert prorate(Money(1000, "JPY"), PERIOD, at, rounding=Rounding.HALF_EVEN) == Money(333, "JPY")
    p = plan_change(Money(1000, "EUR"), Money(2500, "EUR"), PERIOD, at, rounding=Rounding.HALF_UP)
    assert p.credit == Money(-333, "EUR")
    assert p.charge == Money(833, "EUR")
    assert p.net == Money(500, "EUR")


def test_proration_clamps_outside_the_period() -> None:
    before, after = PERIOD.start - dt.timedelta(days=1), PERIOD.end + dt.timedelta(days=1)
    assert prorate(Money(999, "EUR"), PERIOD, before, rounding=Rounding.HALF_UP) == Money(999, "EUR")
    assert prorate(Money(999, "EUR"), PERIOD, after, rounding=Rounding.HALF_UP) == Money(0, "EUR")
    with pytest.raises(CalendarError):
        unused_fraction(PERIOD, dt.datetime(2026, 3, 2))


@settings(max_examples=200, deadline=None)
@given(
    st.integers(0, 10**9),
    st.integers(0, 10**9),
    st.integers(0, 30 * 86400 * 10**6),
    st.sampled_from(list(Rounding)),
)
def test_proration_properties(old: int, new: int, us: int, rounding: Rounding) -> None:
    at = PERIOD.start + dt.timedelta(microseconds=us)
    p = plan_change(Money(old, "EUR"), Money(new, "EUR"), PERIOD, at, rounding=rounding)
    assert -old <= p.credit.amount <= 0
    assert 0 <= p.charge.amount <= new
    exact = Fraction(new - old) * unused_fraction(PERIOD, at)
    assert abs(p.net.amount - exact) <= 2  # each of the two lines rounds by less than one unit
    later = prorate(Money(new, "EUR"), PERIOD, at + dt.timedelta(hours=1), rounding=rounding)
    assert later.amount <= p.charge.amount  # less time left never costs more
