"""Deprecated: usage is counted at the clients now (:mod:`shared.usage`).

Kept only so code that still calls these helpers keeps working while it is cleaned up: :func:`track`
is :func:`shared.usage.track`, and the hand-placed counters are no-ops (the ports already count the
operation they annotated, so counting here too would double it).
"""

from __future__ import annotations

from shared.usage import Usage, track

__all__ = ["Usage", "published", "read", "track", "write"]


def read(n: int = 1) -> None:
    """No-op: Firestore reads are counted by the client's interceptor."""


def write(n: int = 1) -> None:
    """No-op: Firestore writes are counted by the client's interceptor."""


def published(size: int, topic: str) -> None:
    """No-op: publishes are counted by the metered Publisher client."""
