"""The metering store on the Firestore emulator: exact under duplicates, concurrency and redelivery; late events
after a close land on the next close exactly once; the current usage is what the close bills."""

from __future__ import annotations

import concurrent.futures
import datetime as dt
import random
import uuid
from decimal import Decimal

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from shared.domain.calendar import Cadence, Unit
from shared.domain.catalog import Price
from shared.domain.meters import Aggregation, Event, Meter, quantities
from shared.metering.config import MeteringSettings
from shared.metering.store import DEFAULT_SCHEDULE, MeteredItem, MeteringDeps, MeteringError, MeteringStore
from tests.conftest import Gcp
from tests.unit.metering.test_meters import METERS, recompute

START = dt.datetime(2026, 10, 31, 23, 0, tzinfo=dt.UTC)  # 00:00 on Nov 1 in Berlin
ZONE = "Europe/Berlin"
PRICE = Price.model_validate(
    {
        "id": "price_calls",
        "product_id": "api",
        "currency": "EUR",
        "recurring": {"interval": "month"},
        "pricing": {"model": "graduated", "tiers": [{"up_to": 10, "unit_amount": "100"}, {"unit_amount": "50"}]},
    }
)


class Clock:
    def __init__(self, t: dt.datetime) -> None:
        self.t = t

    def __call__(self) -> dt.datetime:
        return self.t


def _store(clock: Clock | None = None, **cfg: int) -> MeteringStore:
    settings = MeteringSettings(**({"shards": 4, "page_ids": 50} | cfg))
    return MeteringStore(MeteringDeps(clock=clock or Clock(START + dt.timedelta(days=3)), settings=lambda: settings))


def _setup(store: MeteringStore, meters: list[Meter]) -> None:
    for m in meters:
        store.create_meter(m)


def _stream(n: int, seed: int) -> list[Event]:
    rnd = random.Random(seed)
    return [
        Event(
            id=f"e{i}",
            customer="cus",
            name=rnd.choice(["api_call", "storage"]),
            timestamp=START + dt.timedelta(seconds=rnd.randrange(0, 20 * 86400)),
            properties={
                "bytes": rnd.randrange(0, 10**6),
                "gb": f"{rnd.randrange(0, 10**4)}.{rnd.randrange(0, 1000):03d}",
                "region": rnd.choice(["eu-west", "eu-north", "us-east"]),
                "user": f"u{rnd.randrange(0, 30)}",
            },
        )
        for i in range(n)
    ]


def test_concurrent_overlapping_redelivered_batches_count_every_event_once(gcp: Gcp) -> None:
    store = _store()
    _setup(store, METERS)
    unique = _stream(600, seed=7)
    rnd = random.Random(3)
    deliveries = unique + rnd.sample(unique, 300)  # producer retries
    rnd.shuffle(deliveries)
    batches = [deliveries[i : i + 90] for i in range(0, len(deliveries), 90)]
    batches += rnd.sample(batches, 3)  # Pub/Sub redeliveries of whole batches
    with concurrent.futures.ThreadPoolExecutor(6) as pool:
        results = list(pool.map(store.apply, batches))
    assert sum(r.applied for r in results) == len(unique)
    assert sum(r.applied + r.duplicates for r in results) == sum(len(b) for b in batches)
    period = store.calendar("cus")
    assert period is None  # no metered subscription: the default calendar (UTC months)
    from shared.domain.calendar import Period

    totals = store.period_totals(
        "cus", Period(0, dt.datetime(2026, 11, 1, tzinfo=dt.UTC), dt.datetime(2026, 12, 1, tzinfo=dt.UTC))
    )
    october = store.period_totals(
        "cus", Period(0, dt.datetime(2026, 10, 1, tzinfo=dt.UTC), dt.datetime(2026, 11, 1, tzinfo=dt.UTC))
    )
    in_nov = [e for e in unique if e.timestamp >= dt.datetime(2026, 11, 1, tzinfo=dt.UTC)]
    in_oct = [e for e in unique if e.timestamp < dt.datetime(2026, 11, 1, tzinfo=dt.UTC)]
    for m in METERS:
        assert quantities(m, totals) == recompute(m, in_nov), m.id
        assert quantities(m, october) == recompute(m, in_oct), m.id
    # the id pages rolled over (page_ids=50 per shard): dedup still exact across pages
    assert store.apply(unique[:200]).duplicates == 200


