"""Storage backends for idempotency records.

A record moves ``IN_PROGRESS`` (leased) -> ``COMPLETED`` (result stored) or is deleted when the handler
fails, so the next delivery runs it again. Every transition is a single conditional write, so two
concurrent deliveries can never both believe they own a key.
"""

from __future__ import annotations

import abc
import datetime as dt
import hashlib
import threading
from dataclasses import dataclass, replace
from typing import Any

from shared.idempotency.exceptions import (
    IdempotencyAlreadyInProgressError,
    IdempotencyPayloadMismatchError,
)

IN_PROGRESS = "IN_PROGRESS"
COMPLETED = "COMPLETED"


@dataclass(frozen=True, slots=True)
class Record:
    key: str
    status: str
    payload_hash: str
    lease_until: dt.datetime
    expire_at: dt.datetime
    result: Any = None
    version: Any = None  # backend's optimistic-concurrency token (Firestore update_time)


class AlreadyCompleted(Exception):
    """Internal signal carrying the stored record of a completed execution."""

    def __init__(self, record: Record) -> None:
        super().__init__(record.key)
        self.record = record


class PersistenceLayer(abc.ABC):
    """Atomic claim / complete / release of idempotency keys."""

    @abc.abstractmethod
    def _create(self, record: Record) -> Record | None:
        """Insert if absent; return the stored record (with version) or None if the key exists."""

    @abc.abstractmethod
    def _get(self, key: str) -> Record | None: ...

    @abc.abstractmethod
    def _replace(self, record: Record, expected_version: Any) -> Record | None:
        """Overwrite if the stored version still equals ``expected_version``; None when it moved."""

    @abc.abstractmethod
    def _delete(self, key: str, expected_version: Any) -> None: ...

    def claim(self, key: str, payload_hash: str, now: dt.datetime, lease_s: int, ttl_s: int) -> Record:
        """Take the in-progress lease on ``key`` or explain, by exception, why not."""
        fresh = Record(
            key=key,
            status=IN_PROGRESS,
            payload_hash=payload_hash,
            lease_until=now + dt.timedelta(seconds=lease_s),
            expire_at=now + dt.timedelta(seconds=ttl_s),
        )
        for _ in range(3):
            created = self._create(fresh)
            if created is not None:
                return created
            existing = self._get(key)
            if existing is None:  # released between our create and get: try again
                continue
            mismatch = payload_hash and existing.payload_hash and existing.payload_hash != payload_hash
            if mismatch and existing.expire_at > now:
                raise IdempotencyPayloadMismatchError(f"key {key} was used with a different payload")
            if existing.expire_at > now:
                if existing.status == COMPLETED:
                    raise AlreadyCompleted(existing)
                if existing.lease_until > now:
                    raise IdempotencyAlreadyInProgressError(f"key {key} is in progress")
            # The lease or the whole record expired: take it over, but only if nobody else did.
            taken = self._replace(fresh, existing.version)
            if taken is not None:
                return taken
            raise IdempotencyAlreadyInProgressError(f"key {key} was taken over concurrently")
        raise IdempotencyAlreadyInProgressError(f"key {key} kept changing under us")

    def complete(self, claimed: Record, result: Any) -> bool:
        """Store the result; False when our lease expired and someone else took the key over."""
        done = replace(claimed, status=COMPLETED, result=result)
        return self._replace(done, claimed.version) is not None

    def release(self, claimed: Record) -> None:
        """Forget a failed execution so a redelivery runs it again."""
        self._delete(claimed.key, claimed.version)


def hash_key(namespace: str, key: str) -> str:
    """Document id for a key: fixed length and free of Firestore's forbidden characters."""
    return hashlib.sha256(f"{namespace}\x1f{key}".encode()).hexdigest()


class FirestorePersistenceLayer(PersistenceLayer):
    """Records in one Firestore collection; ``expire_at`` is the collection's TTL field."""

    def __init__(self, collection: str = "idempotency", client: Any = None) -> None:
        self.collection = collection
        self._client = client

    def _ref(self, key: str) -> Any:
        if self._client is None:
            from shared import clients

            return clients.firestore().collection(self.collection).document(key)
        return self._client.collection(self.collection).document(key)

    @staticmethod
    def _to_doc(r: Record) -> dict[str, Any]:
        return {
            "status": r.status,
            "payload_hash": r.payload_hash,
            "lease_until": r.lease_until,
            "expire_at": r.expire_at,
            "result": r.result,
        }

    @staticmethod
    def _from_snap(key: str, snap: Any) -> Record:
        d = snap.to_dict()
        return Record(
            key=key,
            status=d["status"],
            payload_hash=d.get("payload_hash", ""),
            lease_until=d["lease_until"],
            expire_at=d["expire_at"],
            result=d.get("result"),
            version=snap.update_time,
        )

    def _create(self, record: Record) -> Record | None:
        from google.api_core.exceptions import AlreadyExists, Conflict

        try:
            wr = self._ref(record.key).create(self._to_doc(record))
        except (AlreadyExists, Conflict):
            return None
        return replace(record, version=wr.update_time)

    def _get(self, key: str) -> Record | None:
        snap = self._ref(key).get()
        return self._from_snap(key, snap) if snap.exists else None

    def _replace(self, record: Record, expected_version: Any) -> Record | None:
        from google.api_core.exceptions import FailedPrecondition, NotFound

        ref = self._ref(record.key)
        option = ref._client.write_option(last_update_time=expected_version)
        try:
            wr = ref.update(self._to_doc(record), option=option)
        except (FailedPrecondition, NotFound):
            return None
        return replace(record, version=wr.update_time)

    def _delete(self, key: str, expected_version: Any) -> None:
        from google.api_core.exceptions import FailedPrecondition, NotFound

        ref = self._ref(key)
        try:
            ref.delete(option=ref._client.write_option(last_update_time=expected_version))
        except (FailedPrecondition, NotFound):
            pass  # someone else owns it now; their record must survive


class InMemoryPersistenceLayer(PersistenceLayer):
    """Same semantics in a dict, for service-layer unit tests (never for integration tests)."""

    def __init__(self) -> None:
        self._data: dict[str, Record] = {}
        self._lock = threading.Lock()
        self._counter = 0

    def _bump(self, r: Record) -> Record:
        self._counter += 1
        stored = replace(r, version=self._counter)
        self._data[r.key] = stored
        return stored

    def _create(self, record: Record) -> Record | None:
        with self._lock:
            if record.key in self._data:
                return None
            return self._bump(record)

    def _get(self, key: str) -> Record | None:
        with self._lock:
            return self._data.get(key)

    def _replace(self, record: Record, expected_version: Any) -> Record | None:
        with self._lock:
            cur = self._data.get(record.key)
            if cur is None or cur.version != expected_version:
                return None
            return self._bump(record)

    def _delete(self, key: str, expected_version: Any) -> None:
        with self._lock:
            cur = self._data.get(key)
            if cur is not None and cur.version == expected_version:
                del self._data[key]
