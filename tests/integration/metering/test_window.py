"""The aggregator's window on the Firestore emulator: concurrent deliveries of several customers, overlapping and
redelivered, count every event once; a delivery returns only once its events are committed; a failed window
nacks every delivery in it and their redelivery counts once; the writes per 1,000 events stay within 20 with ten
customers per batch, once per window rather than once per delivery."""

from __future__ import annotations

import concurrent.futures
import datetime as dt
import random
import uuid
from collections.abc import Sequence

import pytest
from google.api_core.exceptions import ServiceUnavailable

from shared.domain.calendar import Period
from shared.domain.meters import Event, Meter, quantities
from shared.events.envelope import Envelope, Received
from shared.events.publisher import PubSubPublisher
from shared.events.usage import UsageBatch, UsageEventIn
from shared.metering.aggregator import UsageWindow, on_batch, usage_window
from shared.metering.config import metering_settings
from shared.metering.store import MeteringDeps, MeteringStore, _Folded
from tests.conftest import Gcp
from tests.unit.metering.test_meters import METERS, recompute

NOW = dt.datetime.now(dt.UTC)
MONTH = NOW.replace(day=1, hour=0, minute=0, second=0, microsecond=0)
PERIOD = Period(0, MONTH, (MONTH + dt.timedelta(days=32)).replace(day=1))  # the default calendar: UTC months
T0 = max(MONTH, NOW - dt.timedelta(minutes=5))  # every event in the open month, inside the aggregator's skew


def _events(n: int, customers: int, seed: int) -> list[Event]:
    rnd = random.Random(seed)
    return [
        Event(
            id=f"e{i}",
            customer=f"cus-{i % customers}",
            name=rnd.choice(["api_call", "storage"]),
            timestamp=T0 + dt.timedelta(milliseconds=i),
            properties={
                "bytes": rnd.randrange(0, 10**6),
                "gb": f"{rnd.randrange(0, 10**4)}.{rnd.randrange(0, 1000):03d}",
                "region": rnd.choice(["eu-west", "eu-north", "us-east"]),
                "user": f"u{rnd.randrange(0, 30)}",
            },
        )
        for i in range(n)
    ]


def _msg(events: Sequence[Event]) -> Received[UsageBatch]:
    batch = UsageBatch(
        batch_id=uuid.uuid4().hex,
        received_at=NOW,
        events=tuple(
            UsageEventIn(
                id=e.id, customer=e.customer, event_name=e.name, timestamp=e.timestamp, properties=dict(e.properties)
            )
            for e in events
        ),
    )
    env = Envelope(UsageBatch.EVENT_TYPE, uuid.uuid4().hex, 1, NOW, batch.batch_id)
    return Received(envelope=env, event=batch, message_id=uuid.uuid4().hex)


def _store(cls: type[MeteringStore] = MeteringStore) -> MeteringStore:
    store = cls(MeteringDeps(settings=metering_settings))  # the defaults (one shard), as deployed
    for m in METERS:
        store.create_meter(m)
    return store


def _window(store: MeteringStore, monkeypatch: pytest.MonkeyPatch, *, close_at: int) -> UsageWindow:
    """A window that closes when ``close_at`` events are queued (so every delivery joins it, without a timer)."""
    monkeypatch.setenv("USAGE_COALESCE_MS", "60000")
    monkeypatch.setenv("USAGE_COALESCE_MAX_EVENTS", str(close_at))
    return usage_window(store, PubSubPublisher(), eager_when_idle=False)


def _deliver_all(window: UsageWindow, batches: list[list[Event]]) -> list[dict[str, int] | Exception]:
    def one(batch: list[Event]) -> dict[str, int] | Exception:
        try:
            return on_batch(_msg(batch), window=window)
        except Exception as exc:  # a nacked delivery: what Pub/Sub would see
            return exc

    with concurrent.futures.ThreadPoolExecutor(len(batches)) as pool:
        return list(pool.map(one, batches))


def _assert_exact(store: MeteringStore, unique: list[Event]) -> None:
    for c in sorted({e.customer for e in unique}):
        totals = store.period_totals(c, PERIOD)
        mine = [e for e in unique if e.customer == c]
        for m in METERS:
            assert quantities(m, totals) == recompute(m, mine), (c, m.id)


