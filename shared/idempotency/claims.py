"""The leased claim: one Firestore document per unit of work that must happen once.

Shaped like AWS Powertools' idempotency persistence layer: a record is created atomically
(``create()``) in progress with a lease, later deliveries read it and are told DONE (completed: its
stored result is on the record), BUSY (another execution holds the lease) or become the owner by
taking an expired lease over with a precondition on the ``update_time`` they read (of two takers one
wins). The owner completes the record (final state + result + any extra fields in ONE write, optionally
inside the caller's batch or transaction) or releases it after a failure so a retry can run.

Why one primitive with a :class:`Schema`: webhooks, charge attempts, handler results and the numbering
lease keep different documents (an archive, an attempt spec, a counter), so field names and state
values are configurable, as Powertools' attribute names are; the rules are written once, here.

Cost on the hot path: a first delivery is one ``create()`` (its ``update_time`` is the version for
later preconditions), completion one ``update()``. A document expected to exist (a reusable lease) is
read first instead (``read_first``), so acquiring it costs a read and a write, not a failed create too.
"""

from __future__ import annotations

import datetime as dt
import enum
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from shared.idempotency.cas import CAS_POLICY, RetryPolicy, Stale, precondition, retry_on_contention
from shared.idempotency.exceptions import ContentionError, IdempotencyPayloadMismatchError
from shared.log import get_logger

log = get_logger(__name__)

_MISSING: Any = object()


class Outcome(enum.Enum):
    OWNED = "owned"  # created or taken over: do the work, then complete (or release)
    DONE = "done"  # completed before: ``record`` holds the stored result
    BUSY = "busy"  # another execution holds an unexpired lease (or just took it over): come back later


class Decision(enum.Enum):
    DONE = "done"
    BUSY = "busy"
    TAKE_OVER = "take_over"  # the lease ran out (a crashed owner) or the record expired
    MISMATCH = "mismatch"  # same key, different payload


@dataclass(frozen=True, slots=True)
class Schema:
    """Where a kind of claim keeps its state (Powertools: the persistence layer's attribute names).

    ``state_attr`` None: a reusable lease (a mutex) that is never completed. ``expiry_attr`` set: the
    record expires (Firestore TTL deletes it; until then an expired record counts as absent).
    ``hash_attr`` set: a payload hash is stored and a different payload under the same key refused.
    ``attempts_attr`` set: counts creations and takeovers. ``release_deletes``: a failed execution's
    record is deleted (a retry starts afresh) instead of only losing its lease (the record is an
    archive that must stay).
    """

    state_attr: str | None = "status"
    in_progress: str = "IN_PROGRESS"
    completed: str = "COMPLETED"
    lease_attr: str = "lease_until"
    result_attr: str = "result"
    expiry_attr: str | None = None
    hash_attr: str | None = None
    attempts_attr: str | None = None
    release_deletes: bool = True


def decide(schema: Schema, doc: Mapping[str, Any], now: dt.datetime, payload_hash: str = "") -> Decision:
    """What a delivery may do with an existing record (pure: the whole rule set of the claim)."""
    expire_at = doc.get(schema.expiry_attr) if schema.expiry_attr else None
    if isinstance(expire_at, dt.datetime) and expire_at <= now:
        return Decision.TAKE_OVER
    stored_hash = doc.get(schema.hash_attr) if schema.hash_attr else None
    if payload_hash and stored_hash and stored_hash != payload_hash:
        return Decision.MISMATCH
    if schema.state_attr and doc.get(schema.state_attr, schema.in_progress) != schema.in_progress:
        return Decision.DONE
    lease = doc.get(schema.lease_attr)
    if isinstance(lease, dt.datetime) and lease > now:
        return Decision.BUSY
    return Decision.TAKE_OVER


@dataclass(frozen=True, slots=True)
class Claim:
    """The answer of :meth:`Claims.claim`.

    ``version``: the record's ``update_time`` after our write (OWNED; the precondition of completion and
    release) or as read (DONE/BUSY). ``record``: the stored document when DONE, or the one we took over.
    ``reads``/``writes``: Firestore reads and successful writes the claim cost (usage accounting).
    """

    outcome: Outcome
    ref: Any
    version: Any = None
    record: dict[str, Any] | None = None
    taken_over: bool = False
    reads: int = 0
    writes: int = 0
    schema: Schema = field(default_factory=Schema, repr=False)

    @property
    def result(self) -> Any:
        """The stored result of a completed record (None when there is none)."""
        return (self.record or {}).get(self.schema.result_attr)


