"""Aggregation is exact whatever the order, the duplicates and the split into shards and batches; periods follow
the subscription's calendar and zone (DST days included); rating shows the tiers it applied."""

from __future__ import annotations

import datetime as dt
import random
from decimal import Decimal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from shared.domain.calendar import Anchor, Cadence, Schedule, Unit
from shared.domain.catalog import Price
from shared.domain.meters import (
    Aggregation,
    Event,
    Meter,
    TimePolicy,
    fold,
    merge_totals,
    parse_number,
    quantities,
    rate,
    shard_of,
)

T0 = dt.datetime(2026, 11, 1, tzinfo=dt.UTC)

METERS = [
    Meter(id="calls", event_name="api_call", aggregation=Aggregation.COUNT),
    Meter(id="bytes", event_name="api_call", aggregation=Aggregation.SUM, property="bytes", group_by="region"),
    Meter(id="peak", event_name="api_call", aggregation=Aggregation.MAX, property="bytes"),
    Meter(id="users", event_name="api_call", aggregation=Aggregation.UNIQUE_COUNT, property="user"),
    Meter(id="level", event_name="storage", aggregation=Aggregation.LATEST, property="gb"),
    Meter(
        id="eu_calls",
        event_name="api_call",
        aggregation=Aggregation.COUNT,
        filters={"region": ("eu-west", "eu-north")},
    ),
]

values = st.one_of(st.integers(-(10**6), 10**12), st.decimals(-1000, 10**6, places=3).map(lambda d: f"{d:f}"))
events = st.builds(
    lambda i, name, us, v, region, user: Event(
        id=f"e{i}",
        customer="cus",
        name=name,
        timestamp=T0 + dt.timedelta(microseconds=us),
        properties={k: x for k, x in (("bytes", v), ("gb", v), ("region", region), ("user", user)) if x is not None},
    ),
    st.integers(0, 60),
    st.sampled_from(["api_call", "storage", "other"]),
    st.integers(0, 10**10),
    values,
    st.sampled_from([None, "eu-west", "eu-north", "us-east"]),
    st.sampled_from([None, "u1", "u2", "u3", "u4"]),
)


def recompute(meter: Meter, unique: list[Event]) -> dict[str, Decimal]:
    """Independent of the partials: straight from the definition over the unique events."""
    out: dict[str, list[Event]] = {}
    for e in unique:
        if e.name != meter.event_name:
            continue
        if any(str(e.properties.get(k)) not in allowed for k, allowed in meter.filters.items()):
            continue
        raw = e.properties.get(meter.property) if meter.property else None
        if meter.aggregation in (Aggregation.SUM, Aggregation.MAX, Aggregation.LATEST) and raw is None:
            continue
        if meter.aggregation is Aggregation.UNIQUE_COUNT and raw is None:
            continue
        g = "" if meter.group_by is None else str(e.properties.get(meter.group_by, ""))
        out.setdefault(g, []).append(e)
    res = {}
    for g, es in sorted(out.items()):
        numeric = meter.aggregation in (Aggregation.SUM, Aggregation.MAX)
        nums = [Decimal(str(e.properties[meter.property])) for e in es] if numeric else []  # type: ignore[index]
        if meter.aggregation is Aggregation.COUNT:
            q = Decimal(len(es))
        elif meter.aggregation is Aggregation.SUM:
            q = sum(nums, Decimal(0))
        elif meter.aggregation is Aggregation.MAX:
            q = max(nums)
        elif meter.aggregation is Aggregation.LATEST:
            last = max(es, key=lambda e: (e.timestamp, e.id))
            q = Decimal(str(last.properties[meter.property]))  # type: ignore[index]
        else:
            q = Decimal(len({str(e.properties[meter.property]) for e in es}))  # type: ignore[index]
        res[g] = max(q, Decimal(0)).normalize() if q else Decimal(0)
    return res


