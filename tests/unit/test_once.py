"""``shared.once``: an instance-scoped value is built once, even when concurrent first calls race."""

from __future__ import annotations

import functools
import threading
from collections.abc import Callable

import pytest

from shared.once import once
from tests.helpers import race

THREADS = 12


class _Race:
    """Callers that count themselves in, and a builder that lasts until all of them have called.

    Why not a fixed sleep in the builder: under load the threads released together may not all call within
    it, and then ``functools.cache`` builds once (the demonstration fails) while ``once`` is never raced."""

    def __init__(self) -> None:
        self.calls: list[int] = []
        self._arrived = 0
        self._cv = threading.Condition()

    def build(self) -> object:
        self.calls.append(1)
        with self._cv:  # generous: only a broken race waits this long, and then the checks below fail
            assert self._cv.wait_for(lambda: self._arrived >= THREADS, timeout=60)
        return object()

    def caller(self, cached: Callable[[], object]) -> Callable[[], object]:
        def call() -> object:
            with self._cv:
                self._arrived += 1
                self._cv.notify_all()
            return cached()

        return call


def test_concurrent_first_calls_share_one_value() -> None:
    r = _Race()
    got = race(r.caller(once(r.build)), THREADS)
    assert len(got) == THREADS
    assert len(r.calls) == 1
    assert all(v is got[0] for v in got)


def test_functools_cache_builds_several_in_the_same_race() -> None:
    """Why the module exists: the same race through ``functools.cache`` builds more than one value."""
    r = _Race()
    got = race(r.caller(functools.cache(r.build)), THREADS)
    assert len(r.calls) > 1
    assert len({id(v) for v in got}) > 1


def test_one_value_per_arguments_and_cache_clear_forgets_them() -> None:
    calls: list[tuple[str, int]] = []

    @once
    def client(project: str, metered: bool = False) -> tuple[str, bool, int]:
        calls.append((project, len(calls)))
        return (project, metered, len(calls))

    a = client("p1")
    assert client("p1") is a
    assert client("p2") is not a
    assert client("p1", metered=True) is not a
    assert len(calls) == 3
    client.cache_clear()
    assert client("p1") is not a


def test_a_failed_build_is_not_kept() -> None:
    attempts: list[int] = []

    @once
    def flaky() -> str:
        attempts.append(1)
        if len(attempts) == 1:
            raise ConnectionError("dependency down")
        return "built"

    with pytest.raises(ConnectionError):
        flaky()
    assert flaky() == "built"
    assert flaky() == "built"
    assert len(attempts) == 2