@dataclass(frozen=True, slots=True)
class Claims:
    """Claims of one :class:`Schema` with one lease length (and TTL, RPC timeout, retry policy)."""

    schema: Schema = field(default_factory=Schema)
    lease_s: float = 120.0
    ttl_s: float | None = None
    timeout_s: float | None = None
    policy: RetryPolicy = CAS_POLICY

    def _kw(self) -> dict[str, Any]:
        return {} if self.timeout_s is None else {"timeout": self.timeout_s}

    def lease_fields(self, now: dt.datetime) -> dict[str, Any]:
        """The fields that put a record in progress under a fresh lease."""
        s = self.schema
        out: dict[str, Any] = {s.lease_attr: now + dt.timedelta(seconds=self.lease_s)}
        if s.state_attr:
            out[s.state_attr] = s.in_progress
        if s.expiry_attr and self.ttl_s is not None:
            out[s.expiry_attr] = now + dt.timedelta(seconds=self.ttl_s)
        return out

    def release_fields(self) -> dict[str, Any]:
        """The fields that end a lease (written by :meth:`release`, or by a caller's own batch)."""
        return {self.schema.lease_attr: None}

    def claim(
        self,
        ref: Any,
        now: dt.datetime,
        *,
        fields: Mapping[str, Any] | None = None,
        takeover_fields: Mapping[str, Any] | None = None,
        payload_hash: str = "",
        read_first: bool = False,
    ) -> Claim:
        """Create the record in progress (with ``fields``), or decide from the existing one.

        A takeover writes the lease and ``takeover_fields`` conditioned on the ``update_time`` read, so
        of two concurrent takers exactly one becomes the owner (the other gets BUSY). An expired record
        is rewritten whole (``fields`` again, stored result removed). Raises
        :class:`IdempotencyPayloadMismatchError` when ``payload_hash`` differs from the stored one.
        """
        from google.api_core.exceptions import AlreadyExists, Conflict, FailedPrecondition, NotFound
        from google.cloud.firestore import DELETE_FIELD, Increment

        s, kw = self.schema, self._kw()
        base = self.lease_fields(now)
        if s.hash_attr:
            base[s.hash_attr] = payload_hash
        fresh = {**(fields or {}), **base}
        if s.attempts_attr:
            fresh[s.attempts_attr] = 1
        cost = {"reads": 0, "writes": 0}

        def create() -> Claim | None:
            try:
                wr = ref.create(fresh, **kw)
            except (AlreadyExists, Conflict):
                return None
            cost["writes"] += 1
            return self._made(Outcome.OWNED, ref, wr.update_time, None, cost)

        def step() -> Claim:
            if not read_first and (made := create()) is not None:
                return made
            cost["reads"] += 1
            snap = ref.get(**kw)
            if not snap.exists:
                if read_first and (made := create()) is not None:
                    return made
                raise Stale  # deleted (released) between our create and our read: start again
            doc = snap.to_dict() or {}
            decision = decide(s, doc, now, payload_hash)
            if decision is Decision.MISMATCH:
                raise IdempotencyPayloadMismatchError(f"{ref.id} was claimed with a different payload")
            if decision is Decision.DONE:
                return self._made(Outcome.DONE, ref, snap.update_time, doc, cost)
            if decision is Decision.BUSY:
                return self._made(Outcome.BUSY, ref, snap.update_time, doc, cost)
            take: dict[str, Any] = {**base, **(takeover_fields or {})}
            if s.expiry_attr and isinstance(doc.get(s.expiry_attr), dt.datetime) and doc[s.expiry_attr] <= now:
                take = {**(fields or {}), **take, s.result_attr: DELETE_FIELD}
                if s.attempts_attr:
                    take[s.attempts_attr] = 1
            elif s.attempts_attr:
                take[s.attempts_attr] = Increment(1)
            try:
                wr = ref.update(take, option=precondition(snap.update_time), **kw)
            except (FailedPrecondition, NotFound):  # another taker won
                return self._made(Outcome.BUSY, ref, snap.update_time, doc, cost)
            cost["writes"] += 1
            return self._made(Outcome.OWNED, ref, wr.update_time, doc, cost, taken_over=True)

        try:
            return retry_on_contention(step, what=ref.path, policy=self.policy)
        except ContentionError:  # created and released again and again under us: somebody else is on it
            return self._made(Outcome.BUSY, ref, None, None, cost)

    def _made(
        self, o: Outcome, ref: Any, version: Any, doc: dict[str, Any] | None, cost: dict[str, int], **kw: Any
    ) -> Claim:
        return Claim(o, ref, version, doc, reads=cost["reads"], writes=cost["writes"], schema=self.schema, **kw)

    def complete(
        self,
        claim: Claim,
        *,
        result: Any = _MISSING,
        state: str | None = None,
        fields: Mapping[str, Any] | None = None,
        if_owner: bool = True,
        writer: Any = None,
    ) -> bool:
        """Store the final state (default ``schema.completed``), the result and ``fields`` in one write.

        ``if_owner``: conditioned on our version, so a claim whose lease ran out and was taken over
        cannot overwrite the new owner's record (False is returned). ``writer``: a batch or transaction
        to add the write to (the caller commits it, atomically with its own writes; a lost precondition
        then fails that commit).
        """
        from google.api_core.exceptions import FailedPrecondition, NotFound

        s = self.schema
        data: dict[str, Any] = dict(fields or {})
        if s.state_attr:
            data[s.state_attr] = state or s.completed
        if result is not _MISSING:
            data[s.result_attr] = result
        option = precondition(claim.version) if if_owner else None
        if writer is not None:
            writer.update(claim.ref, data, option=option)
            return True
        try:
            claim.ref.update(data, option=option, **self._kw())
        except (FailedPrecondition, NotFound):
            if not if_owner:
                raise
            log.warning("claim lost before completion; another execution owns it", extra={"claim": claim.ref.path})
            return False
        return True

    def release(self, claim: Claim) -> None:
        """Best effort after a failure: delete the record or end its lease, only while it is still ours.

        Never raises: during an outage the write may fail too, and the lease then simply runs out.
        """
        try:
            option = precondition(claim.version)
            if self.schema.release_deletes:
                claim.ref.delete(option=option, **self._kw())
            else:
                claim.ref.update(self.release_fields(), option=option, **self._kw())
        except Exception as exc:
            log.info("claim not released; its lease will run out", extra={"error": type(exc).__name__})
