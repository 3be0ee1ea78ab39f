"""Idempotency on Firestore, modelled on AWS Powertools' idempotency utility.

Why: Pub/Sub push and PSP webhooks deliver at least once, out of order and sometimes concurrently.
Wrapping a handler with :func:`idempotent` makes its side effects happen once per key:

* the first delivery atomically claims the key (``IN_PROGRESS`` with a lease) and runs the handler;
* a concurrent delivery sees the lease and gets :class:`IdempotencyAlreadyInProgressError` (a Pub/Sub
  consumer lets it propagate, so the message is redelivered later);
* a later delivery gets the stored result back without running the handler again;
* a delivery whose payload hash differs from the first is refused (:class:`IdempotencyPayloadMismatchError`);
* a failed handler releases its claim so the retry runs; a crashed one is taken over when its lease ends;
* records expire after ``ttl_s`` (Firestore TTL on ``expire_at`` deletes them).

Example::

    @idempotent(key=lambda msg: msg.envelope.idempotency_key, payload=lambda msg: msg.event)
    def handle(msg: Received[InvoiceFinalized]) -> dict[str, str]:
        ...
"""

from __future__ import annotations

import datetime as dt
import functools
import hashlib
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, ParamSpec, TypeVar

from shared.idempotency.exceptions import (
    IdempotencyAlreadyInProgressError,
    IdempotencyError,
    IdempotencyKeyError,
    IdempotencyPayloadMismatchError,
)
from shared.idempotency.persistence import (
    AlreadyCompleted,
    FirestorePersistenceLayer,
    InMemoryPersistenceLayer,
    PersistenceLayer,
    hash_key,
)

__all__ = [
    "FirestorePersistenceLayer",
    "IdempotencyAlreadyInProgressError",
    "IdempotencyConfig",
    "IdempotencyError",
    "IdempotencyKeyError",
    "IdempotencyPayloadMismatchError",
    "InMemoryPersistenceLayer",
    "PersistenceLayer",
    "idempotent",
    "payload_hash",
]

P = ParamSpec("P")
R = TypeVar("R")


def _utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


@dataclass(frozen=True, slots=True)
class IdempotencyConfig:
    """Lease must outlast the handler's timeout; TTL must outlast the sender's retry window."""

    lease_s: int = 120
    ttl_s: int = 7 * 24 * 3600
    validate_payload: bool = True
    clock: Callable[[], dt.datetime] = field(default=_utcnow)


def payload_hash(payload: Any) -> str:
    """Stable hash of a JSON-able payload or a pydantic model."""
    if hasattr(payload, "model_dump"):
        payload = payload.model_dump(mode="json")
    raw = json.dumps(payload, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(raw.encode()).hexdigest()


def idempotent(
    *,
    key: Callable[..., str],
    payload: Callable[..., Any] | None = None,
    namespace: str | None = None,
    persistence: PersistenceLayer | None = None,
    config: IdempotencyConfig | None = None,
) -> Callable[[Callable[P, R]], Callable[P, R]]:
    """Run the decorated function once per key; later calls return the stored (JSON-able) result.

    ``key`` and ``payload`` receive the same arguments as the function. ``namespace`` defaults to the
    function's qualified name, so two handlers may share an event's key without colliding.
    """
    cfg = config or IdempotencyConfig()

    def decorate(fn: Callable[P, R]) -> Callable[P, R]:
        ns = namespace or f"{fn.__module__}.{fn.__qualname__}"

        @functools.wraps(fn)
        def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
            layer = persistence or _default_layer()
            raw_key = key(*args, **kwargs)
            if not raw_key:
                raise IdempotencyKeyError(f"empty idempotency key for {ns}")
            phash = payload_hash(payload(*args, **kwargs)) if (payload and cfg.validate_payload) else ""
            try:
                claimed = layer.claim(hash_key(ns, raw_key), phash, cfg.clock(), cfg.lease_s, cfg.ttl_s)
            except AlreadyCompleted as done:
                result: R = done.record.result
                return result
            try:
                out = fn(*args, **kwargs)
            except BaseException:
                layer.release(claimed)
                raise
            if not layer.complete(claimed, out):
                from shared.log import get_logger

                get_logger(__name__).warning(
                    "idempotency lease expired before completion; another execution owns the key",
                    extra={"idempotency_namespace": ns},
                )
            return out

        return wrapper

    return decorate


@functools.cache
def _default_layer() -> PersistenceLayer:
    return FirestorePersistenceLayer()
