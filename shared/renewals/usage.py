"""Per-invocation counts of Firestore reads/writes and Pub/Sub messages, logged with each delivery.

Why: the cost of a renewal is dominated by these operations, and counting them where they happen is
exact, unlike sampling the emulators. The benchmark sums the ``usage`` fields of the log lines.
"""

from __future__ import annotations

import contextlib
import contextvars
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field


@dataclass
class Usage:
    reads: int = 0
    writes: int = 0
    published: int = 0
    published_bytes: int = 0
    topics: dict[str, int] = field(default_factory=dict)  # messages per logical topic
    lock: threading.Lock = field(default_factory=threading.Lock, repr=False, compare=False)

    def as_dict(self) -> dict[str, object]:
        with self.lock:
            return {
                "reads": self.reads,
                "writes": self.writes,
                "published": self.published,
                "published_bytes": self.published_bytes,
                "topics": dict(self.topics),
            }


_current: contextvars.ContextVar[Usage | None] = contextvars.ContextVar("renewals_usage", default=None)


@contextlib.contextmanager
def track() -> Iterator[Usage]:
    u = Usage()
    tok = _current.set(u)
    try:
        yield u
    finally:
        _current.reset(tok)


def read(n: int = 1) -> None:
    if (u := _current.get()) is not None:
        with u.lock:
            u.reads += n


def write(n: int = 1) -> None:
    if (u := _current.get()) is not None:
        with u.lock:
            u.writes += n


def published(size: int, topic: str) -> None:
    if (u := _current.get()) is not None:
        with u.lock:
            u.published += 1
            u.published_bytes += size
            u.topics[topic] = u.topics.get(topic, 0) + 1
