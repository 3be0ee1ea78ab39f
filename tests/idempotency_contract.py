"""Behaviour the claim primitive (and its decorator) must have; run on the real Firestore emulator."""

from __future__ import annotations

import datetime as dt
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

import pytest

from shared.idempotency import (
    IDEMPOTENCY,
    Claims,
    ContentionError,
    IdempotencyAlreadyInProgressError,
    IdempotencyConfig,
    IdempotencyKeyError,
    IdempotencyPayloadMismatchError,
    Outcome,
    RetryPolicy,
    Schema,
    hash_key,
    idempotent,
    update_if_unchanged,
)


@dataclass
class Clock:
    now: dt.datetime = field(default_factory=lambda: dt.datetime(2026, 11, 21, tzinfo=dt.UTC))

    def __call__(self) -> dt.datetime:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += dt.timedelta(seconds=seconds)


def _make(db: Any, clock: Clock, calls: list[str], body: Callable[[str], object] | None = None) -> Any:
    cfg = IdempotencyConfig(lease_s=60, ttl_s=3600, clock=clock)

    @idempotent(key=lambda k, payload=None: k, payload=lambda k, payload=None: payload, config=cfg, db=lambda: db)
    def handler(k: str, payload: object = None) -> dict[str, object]:
        calls.append(k)
        if body is not None:
            body(k)
        return {"handled": k, "n": len(calls)}

    return handler


def second_call_returns_stored_result(db: Any) -> None:
    calls: list[str] = []
    h = _make(db, Clock(), calls)
    first = h("a", {"x": 1})
    again = h("a", {"x": 1})
    assert calls == ["a"]
    assert again == first == {"handled": "a", "n": 1}


def different_payload_same_key_is_refused(db: Any) -> None:
    calls: list[str] = []
    h = _make(db, Clock(), calls)
    h("a", {"x": 1})
    with pytest.raises(IdempotencyPayloadMismatchError):
        h("a", {"x": 2})
    assert calls == ["a"]


def failure_releases_the_claim(db: Any) -> None:
    calls: list[str] = []
    fail = {"on": True}

    def body(_: str) -> None:
        if fail["on"]:
            raise RuntimeError("downstream down")

    h = _make(db, Clock(), calls, body)
    with pytest.raises(RuntimeError):
        h("a")
    fail["on"] = False
    assert h("a")["n"] == 2
    assert h("a")["n"] == 2
    assert calls == ["a", "a"]


def expired_lease_is_taken_over_and_expired_record_reruns(db: Any) -> None:
    clock = Clock()
    calls: list[str] = []
    cfg = IdempotencyConfig(lease_s=60, ttl_s=3600, clock=clock)
    # Simulate a crashed execution: claim without completing.
    crashed = Claims(IDEMPOTENCY, lease_s=60, ttl_s=3600)
    assert (
        crashed.claim(db.collection("idempotency").document(hash_key("crashed", "k")), clock()).outcome is Outcome.OWNED
    )

    @idempotent(key=lambda k: k, namespace="crashed", config=cfg, db=lambda: db)
    def h(k: str) -> int:
        calls.append(k)
        return len(calls)

    with pytest.raises(IdempotencyAlreadyInProgressError):
        h("k")
    clock.advance(61)  # lease over: the crashed run is presumed dead
    assert h("k") == 1
    assert h("k") == 1
    clock.advance(3600)  # record expired (TTL): a new execution is allowed
    assert h("k") == 2


def concurrent_deliveries_run_once(db: Any) -> None:
    calls: list[str] = []
    gate = threading.Event()

    def body(_: str) -> None:
        gate.wait(5)  # hold the lease while the others arrive

    h = _make(db, Clock(), calls, body)

    def deliver(_: int) -> str:
        try:
            h("same", {"p": 1})
            return "ok"
        except IdempotencyAlreadyInProgressError:
            return "in-progress"

    with ThreadPoolExecutor(8) as pool:
        futures = [pool.submit(deliver, i) for i in range(8)]
        threading.Timer(1.0, gate.set).start()
        outcomes = sorted(f.result() for f in futures)
    assert calls == ["same"]
    assert outcomes.count("ok") >= 1
    assert set(outcomes) <= {"ok", "in-progress"}
    assert h("same", {"p": 1})["n"] == 1  # the redelivery after the winner finished gets the stored result


def empty_key_is_an_error(db: Any) -> None:
    h = _make(db, Clock(), [])
    with pytest.raises(IdempotencyKeyError):
        h("")


# -- the primitive itself ---------------------------------------------------------------------------
ARCHIVE = Schema(
    state_attr="state", in_progress="received", completed="published", attempts_attr="attempts", release_deletes=False
)
T0 = dt.datetime(2026, 11, 21, tzinfo=dt.UTC)


def claim_creates_with_extra_fields_and_returns_the_version(db: Any) -> None:
    ref = db.collection("claims").document("c1")
    c = Claims(ARCHIVE, lease_s=30).claim(ref, T0, fields={"raw": "{}", "psp": "stripe"})
    snap = ref.get()
    assert (c.outcome, c.version, c.writes, c.reads) == (Outcome.OWNED, snap.update_time, 1, 0)
    assert snap.to_dict() == {
        "raw": "{}",
        "psp": "stripe",
        "state": "received",
        "attempts": 1,
        "lease_until": T0 + dt.timedelta(seconds=30),
    }


def concurrent_claims_have_one_owner_the_rest_busy(db: Any) -> None:
    ref = db.collection("claims").document("c2")
    claims = Claims(ARCHIVE, lease_s=30)
    barrier = threading.Barrier(8)

    def go(_: int) -> Outcome:
        barrier.wait()
        return claims.claim(ref, T0).outcome

    with ThreadPoolExecutor(8) as pool:
        outcomes = list(pool.map(go, range(8)))
    assert outcomes.count(Outcome.OWNED) == 1
    assert outcomes.count(Outcome.BUSY) == 7


