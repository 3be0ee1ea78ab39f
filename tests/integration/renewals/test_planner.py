"""The planner on the emulators: one RenewalDue per (subscription, period), whatever the ticks do."""

from __future__ import annotations

import concurrent.futures
import datetime as dt

import pytest

from shared.renewals import planner, repository
from shared.renewals.config import renewal_settings
from shared.renewals.deps import DEFAULT, Deps
from shared.renewals.entry import handle_push
from tests.fixtures.renewals import Env, Interrupted, new_sub, tick_push
from tests.helpers import T0
from tests.infra.monitoring import counted, log_metrics
from tests.logcapture import captured_lines


def run_all_shards(now: dt.datetime, deps: Deps = DEFAULT) -> None:
    cfg = renewal_settings()
    for shard in range(cfg.shards):
        planner.run_shard(shard, now, cfg, deps)


def dues(env: Env) -> list[str]:
    return sorted(
        body["request_id"] for attrs, body in env.pull("renewals-due") if attrs["event_type"] == "renewal.due"
    )


def test_due_subscriptions_get_exactly_one_renewal_due(env: Env) -> None:
    for i in range(8):  # > page size: pages with cursors, several shards
        new_sub(f"sub_{i}")
    new_sub("sub_later", start=T0 + dt.timedelta(days=2))
    env.pull("subscription-events")
    run_all_shards(T0)
    got = dues(env)
    assert got == sorted(f"sub_{i}:2026-01-31T09:00:00Z" for i in range(8))
    # A repeated tick and a tick a minute later bill nothing more.
    run_all_shards(T0)
    run_all_shards(T0 + dt.timedelta(minutes=1))
    assert dues(env) == []


def test_renewal_due_carries_plan_lines_for_the_period(env: Env) -> None:
    new_sub("sub_lines")
    run_all_shards(T0)
    ((attrs, body),) = env.pull("renewals-due")
    assert attrs["idempotency_key"] == "sub_lines:2026-01-31T09:00:00Z"
    assert body["period_start"] == "2026-01-31T09:00:00Z"
    assert body["period_end"] == "2026-02-28T09:00:00Z"  # clamped to Feb 28, same Berlin wall time
    assert body["lines"][0]["unit_amount"] == {"amount": 1000, "currency": "EUR"}
    assert body["payment_method"]["method_ref"] == "pm_card_visa"
    assert body["customer"]["id"] == "cus-sub_lines"


def test_overlapping_ticks_bill_once(env: Env) -> None:
    for i in range(10):
        new_sub(f"sub_c{i}")
    cfg = renewal_settings()
    with concurrent.futures.ThreadPoolExecutor(8) as pool:
        list(pool.map(lambda s: planner.run_shard(s % cfg.shards, T0, cfg), range(4 * cfg.shards)))
    got = dues(env)
    assert len(got) == 10
    assert len(set(got)) == 10


def test_crash_between_claim_and_publish_is_recovered_by_a_later_tick(env: Env) -> None:
    new_sub("sub_crash")
    broken = Deps(publisher=Interrupted(RuntimeError("instance killed before the publish")))
    with pytest.raises(RuntimeError):
        run_all_shards(T0, broken)
    run_all_shards(T0 + dt.timedelta(minutes=5))  # claimed: not due again yet
    assert dues(env) == []
    run_all_shards(T0 + dt.timedelta(seconds=renewal_settings().republish_s))
    assert dues(env) == ["sub_crash:2026-01-31T09:00:00Z"]


def test_scheduler_tick_with_fixed_body_fans_out_per_shard(env: Env) -> None:
    new_sub("sub_tick")
    # Cloud Scheduler: fixed body, fixed attributes (no envelope); the publish time is "now".
    handle_push(tick_push({}, publish_time=T0 + dt.timedelta(minutes=10)))
    pulled = env.pull("billing-ticks")
    shard_ticks = [body for _, body in pulled]
    assert sorted(t["shard"] for t in shard_ticks) == list(range(renewal_settings().shards))
    assert {t["now"] for t in shard_ticks} == {"2026-01-31T09:10:00Z"}
    assert all(a == {"event_type": "billing.tick", "schema_version": "1"} for a, _ in pulled)
    for a, t in pulled:
        handle_push(tick_push(t, publish_time=T0 + dt.timedelta(minutes=11), attributes=a))
    assert dues(env) == ["sub_tick:2026-01-31T09:00:00Z"]


def test_due_at_and_shard_are_stored_for_the_index(env: Env) -> None:
    new_sub("sub_idx")
    doc = repository.subs().document("sub_idx").get().to_dict()
    assert doc["due_at"] == T0
    assert doc["shard"] == repository.shard_of("sub_idx")
    assert 0 <= doc["shard"] < repository.VIRTUAL_SHARDS
    run_all_shards(T0)
    doc = repository.subs().document("sub_idx").get().to_dict()
    assert doc["due_at"] == T0 + dt.timedelta(seconds=renewal_settings().republish_s)  # the republish deadline
    assert doc["billing"]["request_id"] == "sub_idx:2026-01-31T09:00:00Z"


def test_a_subscription_that_cannot_be_planned_does_not_stop_the_others(
    env: Env, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A poison subscription (here: pricing raises, as a usage total beyond what a line prices does) is logged
    and left due; every other one in its shard is billed, and it is billed once fixed, exactly once."""
    for i in range(6):
        new_sub(f"sub_p{i}")
    real = planner._priced

    def poisoned(doc: dict[str, object], state: object, p: object, now: dt.datetime) -> object:
        if doc.get("id") == "sub_p3":
            raise ValueError("usage beyond what a line prices")
        return real(doc, state, p, now)  # type: ignore[arg-type]

    monkeypatch.setattr(planner, "_priced", poisoned)
    with captured_lines() as lines:
        run_all_shards(T0)
    blocked = log_metrics()["billing_blocked"]
    (line,) = counted(blocked, lines)  # the alert's metric counts it, with the subscription named
    assert (blocked.labels_of(line), line["doc"], line["error_class"]) == ({"stage": "renewal"}, "sub_p3", "ValueError")
    assert dues(env) == sorted(f"sub_p{i}:2026-01-31T09:00:00Z" for i in range(6) if i != 3)
    assert repository.subs().document("sub_p3").get().to_dict()["due_at"] <= T0  # still due, nothing written
    monkeypatch.setattr(planner, "_priced", real)
    run_all_shards(T0 + dt.timedelta(minutes=1))
    assert dues(env) == ["sub_p3:2026-01-31T09:00:00Z"]
    run_all_shards(T0 + dt.timedelta(minutes=2))
    assert dues(env) == []
