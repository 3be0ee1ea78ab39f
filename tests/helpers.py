"""Small polling helpers for tests that cross an asynchronous hop (Pub/Sub push)."""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Callable
from typing import Any, TypeVar

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


def pull_subscription(project: str, topic: str, prefix: str = "test") -> str:
    """A fresh pull subscription on ``topic``: a test's own window onto what was published."""
    from google.cloud.pubsub_v1 import SubscriberClient

    client = SubscriberClient()
    path: str = client.subscription_path(project, f"{prefix}-{topic}-{uuid.uuid4().hex[:6]}")
    client.create_subscription(name=path, topic=f"projects/{project}/topics/{topic}")
    return path


def drain(path: str) -> list[tuple[dict[str, str], dict[str, Any]]]:
    """Pull and acknowledge everything waiting: (attributes, decoded JSON body) per message."""
    from google.cloud.pubsub_v1 import SubscriberClient

    client = SubscriberClient()
    out: list[tuple[dict[str, str], dict[str, Any]]] = []
    while True:
        resp = client.pull(subscription=path, max_messages=200, timeout=3)
        if not resp.received_messages:
            return out
        out += [(dict(m.message.attributes), json.loads(m.message.data)) for m in resp.received_messages]
        client.acknowledge(subscription=path, ack_ids=[m.ack_id for m in resp.received_messages])
