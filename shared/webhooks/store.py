"""The dedupe-and-archive record of one PSP notification in Firestore (``webhook_events``).

One document per (psp, account, PSP event id), created atomically with ``create()``; it holds the
scrubbed raw payload, the headers of interest and the receive time (the archive), and a state:

``received`` -> ``published`` (canonical event acknowledged by Pub/Sub), ``ignored`` (type not mapped) or
``rejected`` (its canonical event is out of bounds: archived, never published).

Why a lease: the creator holds ``lease_until`` while it publishes. A concurrent identical delivery sees
the lease and is told to come back later (409), so only one request publishes; a delivery that
finds ``received`` with an expired lease (the first attempt crashed or Pub/Sub was down) takes the
lease over with a precondition on the document's update time and publishes again. The event id is
derived from the fact key, so even that second publish is recognised downstream as the same event.

The record is a claim of :mod:`shared.idempotency.claims` (create, lease, takeover, finish, release are
the primitive's); this module only says where the claim keeps its state and what the archive holds.

Why the final state may be written after the response (:class:`DeferredFinishes`): it is not what makes
delivery safe. The record created before the publish dedupes and leases; the publish is acknowledged
before the PSP gets its 2xx; the event id is derived from the fact key. A final write that never lands
leaves the record ``received`` with an expired lease: a PSP redelivery then takes it over and publishes
the same event id again (consumers deduplicate), and without a redelivery nothing is missing.
"""

from __future__ import annotations

import atexit
import datetime as dt
import hashlib
import threading
import time
import zlib
from collections.abc import Callable
from typing import Any

from shared.idempotency import Claim as ClaimRecord
from shared.idempotency import Claims, Outcome, Schema
from shared.log import get_logger
from shared.webhooks import rawfs

log = get_logger(__name__)

COLLECTION = "webhook_events"
LEASE_S = 30
RPC_TIMEOUT_S = 5.0
INLINE_RAW_MAX = 256 * 1024  # larger payloads are stored zlib-compressed (Firestore: 1 MiB per document)
STORED_RAW_MAX = 900 * 1024

RECEIVED = "received"
PUBLISHED = "published"
IGNORED = "ignored"
REJECTED = "rejected"


Claim = Outcome  # OWNED: publish, then finish; DONE: published or ignored before; BUSY: leased elsewhere
Claimed = ClaimRecord

# The record is an archive: a failed attempt only loses its lease (it is never deleted), and the
# receive count is kept in ``attempts``. No TTL: the archive stays.
SCHEMA = Schema(
    state_attr="state", in_progress=RECEIVED, completed=PUBLISHED, attempts_attr="attempts", release_deletes=False
)
CLAIMS = Claims(SCHEMA, lease_s=LEASE_S, timeout_s=RPC_TIMEOUT_S)


def record_id(psp: str, account: str, event_id: str) -> str:
    """Fixed-length id free of Firestore's forbidden characters."""
    return hashlib.sha256(f"{psp}\x1f{account}\x1f{event_id}".encode()).hexdigest()


def archived_raw(scrubbed: str) -> dict[str, Any]:
    """The payload fields of a record, compressed when large so a 1 MiB body still fits a document."""
    if len(scrubbed) <= INLINE_RAW_MAX:
        return {"raw": scrubbed}
    packed = zlib.compress(scrubbed.encode(), 6)
    if len(packed) > STORED_RAW_MAX:  # incompressible: keep a readable prefix, say so
        return {"raw": scrubbed[:INLINE_RAW_MAX], "raw_truncated": True}
    return {"raw_zlib": packed}


def claim(db: Any, doc_id: str, record: dict[str, Any], now: dt.datetime) -> Claimed:
    """Create the record (archive fields + state ``received`` + lease), or decide from the existing one
    whether this request may publish (see :mod:`shared.idempotency.claims`)."""
    return CLAIMS.claim(rawfs.document(db, COLLECTION, doc_id), now, fields=record)