def test_concurrent_overlapping_redelivered_deliveries_of_several_customers_count_once(
    gcp: Gcp, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("USAGE_COALESCE_MS", "20")
    store = _store()
    window = usage_window(store, PubSubPublisher(), eager_when_idle=False)
    unique = _events(600, customers=5, seed=11)
    rnd = random.Random(5)
    deliveries = unique + rnd.sample(unique, 250)  # producer retries
    rnd.shuffle(deliveries)
    batches = [deliveries[i : i + 85] for i in range(0, len(deliveries), 85)]
    batches += rnd.sample(batches, 3)  # Pub/Sub redeliveries of whole batches

    def deliver(batch: list[Event]) -> dict[str, int]:
        out = on_batch(_msg(batch), window=window)
        assert store.apply(batch).applied == 0  # returned: every event of it is committed already
        return out

    with concurrent.futures.ThreadPoolExecutor(8) as pool:
        results = list(pool.map(deliver, batches))
    assert sum(r["applied"] for r in results) == len(unique)
    assert sum(r["applied"] + r["duplicates"] for r in results) == sum(len(b) for b in batches)
    assert sum(r["window"] for r in results) == window.stats.parts == len(batches)  # reported by each leader
    assert sum(1 for r in results if r["window"]) == window.stats.windows
    _assert_exact(store, unique)
    # one id document and one totals document per customer and window (all in one period)
    assert sum(r["writes"] for r in results) <= 2 * 5 * window.stats.windows


def test_a_window_of_ten_deliveries_writes_each_customers_documents_once(
    gcp: Gcp, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = _store()
    unique = _events(1000, customers=10, seed=3)
    alone = store.apply(unique[:500])  # one delivery on its own: 500 events, 10 customers
    assert alone.writes == 2 * 10  # per customer its id document and its period's totals: 40 per 1,000 here
    rest = unique[500:]
    window = _window(store, monkeypatch, close_at=len(rest))
    results = _deliver_all(window, [rest[i : i + 50] for i in range(0, len(rest), 50)])  # 10 x 50 events
    assert window.stats.windows == 1
    writes = sum(r["writes"] for r in results if isinstance(r, dict))
    assert writes == 2 * 10  # once per window, not once per delivery (10 x 20 without the window)
    assert sum(r["applied"] for r in results if isinstance(r, dict)) == len(rest)
    _assert_exact(store, unique)


def test_a_batch_of_1000_events_of_ten_customers_writes_at_most_20_documents(gcp: Gcp) -> None:
    store = _store()
    r = store.apply(_events(1000, customers=10, seed=1))
    assert r.applied == 1000
    assert r.writes <= 20  # the goal: at most 20 writes per 1,000 events, with the deployed defaults


def test_a_failed_window_nacks_every_delivery_and_their_redelivery_counts_once(
    gcp: Gcp, monkeypatch: pytest.MonkeyPatch
) -> None:
    class FlakyStore(MeteringStore):
        """Firestore unavailable for one customer's commit, once: the other customers' commits may have landed."""

        failed = False

        def _apply_customer(self, customer: str, events: Sequence[Event], meters: Sequence[Meter]) -> _Folded:
            if customer == "cus-3" and not FlakyStore.failed:
                FlakyStore.failed = True
                raise ServiceUnavailable("firestore unavailable")  # type: ignore[no-untyped-call]
            return super()._apply_customer(customer, events, meters)

    store = _store(FlakyStore)
    unique = _events(400, customers=6, seed=9)
    batches = [unique[i : i + 80] for i in range(0, len(unique), 80)]
    window = _window(store, monkeypatch, close_at=len(unique))
    first = _deliver_all(window, batches)
    assert window.stats.windows == 1
    assert all(isinstance(r, ServiceUnavailable) for r in first)  # every delivery of the window nacked
    again = _deliver_all(window, batches)  # Pub/Sub redelivers them all
    assert all(isinstance(r, dict) for r in again)
    lost = [e for e in unique if e.customer == "cus-3"]  # the other customers' commits landed before the nack
    assert sum(r["applied"] for r in again if isinstance(r, dict)) == len(lost)
    assert sum(r["duplicates"] for r in again if isinstance(r, dict)) == len(unique) - len(lost)
    _assert_exact(store, unique)
    assert all(r["applied"] == 0 for r in _deliver_all(window, batches) if isinstance(r, dict))  # and once more
