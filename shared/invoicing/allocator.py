"""Gapless document numbers at hundreds of finalizations per second: group commit on Firestore.

Why not "one transaction per invoice that bumps a counter": Firestore sustains about one write per
second on a single document, so a per-invoice counter caps a series near that rate. Here the counter
is written once per *batch*:

1. ``enqueue``: the document to number is its own queue entry: it carries ``number_queue = <series>``
   and ``queued_at`` (the invoices service writes them with the draft, so the first delivery costs no
   extra write). No shared queue document, no hot spot.
2. ``wait_numbered``: the finalization waits for its document's number. Within a process one thread
   per series polls for every waiting request; when no allocator holds the series' lease it becomes
   the allocator itself (``drain``).
3. ``drain``: read the series document (counter + lease) and up to ``batch_size`` queued documents
   (one query: ``number_queue == series ORDER BY queued_at``), then ONE atomic batched commit writes
   the counter (once) and each document's number/status (clearing ``number_queue``), conditional on
   the series document's ``update_time`` being the one read (optimistic concurrency: no transaction
   locks, which the emulator and a hot document both punish). The allocator keeps the lease for a
   short session (``session_s``), committing the next batch as soon as the last one returns, and
   releases it in the same write as its last batch (or in one write when the queue is empty).

Counter writes per invoice = (lease claims + batches + releases) / invoices: at most 3/``batch_size``
when a session commits one full batch, and falling as batches grow with load (measured by
``bench/invoices_numbering.py``; the series document counts its own writes in ``commits``).

Correctness does not rest on the lease: every number is assigned in a commit that rewrites the
counter on the condition that nobody else did since it was read, so duplicates and gaps are excluded
by that precondition alone; the lease only stops allocators from racing for the same document.
Numbers are written in the same commit as the documents that carry them, so a crash at any point
leaves either nothing assigned (the document is still queued) or everything assigned: no gap after
redelivery. A document already numbered is never queued again and never gets a second number.
"""

from __future__ import annotations

import datetime as dt
import random
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from shared.domain.numbering import SeriesDef
from shared.idempotency import Claims, Decision, Outcome, Schema, decide, precondition, update_if_unchanged
from shared.log import get_logger

log = get_logger(__name__)

SERIES = "number_series"
QUEUE = "number_queue"  # series id while the document waits for its number; removed when numbered
QUEUED_AT = "queued_at"
SERIES_DEF = "series_def"  # the series definition (SeriesDef.to_fields) that formats the document's number
# The series document carries the allocators' lease: a claim that is never completed, only renewed by
# each batch and released in the last one (``lease_owner`` names the holder for operators).
SERIES_LEASE = Schema(state_attr=None)


class NumberingPending(RuntimeError):
    """The document is queued but not numbered yet; raising makes Pub/Sub redeliver (the entry stays)."""


@dataclass
class AllocatorStats:
    """Counts of this process (benchmarks read them; the series document keeps the durable count)."""

    counter_writes: int = 0
    numbered: int = 0
    duplicates_dropped: int = 0
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def add(self, writes: int, numbered: int, dropped: int) -> None:
        with self._lock:
            self.counter_writes += writes
            self.numbered += numbered
            self.duplicates_dropped += dropped


@dataclass
class _Waiters:
    """Threads of this process waiting for numbers in one series (see ``wait_numbered``)."""

    cond: threading.Condition = field(default_factory=threading.Condition)
    waiting: dict[str, dict[str, Any] | None] = field(default_factory=dict)
    refs: Counter[str] = field(default_factory=Counter)
    driving: bool = False
    pause: float = 0.02


@dataclass(frozen=True, slots=True)
class Pending:
    """What the allocator needs to number one document."""

    doc_path: str  # e.g. "invoices/in_abc"
    issued_at: dt.datetime
    series: SeriesDef  # formats the number (SeriesDef.format is the one home of the format)
    status_after: str  # "open" for invoices, "issued" for credit notes


