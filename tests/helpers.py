"""Test helpers shared by every folder: the test clock, polling across asynchronous hops, Pub/Sub pulls.

One pull helper for every shape tests need (raw received messages, decoded bodies, with or without
acknowledging), so a fix to how tests read Pub/Sub (e.g. the emulator's empty answers) is made once.
"""

from __future__ import annotations

import datetime as dt
import json
import threading
import time
import uuid
import warnings
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, TypeVar

if TYPE_CHECKING:
    from google.pubsub_v1.types import PubsubMessage, ReceivedMessage

T = TypeVar("T")

# The tests' clock: a month end in winter time, so the first renewal clamps (Jan 31 -> Feb 28).
T0 = dt.datetime(2026, 1, 31, 9, 0, tzinfo=dt.UTC)


def wait_for(probe: Callable[[], T | None], timeout_s: float = 60.0, interval_s: float = 0.1) -> T:
    """Poll until ``probe`` returns something truthy; fail with the last value after ``timeout_s``.

    The default is generous on purpose: a condition met returns at once, and only a broken run waits it out,
    whereas a tight one fails correct runs on a loaded 2-core CI machine (several asynchronous hops, push
    redeliveries with backoff)."""
    deadline = time.monotonic() + timeout_s
    last: T | None = None
    while time.monotonic() < deadline:
        last = probe()
        if last:
            return last
        time.sleep(interval_s)
    raise AssertionError(f"condition not met within {timeout_s}s (last value: {last!r})")


def settle(probe: Callable[[], T], quiet_s: float = 1.5, timeout_s: float = 60.0) -> T:
    """Wait until ``probe`` returns the same value for ``quiet_s`` (no late duplicate changed it).

    Only for what may still come AFTER the expected value: wait for that value first (:func:`wait_for`), or a
    slow first arrival is taken for a quiet end."""
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


def race(call: Callable[[], T], threads: int) -> list[T]:
    """What ``call`` returned in each of ``threads`` threads released together (a cold instance's first burst)."""
    start = threading.Barrier(threads)
    got: list[T] = []
    lock = threading.Lock()

    def run() -> None:
        start.wait()
        value = call()
        with lock:
            got.append(value)

    workers = [threading.Thread(target=run) for _ in range(threads)]
    for w in workers:
        w.start()
    for w in workers:
        w.join(timeout=120)
    assert not any(w.is_alive() for w in workers), "a racing call did not return within 120 s"
    return got


def pull_subscription(project: str, topic: str, prefix: str = "test", name: str | None = None) -> str:
    """A fresh pull subscription on ``topic`` (named ``name``, else unique): a test's own window onto it."""
    from google.cloud.pubsub_v1 import SubscriberClient

    client = SubscriberClient()
    path: str = client.subscription_path(project, name or f"{prefix}-{topic}-{uuid.uuid4().hex[:6]}")
    client.create_subscription(name=path, topic=f"projects/{project}/topics/{topic}")
    return path


def pull(
    path: str, max_messages: int = 200, *, ack: bool = True, wait: bool = True, timeout_s: float = 3.0
) -> list[ReceivedMessage]:
    """One pull from subscription ``path``; acknowledged unless ``ack=False`` (the caller nacks or leaves them).

    ``wait=True`` blocks until something arrives or ``timeout_s`` passes (nothing: ``[]``); ``wait=False``
    answers at once with what is there now (``return_immediately``: deprecated for workers, right for tests).
    """
    from google.api_core.exceptions import DeadlineExceeded
    from google.cloud.pubsub_v1 import SubscriberClient

    client = SubscriberClient()
    request: dict[str, Any] = {"subscription": path, "max_messages": max_messages}
    if not wait:
        request["return_immediately"] = True
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)
            resp = client.pull(request=request, timeout=timeout_s if wait else 10)
    except DeadlineExceeded:
        return []
    received = list(resp.received_messages)
    if ack and received:
        client.acknowledge(request={"subscription": path, "ack_ids": [m.ack_id for m in received]})
    return received


def drain_messages(path: str, *, wait: bool = True) -> list[PubsubMessage]:
    """Pull and acknowledge until nothing is left: every message waiting on ``path``."""
    out: list[PubsubMessage] = []
    while batch := pull(path, wait=wait):
        out += [m.message for m in batch]
    return out


def drain(path: str, *, wait: bool = True) -> list[tuple[dict[str, str], dict[str, Any]]]:
    """Pull and acknowledge everything waiting: (attributes, decoded JSON body, ``{}`` if empty) per message."""
    return [(dict(m.attributes), json.loads(m.data or b"{}")) for m in drain_messages(path, wait=wait)]
