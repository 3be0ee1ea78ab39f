"""Claims on Firestore, modelled on AWS Powertools' idempotency utility: the one place where "do this once"
is implemented.

* :mod:`shared.idempotency.claims`: the leased claim (:class:`Claims`): atomic create in progress, DONE
  with the stored result, BUSY under a live lease, takeover of an expired lease with an ``update_time``
  precondition, completion (state + result + extra fields in one write, or inside the caller's batch or
  transaction), release. Webhook records, charge attempts, the numbering lease and :func:`idempotent`
  are all claims of their own :class:`Schema`.
* :mod:`shared.idempotency.cas`: one compare-and-set helper (:func:`update_if_unchanged`,
  :func:`retry_on_contention`) with one retry policy, for every optimistic read-modify-write.
* :func:`idempotent`: the decorator form for a whole handler whose JSON-able return value is the
  result (the smoke probe's sink); a concurrent duplicate raises
  :class:`IdempotencyAlreadyInProgressError` (Pub/Sub redelivers), a later one gets the stored result,
  a different payload under the same key raises :class:`IdempotencyPayloadMismatchError`, a failure
  releases the claim. Records expire after ``ttl_s`` (Firestore TTL on ``expire_at``).

Example::

    @idempotent(key=lambda msg: msg.envelope.idempotency_key, payload=lambda msg: msg.event)
    def handle(msg: Received[ProbeRequested]) -> dict[str, str]:
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

from shared.idempotency.cas import (
    CAS_POLICY,
    RetryPolicy,
    Stale,
    precondition,
    retry_on_contention,
    update_if_unchanged,
)
from shared.idempotency.claims import Claim, Claims, Decision, Outcome, Schema, decide
from shared.idempotency.exceptions import (
    ContentionError,
    IdempotencyAlreadyInProgressError,
    IdempotencyError,
    IdempotencyKeyError,
    IdempotencyPayloadMismatchError,
)

__all__ = [
    "CAS_POLICY",
    "COLLECTION",
    "IDEMPOTENCY",
    "Claim",
    "Claims",
    "ContentionError",
    "Decision",
    "IdempotencyAlreadyInProgressError",
    "IdempotencyConfig",
    "IdempotencyError",
    "IdempotencyKeyError",
    "IdempotencyPayloadMismatchError",
    "Outcome",
    "RetryPolicy",
    "Schema",
    "Stale",
    "decide",
    "hash_key",
    "idempotent",
    "payload_hash",
    "precondition",
    "retry_on_contention",
    "update_if_unchanged",
]

P = ParamSpec("P")
R = TypeVar("R")

COLLECTION = "idempotency"
# Powertools' record: status, payload hash, in-progress lease, stored result, expiry (the TTL field).
IDEMPOTENCY = Schema(expiry_attr="expire_at", hash_attr="payload_hash")


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


def hash_key(namespace: str, key: str) -> str:
    """Document id for a key: fixed length and free of Firestore's forbidden characters."""
    return hashlib.sha256(f"{namespace}\x1f{key}".encode()).hexdigest()


def idempotent(
    *,
    key: Callable[..., str],
    payload: Callable[..., Any] | None = None,
    namespace: str | None = None,
    config: IdempotencyConfig | None = None,
    collection: str = COLLECTION,
    db: Callable[[], Any] | None = None,
) -> Callable[[Callable[P, R]], Callable[P, R]]:
    """Run the decorated function once per key; later calls return the stored (JSON-able) result.

    ``key`` and ``payload`` receive the same arguments as the function. ``namespace`` defaults to the
    function's qualified name, so two handlers may share an event's key without colliding. ``db``
    returns the Firestore client (default: the process's shared one).
    """
    cfg = config or IdempotencyConfig()
    claims = Claims(IDEMPOTENCY, lease_s=cfg.lease_s, ttl_s=cfg.ttl_s)

    def decorate(fn: Callable[P, R]) -> Callable[P, R]:
        ns = namespace or f"{fn.__module__}.{fn.__qualname__}"

        @functools.wraps(fn)
        def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
            raw_key = key(*args, **kwargs)
            if not raw_key:
                raise IdempotencyKeyError(f"empty idempotency key for {ns}")
            phash = payload_hash(payload(*args, **kwargs)) if (payload and cfg.validate_payload) else ""
            client = db() if db is not None else _firestore()
            ref = client.collection(collection).document(hash_key(ns, raw_key))
            claimed = claims.claim(ref, cfg.clock(), payload_hash=phash)
            if claimed.outcome is Outcome.DONE:
                stored: R = claimed.result
                return stored
            if claimed.outcome is Outcome.BUSY:
                raise IdempotencyAlreadyInProgressError(f"{ns} key {raw_key!r} is in progress")
            try:
                out = fn(*args, **kwargs)
            except BaseException:
                claims.release(claimed)
                raise
            claims.complete(claimed, result=out)
            return out

        return wrapper

    return decorate


def _firestore() -> Any:
    from shared import clients

    return clients.firestore()
