"""Behaviour every idempotency persistence layer must have; run against each backend."""

from __future__ import annotations

import datetime as dt
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

import pytest

from shared.idempotency import (
    IdempotencyAlreadyInProgressError,
    IdempotencyConfig,
    IdempotencyKeyError,
    IdempotencyPayloadMismatchError,
    PersistenceLayer,
    idempotent,
)


@dataclass
class Clock:
    now: dt.datetime = field(default_factory=lambda: dt.datetime(2026, 11, 21, tzinfo=dt.UTC))

    def __call__(self) -> dt.datetime:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += dt.timedelta(seconds=seconds)


def _make(layer: PersistenceLayer, clock: Clock, calls: list[str], body: Callable[[str], object] | None = None):
    cfg = IdempotencyConfig(lease_s=60, ttl_s=3600, clock=clock)

    @idempotent(key=lambda k, payload=None: k, payload=lambda k, payload=None: payload, persistence=layer, config=cfg)
    def handler(k: str, payload: object = None) -> dict[str, object]:
        calls.append(k)
        if body is not None:
            body(k)
        return {"handled": k, "n": len(calls)}

    return handler


def second_call_returns_stored_result(layer: PersistenceLayer) -> None:
    calls: list[str] = []
    h = _make(layer, Clock(), calls)
    first = h("a", {"x": 1})
    again = h("a", {"x": 1})
    assert calls == ["a"]
    assert again == first == {"handled": "a", "n": 1}


def different_payload_same_key_is_refused(layer: PersistenceLayer) -> None:
    calls: list[str] = []
    h = _make(layer, Clock(), calls)
    h("a", {"x": 1})
    with pytest.raises(IdempotencyPayloadMismatchError):
        h("a", {"x": 2})
    assert calls == ["a"]


def failure_releases_the_claim(layer: PersistenceLayer) -> None:
    calls: list[str] = []
    fail = {"on": True}

    def body(_: str) -> None:
        if fail["on"]:
            raise RuntimeError("downstream down")

    h = _make(layer, Clock(), calls, body)
    with pytest.raises(RuntimeError):
        h("a")
    fail["on"] = False
    assert h("a")["n"] == 2
    assert h("a")["n"] == 2
    assert calls == ["a", "a"]


def expired_lease_is_taken_over_and_expired_record_reruns(layer: PersistenceLayer) -> None:
    clock = Clock()
    calls: list[str] = []
    cfg = IdempotencyConfig(lease_s=60, ttl_s=3600, clock=clock)
    # Simulate a crashed execution: claim without completing.
    from shared.idempotency.persistence import hash_key

    layer.claim(hash_key("crashed", "k"), "", clock(), 60, 3600)

    @idempotent(key=lambda k: k, namespace="crashed", persistence=layer, config=cfg)
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


def concurrent_deliveries_run_once(layer: PersistenceLayer) -> None:
    calls: list[str] = []
    gate = threading.Event()

    def body(_: str) -> None:
        gate.wait(5)  # hold the lease while the others arrive

    h = _make(layer, Clock(), calls, body)

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


def empty_key_is_an_error(layer: PersistenceLayer) -> None:
    h = _make(layer, Clock(), [])
    with pytest.raises(IdempotencyKeyError):
        h("")


SCENARIOS = [
    second_call_returns_stored_result,
    different_payload_same_key_is_refused,
    failure_releases_the_claim,
    expired_lease_is_taken_over_and_expired_record_reruns,
    concurrent_deliveries_run_once,
    empty_key_is_an_error,
]
