"""The planner re-sends only a RenewalDue that may be lost, never one that is queued or still being published."""

from __future__ import annotations

import datetime as dt
import threading

import pytest

from shared.renewals import planner, repository
from shared.renewals.config import renewal_settings
from shared.renewals.deps import Deps
from tests.fixtures.renewals import DyingFirestore, Env, Interrupted, new_sub
from tests.helpers import T0
from tests.integration.renewals.test_planner import dues, run_all_shards

DUE = "sub_f:2026-01-31T09:00:00Z"


def window_end() -> dt.datetime:
    return T0 + dt.timedelta(seconds=renewal_settings().republish_s)


def test_an_acknowledged_renewal_due_is_not_re_sent_by_later_ticks_until_the_in_flight_window(env: Env) -> None:
    new_sub("sub_f")
    run_all_shards(T0)
    assert dues(env) == [DUE]
    # The invoices function has not confirmed anything yet (a backlog): ticks past the republish time
    # find the publish acknowledged and leave the message to Pub/Sub.
    run_all_shards(window_end())
    run_all_shards(window_end() + dt.timedelta(minutes=1))
    assert dues(env) == []
    doc = repository.subs().document("sub_f").get().to_dict()
    held = window_end() + dt.timedelta(seconds=renewal_settings().republish_s * planner.INFLIGHT_WINDOWS)
    assert doc["due_at"] == held
    assert "publish_batch" not in doc
    # Still unpaid after the in-flight window (e.g. dead-lettered downstream): re-sent once, same request id.
    run_all_shards(held)
    assert dues(env) == [DUE]
    run_all_shards(held)
    assert dues(env) == []


def test_an_overlapping_tick_does_not_re_send_while_the_first_publish_is_in_progress(env: Env) -> None:
    new_sub("sub_f")
    claimed, release = threading.Event(), threading.Event()

    def slow() -> None:
        claimed.set()
        assert release.wait(60)

    stalled = Deps(publisher=Interrupted(None, before=slow))
    first = threading.Thread(target=run_all_shards, args=(T0, stalled), name="first-tick")
    first.start()
    assert claimed.wait(60)
    run_all_shards(window_end() + dt.timedelta(minutes=5))  # the claim's republish time has passed
    release.set()
    first.join(60)
    assert dues(env) == [DUE]


def test_a_process_killed_between_claim_and_publish_is_re_sent_once_its_lease_runs_out(env: Env) -> None:
    new_sub("sub_f")

    class Killed(BaseException):
        pass

    db = DyingFirestore()  # the instance dies at the publish: nothing after it reaches Firestore
    dying = Deps(db=db, publisher=Interrupted(Killed(), before=db.kill))
    with pytest.raises(Killed):
        run_all_shards(T0, dying)
    record = repository.subs().document("sub_f").get().to_dict()["publish_batch"]
    assert repository.publishes().document(record).get().to_dict()["state"] == "publishing"
    # Past the republish time but within the lease: it could still be publishing.
    run_all_shards(window_end())
    assert dues(env) == []
    # The lease has run out: the process is gone and its message may never have been sent.
    lease_over = dt.datetime.now(dt.UTC) + dt.timedelta(seconds=planner.PUBLISH_LEASE_S + 1)
    run_all_shards(window_end(), Deps(clock=lambda: lease_over))
    assert dues(env) == [DUE]


def test_each_invocation_records_its_publish_once(env: Env) -> None:
    for i in range(7):  # several pages of 3 and several virtual shards in one invocation
        new_sub(f"sub_r{i}")
    cfg = renewal_settings()
    for shard in range(cfg.shards):
        planner.run_shard(shard, T0, cfg)
    records = [s.to_dict() for s in repository.publishes().stream()]
    batches = {repository.subs().document(f"sub_r{i}").get().to_dict()["publish_batch"] for i in range(7)}
    assert len(records) == len(batches) <= cfg.shards
    assert {r["state"] for r in records} == {"acked"}