@settings(max_examples=300, deadline=None)
@given(st.lists(events, max_size=60), st.randoms(use_true_random=False), st.integers(1, 8), st.integers(1, 5))
def test_shards_batches_duplicates_and_order_never_change_a_total(
    stream: list[Event], rnd: random.Random, shards: int, batches: int
) -> None:
    # the first copy of an id is the event; producers resend exact copies (retries, redeliveries)
    unique = list({e.id: e for e in reversed(stream)}.values())
    deliveries = stream + [rnd.choice(stream) for _ in range(len(stream) // 2)] if stream else []
    deliveries = [next(u for u in unique if u.id == e.id) for e in deliveries]
    rnd.shuffle(deliveries)
    # split into batches and shards exactly as the store does: dedup by digest, fold per (batch, shard)
    seen: set[bytes] = set()
    parts = []
    for b in range(batches):
        chunk = deliveries[b::batches]
        per_shard: dict[int, list[Event]] = {}
        for e in chunk:
            if e.digest() in seen:
                continue
            seen.add(e.digest())
            per_shard.setdefault(shard_of(e.digest(), shards), []).append(e)
        parts += [fold(METERS, es) for es in per_shard.values()]
    rnd.shuffle(parts)
    merged = merge_totals(parts)
    for m in METERS:
        expected = recompute(m, unique)
        got = quantities(m, merged)
        assert {g: q.normalize() for g, q in got.items()} == {g: q.normalize() for g, q in expected.items()}, m.id


def test_latest_ties_are_decided_by_id_not_arrival() -> None:
    a = Event("a", "cus", "storage", T0, {"gb": 5})
    b = Event("b", "cus", "storage", T0, {"gb": 7})
    level = METERS[4]
    assert quantities(level, fold([level], [a, b])) == quantities(level, fold([level], [b, a])) == {"": Decimal(7)}


def test_numbers_are_exact_and_floats_refused() -> None:
    assert parse_number("0.000000000001") == 1
    assert parse_number("0.0000000000001") is None  # 13 places
    assert parse_number(1.5) is None
    assert parse_number(True) is None
    assert parse_number(10**12 + 1) is None
    big = [Event(f"e{i}", "c", "api_call", T0, {"bytes": "999999999999.999999999999"}) for i in range(1000)]
    q = quantities(METERS[1], fold([METERS[1]], big))[""]
    assert q == Decimal("999999999999999.999999999")  # 28+ digits: no Decimal context rounding


ZONES = ["Europe/Berlin", "America/New_York", "Australia/Lord_Howe", "Asia/Kolkata", "Pacific/Apia", "UTC"]


@settings(max_examples=200, deadline=None)
@given(st.sampled_from(ZONES), st.integers(0, 3 * 365 * 24 * 3600), st.sampled_from([Unit.DAY, Unit.MONTH]))
def test_an_event_lands_in_the_period_of_the_subscriptions_zone(zone: str, offset_s: int, unit: Unit) -> None:
    schedule = Schedule(Anchor(dt.datetime(2025, 1, 31, 0, 0), zone), Cadence(unit))
    t = dt.datetime(2025, 1, 1, tzinfo=dt.UTC) + dt.timedelta(seconds=offset_s)
    p = schedule.period_at(t)
    assert p.start <= t < p.end


def test_dst_day_and_last_local_evening_of_the_month() -> None:
    # Berlin, 2026-03-29 is 23 hours long; daily periods follow local midnight
    daily = Schedule(Anchor(dt.datetime(2026, 3, 1), "Europe/Berlin"), Cadence(Unit.DAY))
    p = daily.period_at(dt.datetime(2026, 3, 29, 12, tzinfo=dt.UTC))
    assert p.end - p.start == dt.timedelta(hours=23)
    assert p.start == dt.datetime(2026, 3, 28, 23, tzinfo=dt.UTC)
    # UTC+X customer, 23:30 local on the last day of the month counts in that month (reference vector 18)
    monthly = Schedule(Anchor(dt.datetime(2026, 1, 1), "Asia/Tokyo"), Cadence(Unit.MONTH))
    late_evening = dt.datetime(2026, 1, 31, 23, 30, tzinfo=dt.timezone(dt.timedelta(hours=9)))
    assert monthly.period_at(late_evening).index == 0
    assert monthly.period_at(late_evening + dt.timedelta(hours=1)).index == 1


def test_time_policy_reasons() -> None:
    pol = TimePolicy()
    assert pol.problem(T0 - dt.timedelta(days=36), T0) == "timestamp_too_old: older than 35 days"
    assert pol.problem(T0 + dt.timedelta(minutes=6), T0) == "timestamp_in_future: more than 300 s ahead"
    assert pol.problem(T0 + dt.timedelta(minutes=4), T0) is None


def _price(pricing: dict[str, object]) -> Price:
    return Price.model_validate(
        {"id": "p", "product_id": "api", "currency": "EUR", "recurring": {"interval": "month"}, "pricing": pricing}
    )


TIERS = [{"up_to": 5, "unit_amount": "700"}, {"up_to": 10, "unit_amount": "650"}, {"unit_amount": "600"}]


def test_rating_shows_tiers_and_matches_the_reference_vectors() -> None:
    g = rate(_price({"model": "graduated", "tiers": TIERS}), Decimal(6))
    assert g.amount.amount == 4150
    assert [(t.tier, t.units) for t in g.tiers] == [(1, "5"), (2, "1")]
    v = rate(_price({"model": "volume", "tiers": TIERS}), Decimal(20))
    assert (v.amount.amount, [(t.tier, t.units) for t in v.tiers]) == (12000, [(3, "20")])
    assert (
        rate(_price({"model": "package", "package_size": 1000, "package_amount": "4"}), Decimal(2500)).amount.amount
        == 12
    )
    assert rate(_price({"model": "per_unit", "unit_amount": "0.05"}), Decimal(30)).amount.amount == 2
    assert rate(_price({"model": "graduated", "tiers": TIERS}), Decimal(0)).tiers == ()


def test_a_meter_definition_is_checked() -> None:
    with pytest.raises(ValueError, match="names the property"):
        Meter(id="m", event_name="x", aggregation=Aggregation.SUM)
    with pytest.raises(ValueError, match="takes no property"):
        Meter(id="m", event_name="x", aggregation=Aggregation.COUNT, property="p")


@given(
    st.integers(-(10**30), 10**30),
    st.integers(0, 10**17),
    st.text(min_size=1, max_size=8),
    st.sets(st.text(max_size=4), max_size=5),
)
def test_a_partial_survives_its_document_form_exactly(v: int, us: int, eid: str, unique: set[str]) -> None:
    from shared.domain.meters import Partial

    p = Partial(count=3, sum=v, max=v, latest=(us, eid, v), unique=unique)
    doc = p.to_doc()
    assert Partial.from_doc(doc) == p
    if abs(v) < 10**24:  # under 10^12 units no run of 13+ digits, which a card-number sweep would flag
        import json
        import re

        assert not re.findall(r"\d{13,}", json.dumps(doc))