def test_the_same_id_with_another_timestamp_is_still_one_event(gcp: Gcp) -> None:
    store = _store()
    _setup(store, METERS[:1])
    e = Event("retry-1", "cus", "api_call", START + dt.timedelta(days=1))
    assert store.apply([e]).applied == 1
    moved = Event("retry-1", "cus", "api_call", START + dt.timedelta(days=40))  # next period: a different shard doc
    assert (store.apply([moved]).applied, store.apply([moved]).duplicates) == (0, 1)


def test_a_batch_of_1000_events_of_a_customer_writes_at_most_two_documents_per_shard(gcp: Gcp) -> None:
    store = _store(shards=8, page_ids=40_000)
    _setup(store, METERS)
    r = store.apply(_stream(1000, seed=1)[:1000])
    assert r.applied == 1000
    assert r.writes <= 2 * 8 * 2  # ids + totals per shard, the stream spans two calendar months


def _attached(clock: Clock) -> MeteringStore:
    store = _store(clock, grace_s=3600)
    _setup(store, METERS[:1])
    store.attach(
        "cus",
        subscription_id="sub_1",
        start=START,
        zone=ZONE,
        cadence=Cadence(Unit.MONTH),
        items=[MeteredItem(price=PRICE, meter="calls")],
    )
    return store


def _calls(prefix: str, n: int, at: dt.datetime) -> list[Event]:
    return [Event(f"{prefix}{i}", "cus", "api_call", at + dt.timedelta(seconds=i)) for i in range(n)]


def test_late_events_after_the_close_land_on_the_next_close_exactly_once(gcp: Gcp) -> None:
    clock = Clock(START + dt.timedelta(days=5))
    store = _attached(clock)
    cal = store.calendar("cus")
    assert cal is not None
    p0, p1, p2 = (cal.schedule.period(k) for k in range(3))
    assert p0.start == START
    assert p0.end == dt.datetime(2026, 11, 30, 23, 0, tzinfo=dt.UTC)
    store.apply(_calls("a", 12, p0.start + dt.timedelta(days=2)))
    usage = store.current_usage("cus")
    assert usage["items"][0]["quantity"] == "12"
    assert usage["estimated_amount"] == {"amount": 1100, "currency": "EUR"}
    assert [t["units"] for t in usage["items"][0]["tiers"]] == ["10", "2"]

    clock.t = p0.end + dt.timedelta(minutes=30)
    with pytest.raises(MeteringError, match="grace_running"):
        store.close("cus", p0, "sub_1:p1")
    store.apply(_calls("b", 3, p0.end - dt.timedelta(minutes=1)))  # inside the grace: on this invoice
    clock.t = p0.end + dt.timedelta(hours=1)
    first = store.close("cus", p0, "sub_1:p1")
    assert [(x.quantity, x.amount.amount) for x in first] == [(Decimal(15), 1250)]
    assert "tier 1: 10 units; tier 2: 5 units" in first[0].description
    assert store.close("cus", p0, "sub_1:p1") == first  # a repeated close answers the same lines

    late = _calls("late", 4, p0.end - dt.timedelta(hours=2))
    clock.t = p1.start + dt.timedelta(days=2)
    with concurrent.futures.ThreadPoolExecutor(4) as pool:  # concurrent redeliveries of the late batch
        applied = sum(r.applied for r in pool.map(store.apply, [late, late, late[:2], late]))
    assert applied == 4
    store.apply(_calls("c", 2, p1.start + dt.timedelta(days=1)))
    clock.t = p1.end + dt.timedelta(hours=2)
    second = store.close("cus", p1, "sub_1:p2")
    adj = [x for x in second if x.description.startswith("Late usage adjustment")]
    assert [(x.quantity, x.amount.amount, x.period_start) for x in adj] == [(Decimal(4), 200, p0.start)]
    assert [(x.quantity, x.amount.amount) for x in second if x not in adj] == [(Decimal(2), 200)]
    clock.t = p2.end + dt.timedelta(hours=2)
    third = store.close("cus", p2, "sub_1:p3")
    assert [x.description.startswith("Late") for x in third] == [False]  # billed once, not again


