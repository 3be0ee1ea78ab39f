"""``shared.once``: an instance-scoped value is built once, even when concurrent first calls race."""

from __future__ import annotations

import functools
import threading
from collections.abc import Callable

import pytest

from shared.once import once
from tests.helpers import race

THREADS = 12


def _slow_builder(calls: list[int]) -> Callable[[], object]:
    def build() -> object:
        calls.append(1)
        threading.Event().wait(0.05)  # a build long enough for every thread to miss the cache
        return object()

    return build


def test_concurrent_first_calls_share_one_value() -> None:
    calls: list[int] = []
    built = once(_slow_builder(calls))
    got = race(built, THREADS)
    assert len(got) == THREADS
    assert len(calls) == 1
    assert all(v is got[0] for v in got)


def test_functools_cache_builds_several_in_the_same_race() -> None:
    """Why the module exists: the same race through ``functools.cache`` builds more than one value."""
    calls: list[int] = []
    built = functools.cache(_slow_builder(calls))
    got = race(built, THREADS)
    assert len(calls) > 1
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