def completed_claim_is_done_with_its_stored_result_forever(db: Any) -> None:
    ref = db.collection("claims").document("c3")
    claims = Claims(ARCHIVE, lease_s=30)
    c = claims.claim(ref, T0)
    assert claims.complete(c, state="ignored", result={"message_id": "m1"}, fields={"note": "x"})
    assert ref.get().to_dict()["state"] == "ignored"
    for later in (T0, T0 + dt.timedelta(days=400)):  # no TTL: done however late
        again = claims.claim(ref, later)
        assert (again.outcome, again.result, again.reads, again.writes) == (Outcome.DONE, {"message_id": "m1"}, 1, 0)
        assert (again.record or {})["note"] == "x"


def expired_lease_has_exactly_one_taker_and_the_old_owner_cannot_complete(db: Any) -> None:
    ref = db.collection("claims").document("c4")
    claims = Claims(ARCHIVE, lease_s=30)
    crashed = claims.claim(ref, T0)
    assert claims.claim(ref, T0 + dt.timedelta(seconds=29)).outcome is Outcome.BUSY  # lease still held
    later = T0 + dt.timedelta(seconds=31)
    barrier = threading.Barrier(6)

    def take(_: int) -> Any:
        barrier.wait()
        return claims.claim(ref, later)

    with ThreadPoolExecutor(6) as pool:
        got = list(pool.map(take, range(6)))
    [winner] = [c for c in got if c.outcome is Outcome.OWNED]
    assert winner.taken_over
    assert all(c.outcome is Outcome.BUSY for c in got if c is not winner)
    assert ref.get().to_dict()["attempts"] == 2  # one takeover written, whatever the contention
    assert not claims.complete(crashed, result="late")  # the precondition protects the new owner
    assert claims.complete(winner, result="ok")
    assert ref.get().to_dict()["result"] == "ok"


def release_ends_the_lease_or_deletes_the_record(db: Any) -> None:
    kept = db.collection("claims").document("c5")
    archive = Claims(ARCHIVE, lease_s=30)
    archive.release(archive.claim(kept, T0, fields={"raw": "{}"}))
    assert kept.get().to_dict()["lease_until"] is None  # the archive stays, without a lease
    retry = archive.claim(kept, T0 + dt.timedelta(seconds=1))
    assert (retry.outcome, retry.taken_over) == (Outcome.OWNED, True)
    gone = db.collection("claims").document("c6")
    deleting = Claims(Schema(state_attr="claim"), lease_s=30)
    deleting.release(deleting.claim(gone, T0))
    assert not gone.get().exists
    stale = deleting.claim(gone, T0)
    gone.update({"touched": True})  # somebody else's write: our release must not delete their record
    deleting.release(stale)
    assert gone.get().exists


def completion_inside_a_batch_is_atomic_with_the_callers_write(db: Any) -> None:
    from google.api_core.exceptions import FailedPrecondition

    ref, other = db.collection("claims").document("c7"), db.collection("subs").document("s7")
    claims = Claims(Schema(state_attr="claim"), lease_s=30)
    c = claims.claim(ref, T0)
    ref.update({"lease_until": T0})  # our lease was taken over meanwhile (a new version)
    batch = db.batch()
    batch.set(other, {"applied": True})
    claims.complete(c, result={"status": "succeeded"}, writer=batch)
    with pytest.raises(FailedPrecondition):
        batch.commit()
    assert not other.get().exists  # neither write happened
    c = claims.claim(ref, T0 + dt.timedelta(seconds=1))
    batch = db.batch()
    batch.set(other, {"applied": True})
    claims.complete(c, result={"status": "succeeded"}, writer=batch)
    batch.commit()
    assert (ref.get().to_dict()["claim"], other.get().to_dict()) == ("COMPLETED", {"applied": True})


def cas_update_retries_on_contention_then_gives_up_clearly(db: Any) -> None:
    ref = db.collection("claims").document("c8")
    ref.set({"n": 0})
    rivals = {"left": 2}

    def bump(d: dict[str, Any] | None) -> dict[str, Any]:
        if rivals["left"]:  # a concurrent writer slips in between our read and our write
            rivals["left"] -= 1
            ref.update({"rival": rivals["left"]})
        return {"n": int((d or {})["n"]) + 1}

    update_if_unchanged(ref, bump, policy=RetryPolicy(tries=3))
    assert ref.get().to_dict()["n"] == 1
    rivals["left"] = 3
    with pytest.raises(ContentionError, match=r"claims/c8 kept changing \(3 tries\)"):
        update_if_unchanged(ref, bump, policy=RetryPolicy(tries=3))
    assert ref.get().to_dict()["n"] == 1  # nothing written by the losing tries


SCENARIOS = [
    second_call_returns_stored_result,
    different_payload_same_key_is_refused,
    failure_releases_the_claim,
    expired_lease_is_taken_over_and_expired_record_reruns,
    concurrent_deliveries_run_once,
    empty_key_is_an_error,
    claim_creates_with_extra_fields_and_returns_the_version,
    concurrent_claims_have_one_owner_the_rest_busy,
    completed_claim_is_done_with_its_stored_result_forever,
    expired_lease_has_exactly_one_taker_and_the_old_owner_cannot_complete,
    release_ends_the_lease_or_deletes_the_record,
    completion_inside_a_batch_is_atomic_with_the_callers_write,
    cas_update_retries_on_contention_then_gives_up_clearly,
]