def finish(claimed: Claimed, state: str, *, writer: Any = None, **fields: Any) -> None:
    """Mark the record final. A final state makes the lease irrelevant, and the document's own
    ``update_time`` tells when it was finished, so the write carries nothing else (hot path). It is not
    conditioned on our lease: the event WAS published (or ignored), whoever holds the lease now, so a
    late write is still true. ``writer``: a batch to add the write to (:class:`DeferredFinishes`)."""
    CLAIMS.complete(claimed, state=state, fields=fields, if_owner=False, writer=writer)


def release(claimed: Claimed) -> None:
    """Best effort after a failure: end our lease so the PSP's next retry need not wait for it."""
    CLAIMS.release(claimed)


MAX_BATCH = 500  # Firestore's limit of writes per commit


class DeferredFinishes:
    """Final-state writes taken off the request path and written by one thread in group commits.

    Why: the final write was a third RPC on every delivery, after the two the work needs (create,
    publish), and it guards nothing (see the module doc). Queued here, it costs the request nothing. The
    thread commits at most once per ``interval_s``: a write queued after a quiet spell goes at once,
    under load the writes queued meanwhile share one commit (at 200 deliveries/s, ten per RPC).

    On Cloud Run with CPU allocated only during requests, this thread is throttled between requests: a
    queued write then waits for the next request, or for shutdown (``atexit`` flushes; Cloud Run gives
    a stopping instance CPU for 10 s). If it is lost (killed, Firestore down), the record stays
    ``received``, which is safe as said above; with CPU always allocated it lands within milliseconds.
    """

    def __init__(self, db: Callable[[], Any], *, interval_s: float = 0.05, timeout_s: float = RPC_TIMEOUT_S) -> None:
        self._db = db
        self._interval_s = interval_s
        self._timeout_s = timeout_s
        self._cv = threading.Condition()
        self._queue: list[tuple[Claimed, str, dict[str, Any]]] = []
        self._queued = 0  # writes ever queued, and ever done (written or given up)
        self._done = 0
        self._thread: threading.Thread | None = None

    def add(self, claimed: Claimed, state: str, **fields: Any) -> None:
        """Queue the final state of a record (returns at once)."""
        with self._cv:
            self._queue.append((claimed, state, fields))
            self._queued += 1
            if self._thread is None:
                atexit.register(self.flush)
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(target=self._run, name="webhook-finishes", daemon=True)
                self._thread.start()
            self._cv.notify_all()

    def flush(self, timeout_s: float = 10.0) -> bool:
        """Wait until every write queued so far is done; False if that took longer than ``timeout_s``."""
        with self._cv:
            target = self._queued
            return self._cv.wait_for(lambda: self._done >= target, timeout=timeout_s)

    def _run(self) -> None:
        last = time.monotonic() - self._interval_s
        while True:
            with self._cv:
                self._cv.wait_for(lambda: bool(self._queue))
            pause = last + self._interval_s - time.monotonic()
            if pause > 0:  # a commit went out less than interval_s ago: let more writes join this one
                time.sleep(pause)
            last = time.monotonic()
            with self._cv:
                todo, self._queue = self._queue[:MAX_BATCH], self._queue[MAX_BATCH:]
            try:
                self._write(todo)
            finally:
                with self._cv:
                    self._done += len(todo)
                    self._cv.notify_all()

    def _write(self, todo: list[tuple[Claimed, str, dict[str, Any]]]) -> None:
        try:
            batch = rawfs.RawBatch(self._db())
            for claimed, state, fields in todo:
                finish(claimed, state, writer=batch, **fields)
            batch.commit(timeout=self._timeout_s)
            return
        except Exception as exc:  # one bad record must not cost the others their write: one by one
            if len(todo) == 1:
                self._lost(todo[0][0], exc)
                return
        for claimed, state, fields in todo:
            try:
                finish(claimed, state, **fields)
            except Exception as exc:
                self._lost(claimed, exc)

    @staticmethod
    def _lost(claimed: Claimed, exc: Exception) -> None:
        extra = {"record": claimed.ref.id, "error": type(exc).__name__}
        log.warning("final state not written; the record stays received (a redelivery republishes)", extra=extra)