def test_the_current_usage_is_what_the_close_bills(gcp: Gcp) -> None:
    clock = Clock(START + dt.timedelta(days=1))
    store = _attached(clock)
    cal = store.calendar("cus")
    assert cal is not None
    p0 = cal.schedule.period(0)
    rnd = random.Random(5)
    for b in range(5):
        store.apply(_calls(f"x{b}-", rnd.randrange(1, 9), p0.start + dt.timedelta(days=b)))
    estimate = store.current_usage("cus")["estimated_amount"]["amount"]
    clock.t = p0.end + dt.timedelta(hours=1)
    assert sum(x.amount.amount for x in store.close("cus", p0, "sub_1:p1")) == estimate


@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    st.lists(st.tuples(st.integers(0, 40), st.integers(0, 2), st.integers(0, 3)), min_size=1, max_size=40),
    st.randoms(use_true_random=False),
)
def test_every_period_is_billed_exactly_its_final_usage_whatever_arrives_late(
    gcp: Gcp, arrivals: list[tuple[int, int, int]], rnd: random.Random
) -> None:
    """Events of 3 periods arrive in random order around the closes (each close after its grace), duplicated;
    what all the closes bill for a period, first line plus adjustments, is the rating of its unique events."""
    clock = Clock(START)
    store = _store(clock, grace_s=3600)
    customer = f"cus{uuid.uuid4().hex[:10]}"  # one customer per example (the project is shared)
    if not store._col("meters").document("calls").get().exists:
        _setup(store, METERS[:1])
    store.attach(
        customer,
        subscription_id="sub_h",
        start=START,
        zone=ZONE,
        cadence=Cadence(Unit.MONTH),
        items=[MeteredItem(price=PRICE, meter="calls")],
    )
    cal = store.calendar(customer)
    assert cal is not None
    periods = [cal.schedule.period(k) for k in range(4)]
    # (event id, its period, after which close it arrives: 0 = before the first close)
    deliveries = [
        (Event(f"e{i}", customer, "api_call", periods[k].start + dt.timedelta(hours=1 + i)), k, max(after, k))
        for i, k, after in {a[0]: a for a in reversed(arrivals)}.values()  # one timestamp per id
    ]
    billed: dict[int, int] = {}
    for step in range(4):
        for e, _, _ in [d for d in deliveries if d[2] == step] * 2:  # each delivered twice
            store.apply([e])
        if step < 3:
            clock.t = periods[step].end + dt.timedelta(hours=1)
            for line in store.close(customer, periods[step], f"{customer}:{step}"):
                k = next(i for i, p in enumerate(periods) if p.start == line.period_start)
                billed[k] = billed.get(k, 0) + line.amount.amount
    clock.t = periods[3].end + dt.timedelta(hours=1)
    for line in store.close(customer, periods[3], f"{customer}:3"):
        k = next(i for i, p in enumerate(periods) if p.start == line.period_start)
        billed[k] = billed.get(k, 0) + line.amount.amount
    from shared.domain.meters import rate

    for k in range(3):
        unique = {e.id for e, kk, _ in deliveries if kk == k}
        assert billed.get(k, 0) == rate(PRICE, Decimal(len(unique))).amount.amount, k


def test_a_meter_created_on_another_instance_counts_the_events_aggregated_after_it(gcp: Gcp) -> None:
    """An instance whose meter cache is fresh still counts a meter created elsewhere a moment ago: an event name
    no cached meter uses makes it read the meters again (before, such events went uncounted for up to 30 s)."""
    aggregator, api = _store(), _store()  # two instances: separate caches
    calls = Meter(id="calls", event_name="api_call", aggregation=Aggregation.COUNT)
    _setup(api, [calls])
    t = START + dt.timedelta(days=1)
    aggregator.apply([Event(id="a1", customer="cus", name="api_call", timestamp=t, properties={})])
    _setup(api, [Meter(id="uploads", event_name="upload", aggregation=Aggregation.COUNT)])  # after the cache was filled
    aggregator.apply([Event(id=f"u{i}", customer="cus", name="upload", timestamp=t, properties={}) for i in range(3)])
    period = DEFAULT_SCHEDULE.period_at(t)  # no metered subscription: UTC calendar months
    uploads = aggregator.meter("uploads")
    assert quantities(uploads, aggregator.period_totals("cus", period)) == {"": Decimal(3)}
