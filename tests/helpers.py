"""Small polling helpers for tests that cross an asynchronous hop (Pub/Sub push)."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")


def wait_for(probe: Callable[[], T | None], timeout_s: float = 20.0, interval_s: float = 0.1) -> T:
    """Poll until ``probe`` returns something truthy; fail with the last value after ``timeout_s``."""
    deadline = time.monotonic() + timeout_s
    last: T | None = None
    while time.monotonic() < deadline:
        last = probe()
        if last:
            return last
        time.sleep(interval_s)
    raise AssertionError(f"condition not met within {timeout_s}s (last value: {last!r})")


def settle(probe: Callable[[], T], quiet_s: float = 1.5, timeout_s: float = 20.0) -> T:
    """Wait until ``probe`` returns the same value for ``quiet_s`` (no late duplicate changed it)."""
    deadline = time.monotonic() + timeout_s
    value = probe()
    stable_since = time.monotonic()
    while time.monotonic() < deadline:
        time.sleep(0.1)
        now = probe()
        if now != value:
            value, stable_since = now, time.monotonic()
        elif time.monotonic() - stable_since >= quiet_s:
            return value
    raise AssertionError(f"value kept changing for {timeout_s}s (last: {value!r})")