def queue_fields(series_id: str, item: Pending) -> dict[str, Any]:
    """The fields that put a document in its series' queue (written with a draft, or by ``enqueue``).

    Refuses a definition whose series for ``issued_at`` is not ``series_id``: the number would be
    printed in one series and counted in another.
    """
    if item.series.series_id(item.issued_at) != series_id:
        raise ValueError(f"{item.doc_path}: issued {item.issued_at} is in {item.series.series_id(item.issued_at)}")
    return {
        QUEUE: series_id,
        QUEUED_AT: item.issued_at,
        SERIES_DEF: item.series.to_fields(),
        "status_after": item.status_after,
    }


def _utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


class NumberAllocator:
    """Group-commit numbering for any collection whose documents carry the queue fields.

    One instance per process: its waiters share one polling thread per series. ``session_s`` bounds
    how long one request's thread allocates for others; ``lease_s`` how long a crashed allocator
    blocks the series; ``wait_s`` how long a request waits before it nacks (its document stays queued).
    """

    def __init__(
        self,
        db: Any,
        *,
        batch_size: int = 499,
        lease_s: float = 10.0,
        session_s: float = 1.0,
        min_interval_s: float = 0.05,
        wait_s: float = 25.0,
        poll_s: float = 0.02,
        max_poll_s: float = 0.1,
        after_batch: Callable[[str, int], None] | None = None,
        clock: Callable[[], dt.datetime] = _utcnow,
    ) -> None:
        # 1 counter write + 1 write per document must stay within Firestore's 500 writes per commit.
        if not 1 <= batch_size <= 499:
            raise ValueError("batch_size must be 1..499")
        self.db = db
        self.batch_size = batch_size
        self.lease_s = lease_s
        self.session_s = session_s
        self.min_interval_s = min_interval_s
        self.wait_s = wait_s
        self.poll_s = poll_s
        self.max_poll_s = max_poll_s
        self.after_batch = after_batch  # failure injection point for tests: runs after each commit
        self.clock = clock
        self.stats = AllocatorStats()
        self._lease = Claims(SERIES_LEASE, lease_s=lease_s)
        self._waiters: dict[str, _Waiters] = {}
        self._waiters_lock = threading.Lock()

    def series_ref(self, series_id: str) -> Any:
        return self.db.collection(SERIES).document(series_id)

    # -- 1. enqueue -------------------------------------------------------------------------------
    def enqueue(self, series_id: str, item: Pending) -> None:
        """Queue a document for numbering unless it is queued or numbered already (idempotent).

        Conditional on the document's ``update_time``: a number committed since our read makes the
        write fail, and the shared compare-and-set helper re-reads and decides again.
        """

        def change(d: dict[str, Any] | None) -> dict[str, Any] | None:
            if d is None:
                raise LookupError(f"{item.doc_path} does not exist")
            if d.get("seq") or d.get(QUEUE) == series_id:
                return None
            return queue_fields(series_id, item)

        update_if_unchanged(self.db.document(item.doc_path), change)

    # -- 2. wait ----------------------------------------------------------------------------------
    def wait_numbered(self, series_id: str, doc_path: str) -> dict[str, Any]:
        """Return the numbering fields (at least ``seq``, ``number``, ``status``, ``finalized_at``) once
        the document has its number, allocating for everyone whenever the series' lease is free.

        Within one process (a function instance serves many requests concurrently) a single thread
        per series polls and drains for all waiting threads: one ``get_all`` per round instead of one
        read per waiter keeps the polling cost flat as concurrency grows.
        """
        w = self._waiters_for(series_id)
        deadline = time.monotonic() + self.wait_s
        with w.cond:
            w.waiting.setdefault(doc_path, None)
            w.refs[doc_path] += 1  # duplicate deliveries in one instance wait on the same entry
        try:
            while True:
                with w.cond:
                    got = w.waiting.get(doc_path)
                    if got is not None:
                        if not got:
                            raise LookupError(f"{doc_path} does not exist")
                        return got
                    if time.monotonic() > deadline:
                        raise NumberingPending(f"{doc_path} still queued in series {series_id} after {self.wait_s}s")
                    if w.driving:
                        w.cond.wait(timeout=self.max_poll_s)
                        continue
                    w.driving = True
                try:
                    self._drive(series_id, doc_path.rsplit("/", 1)[0], w)
                finally:
                    with w.cond:
                        w.driving = False
                        w.cond.notify_all()
        finally:
            with w.cond:
                w.refs[doc_path] -= 1
                if w.refs[doc_path] <= 0:
                    del w.refs[doc_path]
                    w.waiting.pop(doc_path, None)

    def _waiters_for(self, series_id: str) -> _Waiters:
        with self._waiters_lock:
            return self._waiters.setdefault(series_id, _Waiters())

    def _drive(self, series_id: str, collection: str, w: _Waiters) -> None:
        """One polling round for every thread of this process waiting on ``series_id``."""
        with w.cond:
            paths = [p for p, v in w.waiting.items() if v is None]
        if not paths:
            return
        found: dict[str, dict[str, Any]] = {}
        for snap in self.db.get_all([self.db.document(p) for p in paths]):
            d = snap.to_dict() if snap.exists else None
            if d is None:
                found[snap.reference.path] = {}
            elif d.get("seq"):
                found[snap.reference.path] = dict(d)
        if found:
            with w.cond:
                for path, d in found.items():
                    if path in w.waiting:
                        w.waiting[path] = d
                w.cond.notify_all()
        if len(found) == len(paths):
            return
        if self._lease_free(series_id) and self.drain(series_id, collection):
            w.pause = self.poll_s
            return
        time.sleep(w.pause * (0.5 + random.random()))  # noqa: S311 (jitter, not security)
        w.pause = min(w.pause * 1.5, self.max_poll_s)

    def _lease_free(self, series_id: str) -> bool:
        snap = self.series_ref(series_id).get()
        d = (snap.to_dict() or {}) if snap.exists else {}
        return decide(self._lease.schema, d, self.clock()) is not Decision.BUSY

    # -- 3. drain ---------------------------------------------------------------------------------
    def drain(self, series_id: str, collection: str) -> int:
        """Take the lease, then commit batch after batch for up to ``session_s``; returns how many.

        Holding the lease across batches (instead of releasing after each) means the next batch starts
        as soon as the last commit returns, with whatever queued meanwhile: batches grow with load.
        """
        owner = uuid.uuid4().hex
        if not self._acquire(series_id, owner):
            return 0
        session_end = time.monotonic() + self.session_s
        done = 0
        last_commit = 0.0
        while True:
            # Pace partial batches: at most one counter write per ``min_interval_s`` unless the queue
            # fills a whole batch, so the counter's write rate stays bounded whatever the load.
            wait = last_commit + self.min_interval_s - time.monotonic()
            if wait > 0:
                time.sleep(wait)
            keep = time.monotonic() < session_end
            last_commit = time.monotonic()
            outcome = self._batch(series_id, collection, owner, keep)
            if outcome is None:  # our lease ran out and another allocator took over
                return done
            n, full, released = outcome
            if full:
                last_commit = 0.0  # a full batch: go again at once
            done += n
            if n and self.after_batch is not None:
                self.after_batch(series_id, n)
            if released:
                return done

    def _acquire(self, series_id: str, owner: str) -> bool:
        """Claim the lease with one conditional write; losers go back to waiting (no herd of readers).

        The series document is a reusable lease of the shared claim primitive (never completed); it is
        read first because it exists for every acquisition but the very first.
        """
        from google.cloud import firestore as fs

        claimed = self._lease.claim(
            self.series_ref(series_id),
            self.clock(),
            fields={"lease_owner": owner, "counter": 0, "commits": 1},
            takeover_fields={"lease_owner": owner, "commits": fs.Increment(1)},
            read_first=True,
        )
        if claimed.outcome is not Outcome.OWNED:
            return False
        self.stats.add(1, 0, 0)
        return True

    def _batch(self, series_id: str, collection: str, owner: str, keep: bool) -> tuple[int, bool, bool] | None:
        """One group commit under our lease -> (numbered, batch was full, lease released).

        The lease is kept when the batch was full or ``keep`` says the session goes on, and released
        in the same write otherwise, or when nothing is pending. None: the lease is no longer ours.
        """
        from google.api_core.exceptions import Conflict, FailedPrecondition, NotFound
        from google.cloud import firestore as fs

        series = self.series_ref(series_id)
        snap = series.get()
        sdoc = (snap.to_dict() or {}) if snap.exists else {}
        now = self.clock()
        if not snap.exists or sdoc.get("lease_owner") != owner:
            return None
        from google.cloud.firestore_v1.base_query import FieldFilter

        queued = self.db.collection(collection).where(filter=FieldFilter(QUEUE, "==", series_id))
        # Only the fields numbering needs: the documents themselves (lines, parties) stay on the server.
        fields_needed = [QUEUED_AT, "seq", SERIES_DEF, "status_after"]
        cands = list(queued.select(fields_needed).order_by(QUEUED_AT).limit(self.batch_size).stream())
        full = len(cands) >= self.batch_size
        hold = bool(cands) and (full or keep)
        seq = int(sdoc.get("counter", 0))
        batch = self.db.batch()
        numbered = 0
        assigned: dict[str, dict[str, Any]] = {}
        for c in sorted(cands, key=lambda c: (c.get(QUEUED_AT), c.id)):
            d = c.to_dict() or {}
            if d.get("seq"):  # numbered but still queued (cannot happen through enqueue): just dequeue
                batch.update(c.reference, {QUEUE: fs.DELETE_FIELD})
                continue
            seq += 1
            numbered += 1
            fields = {
                "seq": seq,
                "number": SeriesDef.from_fields(d[SERIES_DEF]).format(seq, d[QUEUED_AT]),
                "status": d["status_after"],
                "finalized_at": d[QUEUED_AT],
                "series_id": series_id,
            }
            batch.update(c.reference, {**fields, QUEUE: fs.DELETE_FIELD})
            assigned[c.reference.path] = fields
        lease = self._lease.lease_fields(now) if hold else self._lease.release_fields()
        head = {
            "counter": seq,
            "commits": fs.Increment(1),
            "lease_owner": owner if hold else None,
            **lease,
            "updated_at": now,
        }
        # The counter write, conditional on the series document being exactly what we read: any other
        # allocator's commit in between changes it, and then this whole commit (numbers included) fails.
        batch.update(series, head, option=precondition(snap.update_time))
        try:
            batch.commit()
        except (FailedPrecondition, NotFound, Conflict):
            return None
        self._hand_over(series_id, assigned)
        self.stats.add(1, numbered, len(cands) - numbered)
        if numbered:
            log.info("numbers allocated", extra={"series_id": series_id, "numbered": numbered, "last": seq})
        return numbered, full, not hold

    def _hand_over(self, series_id: str, assigned: dict[str, dict[str, Any]]) -> None:
        """Give this process's waiters the numbering fields just committed (no need to read them back)."""
        w = self._waiters_for(series_id)
        with w.cond:
            hit = False
            for path, doc in assigned.items():
                if path in w.waiting and w.waiting[path] is None:
                    w.waiting[path] = doc
                    hit = True
            if hit:
                w.cond.notify_all()


def counter_commits(db: Any, series_id: str) -> tuple[int, int]:
    """(last number allocated, counter commits) of a series, as recorded on its document."""
    snap = db.collection(SERIES).document(series_id).get()
    d = (snap.to_dict() or {}) if snap.exists else {}
    return int(d.get("counter", 0)), int(d.get("commits", 0))
