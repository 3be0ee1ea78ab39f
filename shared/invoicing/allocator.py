"""Gapless document numbers at hundreds of finalizations per second: group commit on Firestore.

Why not "one transaction per invoice that bumps a counter": Firestore sustains about one write per
second on a single document, so a per-invoice counter caps a series near that rate. Here the counter
is written once per *batch*:

1. The queue. A NEW document (an invoice issued from a RenewalDue) is handed over in memory
   (``create_numbered``) and created WITH its number in the numbering commit: no draft write first;
   until that commit the unacknowledged delivery is its queue entry (a crash stores nothing, Pub/Sub
   redelivers). A STORED document (a credit note, a draft written by ``create_draft``) is its own queue
   entry (``enqueue``): it carries ``number_queue = <series>``, ``queued_at`` and the series definition
   that prints its number. No shared queue document, no hot spot.
2. ``wait_numbered`` / ``create_numbered``: the request waits for its number. Within a process one
   allocator thread per series works for every waiting request; requests only wait.
3. The allocator thread *leads* when the series' lease is free: it takes up to ``batch_size`` documents
   (its process's new ones, and queued ones through one projected query ``number_queue == series ORDER
   BY queued_at``, run only while a stored document of ours waits), then ONE atomic batched commit
   writes the counter (once), creates or updates each document with its number, and takes, keeps or
   releases the lease (a claim of the shared primitive's schema on the series document), conditional on
   the series document's ``update_time`` being the one last seen (optimistic concurrency: no
   transaction locks, which the emulator and a hot document both punish; no re-read per batch, and no
   separate lease round: at a trickle one commit takes and releases it). Alone, it commits batch after
   batch while its process has requests waiting (batches grow with load), hands the numbers straight to
   its own waiters, and releases the lease in its last batch. A commit refused because a document to
   create exists (a redelivery) hands the stored document to its waiter and is retried without it.
4. Turns (a sustained load on several instances). An allocator with requests waiting behind another's
   lease adds its id to the series document's ``turns`` (one unconditional ``ArrayUnion``: the holder's
   next commit fails once, and its retry sees the newcomer). While others are in the turns, a holder's
   session is ONE commit, which passes the lease to the next allocator in ring order (a short lease,
   ``handoff_s``, in its name); each instance so creates ITS OWN new documents with their numbers, 1 write
   each plus one counter write per turn, and none starves or has to store its documents queued for another
   leader's query (2 writes each). A turn that finds nothing of ours leaves the ring; so does an instance
   whose last request finds no other within ``linger_s`` (that request removes its id, ``ArrayRemove``,
   and sees a lease that reached it meanwhile passed on before returning: an instance with no request
   in flight may be throttled or stopped), and a stopping thread. A holder that keeps the lease
   for ``spill_s`` (hung, or an allocator that does not take turns) gets our new documents stored
   queued, so its queue query numbers them; a passed lease that runs out (its holder died) is taken over
   by the next allocator with requests waiting, which drops the dead one from the turns. Turns are for what
   only its instance can number (new documents in memory); a stored queued document is any holder's to
   number. So whoever takes over a lease that ran out runs the queue query (every stored document waiting,
   its own and other instances', goes into its one commit), and a commit that numbers a stored document none
   of its requests waits for releases the lease rather than passing it: the next in the turns may have waited
   only for that document, and passed the lease it would have to write the series document with nothing to
   number (an instance that still waits sees the lease free and leads).
5. Once another allocator is seen at work (its lease, a lost commit) or a stored document of ours
   waits, a process listens to the series document: that is how a passed lease reaches its new holder,
   and the commit names the documents it numbered (``last_batch``), so a process reads exactly its own
   documents of that batch, once, and nothing while no batch lands. When the lease is free (released,
   or run out because its holder died) a process with waiters leads. An instance numbering alone never
   listens (every snapshot is a billed read).

Counter writes per invoice = (lease claims + batches + releases + joins and leaves of the turns) /
invoices, falling as batches grow with load (measured by ``bench/invoices_numbering.py``; the series
document counts its own writes in ``commits``); at a trickle it is one write per invoice (the commit
that numbers it).

Correctness does not rest on the lease nor on the listener: every number is assigned in a commit that
rewrites the counter on the condition that nobody else wrote the series document since the version
its leader last saw, so duplicates and gaps are excluded by that precondition alone; the lease and the
turns only stop allocators from racing (a join or leave never touches the counter, it only makes a
conditioned commit fail and be retried), the listener only saves reads and latency (a silent listener degrades to
reading the series document every ``poll_s``). Numbers are written in the same commit as the
documents that carry them, so a crash at any point leaves either nothing assigned (the document is
still queued, or not stored at all) or everything assigned: no gap after redelivery. A document already
numbered is never queued again and never gets a second number (a create fails if it exists).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import functools
import json
import threading
import time
import uuid
from collections.abc import Callable, Iterable
from concurrent.futures import Future
from dataclasses import dataclass, field
from typing import Any

from shared.domain.numbering import SeriesDef
from shared.idempotency import (
    Claim,
    Claims,
    ContentionError,
    Decision,
    Outcome,
    RetryPolicy,
    Schema,
    Stale,
    decide,
    precondition,
    retry_on_contention,
    update_if_unchanged,
)
from shared.log import get_logger

log = get_logger(__name__)

SERIES = "number_series"
QUEUE = "number_queue"  # series id while the document waits for its number; removed when numbered
QUEUED_AT = "queued_at"
SERIES_DEF = "series_def"  # the series definition (SeriesDef.to_fields) that formats the document's number
# The series document carries the allocators' lease: a claim that is never completed, only renewed by
# each batch and released in the last one (``lease_owner`` names the holder for operators).
SERIES_LEASE = Schema(state_attr=None)
# What the series document's last commit numbered, as JSON ``{path: [seq, number, status, finalized_at]}``:
# written in the same atomic commit as those documents, so it is as authoritative as reading them. One
# string rather than a map or an array, so Firestore does not index up to 499 entries per counter write.
LAST_BATCH = "last_batch"
# The allocators taking turns at the lease, in ring order (instance ids): an instance waiting behind another's
# lease adds itself (``ArrayUnion``, its one write per contention episode); a holder passes the lease to the next
# one in its commit and leaves the ring when its turn finds nothing of its own to number.
TURNS = "turns"
# A join or leave is never worth a request's wait: three tries, then the next poll joins again (``_turns_write``).
TURNS_POLICY = RetryPolicy(tries=3, base_s=0.01, cap_s=0.02)


_EXISTS: Any = object()  # a commit refused because a document it creates exists already


class NumberingPending(RuntimeError):
    """The document is queued but not numbered yet; raising makes Pub/Sub redeliver (the entry stays)."""


@dataclass
class AllocatorStats:
    """Counts of this process (benchmarks read them; the series document keeps the durable count)."""

    counter_writes: int = 0  # lease claims and numbering commits on the series document
    turn_writes: int = 0  # joins and leaves of the turns (the series document too; no number assigned)
    batches: int = 0  # numbering commits that assigned at least one number
    spilled: int = 0  # new documents stored queued (a second write each) behind a lease kept too long
    numbered: int = 0
    duplicates_dropped: int = 0
    docs_read: int = 0
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def add(
        self, *, writes: int = 0, numbered: int = 0, dropped: int = 0, read: int = 0, turns: int = 0, spilled: int = 0
    ) -> None:
        with self._lock:
            self.counter_writes += writes
            self.turn_writes += turns
            self.batches += 1 if numbered else 0
            self.spilled += spilled
            self.numbered += numbered
            self.duplicates_dropped += dropped
            self.docs_read += read


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


def batch_record(assigned: dict[str, dict[str, Any]]) -> str:
    """``LAST_BATCH`` for a commit that assigns ``assigned`` (path -> numbering fields)."""
    rows = {p: [f["seq"], f["number"], f["status"], f["finalized_at"].isoformat()] for p, f in assigned.items()}
    return json.dumps(rows, separators=(",", ":"))


def batch_fields(series_id: str, record: Any) -> dict[str, dict[str, Any]] | None:
    """The numbering fields a ``LAST_BATCH`` record assigned, by path; None when it cannot be read."""
    if not record:
        return {}
    try:
        rows = json.loads(record)
        return {
            path: {
                "seq": int(seq),
                "number": str(number),
                "status": str(status),
                "finalized_at": dt.datetime.fromisoformat(at),
                "series_id": series_id,
            }
            for path, (seq, number, status, at) in rows.items()
        }
    except (TypeError, ValueError, AttributeError):
        return None


@dataclass(eq=False)
class _Waiter:
    """One document that threads of this process wait for (duplicate deliveries share it)."""

    event: threading.Event = field(default_factory=threading.Event)
    refs: int = 0
    result: dict[str, Any] | None = None  # the numbering fields; {} when the document does not exist
    error: BaseException | None = None
    checked: float = field(default_factory=time.monotonic)  # last time we knew it unnumbered
    # The document itself when it is created in the commit that numbers it (``create_numbered``): not
    # stored until then, so it is never read while waiting; None for a stored, queued document.
    new: dict[str, Any] | None = None
    encoded: Any = None  # ``new``'s create write without its numbering fields (see ``encode_create``)

    def settle(self, result: dict[str, Any] | None = None, error: BaseException | None = None) -> None:
        if self.result is None and self.error is None:
            self.result, self.error = result, error
            self.event.set()


@dataclass(eq=False)
class _Series:
    """This process's view of one series: its waiters, its allocator thread, what the listener saw."""

    series_id: str
    collection: str
    cond: threading.Condition = field(default_factory=threading.Condition)
    waiting: dict[str, _Waiter] = field(default_factory=dict)
    thread: threading.Thread | None = None
    last_active: float = field(default_factory=time.monotonic)
    doc: dict[str, Any] | None = None  # the series document as last seen (None: not seen yet)
    version: Any = None  # its update_time: a leader's first commit is conditioned on it (no lease claim)
    seen_at: float = 0.0  # monotonic time of that observation
    to_read: set[str] = field(default_factory=set)  # waiters whose documents must be read
    recent: dict[str, dict[str, Any]] = field(default_factory=dict)  # what recently seen batches assigned
    lead_after: float = 0.0  # after a session that found nothing of ours queued, lead again only then
    leading: bool = False  # our thread holds the lease: it hands its commits over itself
    sustained: bool = False  # our session keeps the lease past a batch (the queue query runs for every batch)
    held_key: Any = None  # the other allocator seen holding the lease, and since when (monotonic)
    held_since: float = 0.0
    registered_at: float = -1e9  # when we last added ourselves to the turns (monotonic)
    leaving: bool = False  # a request thread is taking us out of the turns (``_linger``)

    def unresolved(self) -> list[str]:
        return [p for p, w in self.waiting.items() if w.result is None and w.error is None]

    def queued_waiting(self) -> bool:
        """Whether a waiter's document is stored and queued (found by the queue query, not in memory)."""
        return any(w.new is None and w.result is None and w.error is None for w in self.waiting.values())

    def observe(self, doc: dict[str, Any], keep_recent: int, version: Any = None) -> None:
        """Take in a newer version of the series document (caller holds ``cond``).

        The batch it records settles our waiters it numbered, without reading their documents. When
        the counter moved by more than that batch, versions were skipped: every waiter is read.
        """
        if self.doc is not None and (
            version < self.version
            if version is not None and self.version is not None
            else int(doc.get("commits", 0)) < int(self.doc.get("commits", 0))
        ):
            return  # an older version (a late listener event after a read): nothing new in it
        before = None if self.doc is None else int(self.doc.get("counter", 0))
        counter = int(doc.get("counter", 0))
        self.doc, self.seen_at, self.version = doc, time.monotonic(), version
        self.cond.notify_all()
        if before is not None and counter == before:
            return
        batch = batch_fields(self.series_id, doc.get(LAST_BATCH))
        for path, fields in (batch or {}).items():
            self.recent[path] = fields
            w = self.waiting.get(path)
            if w is not None and not self.leading:
                if w.new is None:
                    w.settle(fields)
                else:  # another instance created our document (a duplicate delivery): its stored copy wins
                    self.to_read.add(path)
        while len(self.recent) > keep_recent:
            del self.recent[next(iter(self.recent))]
        skipped = batch is None or (before is not None and counter - len(batch) != before)
        if skipped and not self.leading:  # while we lead, the commits are ours and handed over already
            self.to_read.update(self.unresolved())


def _in_background(fn: Callable[[], Any]) -> Future[Any]:
    """Run ``fn`` on a short-lived daemon thread (it must not keep a stopping process alive)."""
    fut: Future[Any] = Future()

    def run() -> None:
        try:
            fut.set_result(fn())
        except BaseException as exc:
            fut.set_exception(exc)

    threading.Thread(target=run, name="numbering query", daemon=True).start()
    return fut


class NumberAllocator:
    """Group-commit numbering for any collection whose documents carry the queue fields.

    One instance per process: its waiters share one allocator thread per series. ``lease_s``: how
    long a crashed allocator blocks the series; ``wait_s``: how long a request waits before it nacks
    (its document stays queued); ``min_interval_s``: the least time between two partial batches (the
    counter's write rate stays bounded whatever the load); ``poll_s``: how often the series document
    is read when its listener is silent; ``recheck_s``: how long a waiter goes without its document
    being read (a number missed by the listener is found then); ``idle_s``: how long the thread (not
    its lead) outlives the process's last waiter; ``spill_s``: how long one other allocator may keep
    the lease while our new documents wait in memory before they are stored queued (default a quarter
    of the shorter of ``lease_s`` and ``wait_s``); ``linger_s``: how long the last request of an instance in
    the turns waits for another before it takes the instance out of them; ``handoff_s``: the lease passed to
    the next allocator in the turns lasts this long (at most ``lease_s``), so one that stopped meanwhile
    holds the series up that long at most.
    """

    def __init__(
        self,
        db: Any,
        *,
        batch_size: int = 499,
        lease_s: float = 10.0,
        min_interval_s: float = 0.02,
        wait_s: float = 25.0,
        poll_s: float = 0.25,
        recheck_s: float = 2.0,
        idle_s: float = 1.0,
        spill_s: float | None = None,
        linger_s: float = 0.1,
        handoff_s: float = 1.0,
        listen: bool = True,
        after_batch: Callable[[str, int], None] | None = None,
        clock: Callable[[], dt.datetime] = _utcnow,
    ) -> None:
        # 1 counter write + 1 write per document must stay within Firestore's 500 writes per commit.
        if not 1 <= batch_size <= 499:
            raise ValueError("batch_size must be 1..499")
        self.db = db
        self.batch_size = batch_size
        self.lease_s = lease_s
        self.min_interval_s = min_interval_s
        self.wait_s = wait_s
        self.poll_s = poll_s
        self.recheck_s = recheck_s
        self.idle_s = idle_s
        # A lease kept by one other allocator for this long is not being passed round (a hung
        # holder, or an allocator that does not take turns): our new documents are then stored queued.
        self.spill_s = min(lease_s, wait_s) / 4 if spill_s is None else spill_s
        self.instance_id = uuid.uuid4().hex  # names this allocator in the lease and the turns
        self.linger_s = linger_s
        self.handoff_s = min(handoff_s, lease_s)
        self.listen = listen
        self.after_batch = after_batch  # failure injection point for tests: runs after each commit
        self.clock = clock
        self.stats = AllocatorStats()
        self._lease = Claims(SERIES_LEASE, lease_s=lease_s)
        self._series: dict[str, _Series] = {}
        self._definitions: dict[Any, SeriesDef] = {}
        self._series_lock = threading.Lock()

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
        the document has its number; the process's allocator thread gets it (the request only waits).

        Raises :class:`NumberingPending` after ``wait_s`` (the document stays queued), LookupError when
        the document does not exist, and whatever made this process's allocator fail meanwhile.
        """
        result = self._wait(series_id, doc_path, None)
        if not result:
            raise LookupError(f"{doc_path} does not exist")
        return result

    def create_numbered(self, series_id: str, doc_path: str, doc: dict[str, Any]) -> dict[str, Any]:
        """Create ``doc`` (carrying its queue fields) in the commit that numbers it; return the numbering fields.

        Why: the draft write before numbering is then saved; until that commit the unacknowledged delivery
        is the queue entry (a crash before it leaves nothing stored and Pub/Sub redelivers). When the
        document exists already (a redelivery, or a duplicate another instance numbered) the stored
        document is returned whole instead, numbered or not (``seq`` absent: the caller queues it).
        Raises :class:`NumberingPending` after ``wait_s``, the document then stored queued (by our allocator thread
        when another kept the lease longer than ``spill_s``, else by the request as it gives up).
        """
        if doc.get(QUEUE) != series_id:
            raise ValueError(f"{doc_path}: not queued in series {series_id}")
        return self._wait(series_id, doc_path, doc, encode_create(self.db, doc_path, doc))

    def _wait(self, series_id: str, doc_path: str, new: dict[str, Any] | None, encoded: Any = None) -> dict[str, Any]:
        st = self._series_for(series_id, doc_path.rsplit("/", 1)[0])
        with st.cond:
            w = st.waiting.get(doc_path)
            if w is None or (new is None and w.event.is_set() and w.error is None and not (w.result or {}).get("seq")):
                # A number is wanted: a waiter already settled with the stored copy of a duplicate's create
                # (queued, not numbered yet) cannot answer it; wait afresh.
                w = st.waiting[doc_path] = _Waiter(new=new, encoded=encoded)
                if doc_path in st.recent and new is None:  # numbered by a batch seen before we started waiting
                    w.settle(st.recent[doc_path])
            w.refs += 1
            st.last_active = time.monotonic()
            if st.thread is None:
                self._start(st)
            st.cond.notify_all()
        try:
            if not w.event.wait(self.wait_s) and not self._give_up(st, doc_path, w):
                raise NumberingPending(f"{doc_path} still queued in series {series_id} after {self.wait_s}s")
            if w.error is not None:
                raise w.error
            return w.result or {}
        finally:
            with st.cond:
                w.refs -= 1
                if w.refs <= 0 and st.waiting.get(doc_path) is w:
                    del st.waiting[doc_path]
                st.last_active = time.monotonic()
                last = not st.waiting and w.error is None and not st.leaving and self._in_turns(st)
                if last:
                    st.leaving = True
            if last:
                self._linger(st)

    def _give_up(self, st: _Series, doc_path: str, w: _Waiter) -> bool:
        """A request that waited ``wait_s`` for a new document's number stores it queued before it nacks (unless
        a commit numbered it meanwhile: then whether it was handed over). Why: whatever held the series up (a
        hung lease, a slow machine), the document then waits where any leader's queue query finds it, and the
        redelivery waits for that number; left in memory, it would be numbered only once redelivered. Its
        create is exclusive, so it races safely with a commit of our allocator that creates it numbered."""
        with st.cond:
            unstored = w.new is not None and not w.event.is_set()
        if unstored:
            self._spill(st, [doc_path])
        return w.event.is_set()

    def _in_turns(self, st: _Series) -> bool:
        """Whether we are in the turns (caller holds ``cond``). With the series document unknown (dropped after a
        commit of ours failed) whether we joined and have not left since: the request must not return in them."""
        if st.doc is None:
            return st.registered_at > 0
        return self.instance_id in (st.doc.get(TURNS) or ())

    def _linger(self, st: _Series) -> None:
        """The last request of an instance in the turns leaves them before it returns, unless another request
        starts waiting within ``linger_s`` (then the instance keeps its place: under a sustained load it would
        otherwise leave and rejoin every cycle, each rejoin failing the holder's commit once).

        Why the request and not the allocator thread: once an instance has no request in flight its CPU may be
        throttled (Cloud Run) or the process stopped, and a lease passed to it would block the series until it
        ran out (``lease_s``). A lease that reached us meanwhile is passed on by our thread before we return.
        """
        try:
            deadline = time.monotonic() + self.linger_s
            with st.cond:
                while not st.waiting and self._in_turns(st) and time.monotonic() < deadline:
                    st.cond.wait(max(deadline - time.monotonic(), 0.001))
                if st.waiting or not self._in_turns(st):
                    return
            self._leave(st)
            until = time.monotonic() + self.lease_s
            while True:  # judged on a fresh read each time: our thread's copy is dropped when a commit of it fails
                doc = self._poll(st)
                with st.cond:
                    if not self._mine(doc) or st.waiting or time.monotonic() > until:
                        return
                    if st.thread is None:
                        self._start(st)
                    st.cond.notify_all()
                    st.cond.wait(0.05)
        finally:
            with st.cond:
                st.leaving = False

    def _series_for(self, series_id: str, collection: str) -> _Series:
        with self._series_lock:
            return self._series.setdefault(series_id, _Series(series_id, collection))

    # -- 3. the allocator thread ------------------------------------------------------------------
    def _start(self, st: _Series) -> None:
        """Start the series' allocator thread (caller holds ``st.cond``)."""
        st.thread = threading.Thread(target=self._run, args=(st,), name=f"allocator {st.series_id}", daemon=True)
        st.thread.start()

    def _run(self, st: _Series) -> None:
        """Observe the series, read what its commits numbered, lead when the lease is free; until idle.

        The listener starts only once another allocator is seen at work (its lease, a lost commit) or a
        stored document of ours waits in the queue: every snapshot it receives is a billed read, and an
        instance that numbers alone learns everything from its own commits.

        Any failure ends the thread and fails the requests waiting at that moment (Pub/Sub redelivers
        them); their documents stay queued or numbered, never half of each.
        """
        watch = None
        failed = False
        try:
            while self._step(st) or self._passed_while_leaving(st):
                if watch is None and self.listen and self._contended(st):
                    watch = self.series_ref(st.series_id).on_snapshot(lambda docs, _c, _t: self._on_snapshot(st, docs))
        except BaseException as exc:  # delivered to the waiting requests, which raise it
            failed = True
            log.warning("allocator failed", extra={"series_id": st.series_id, "error": type(exc).__name__})
            with st.cond:
                for w in st.waiting.values():
                    w.settle(error=exc)
        finally:
            if watch is not None:
                watch.unsubscribe()
            with st.cond:
                st.thread = None
                if failed or watch is not None:  # a later thread starts from a fresh observation
                    st.doc, st.version = None, None
                st.to_read.clear()
                if st.unresolved():  # a request started waiting while we were stopping
                    self._start(st)

    def _contended(self, st: _Series) -> bool:
        """Whether this process must hear of other allocators' commits (see ``_run``)."""
        with st.cond:
            if not st.unresolved():
                return False
            return st.doc is None or st.queued_waiting() or not self._lease_free(st.doc)

    def _on_snapshot(self, st: _Series, docs: list[Any]) -> None:
        snap = docs[0] if docs else None
        with st.cond:
            doc, version = self._seen(snap)
            st.observe(doc, 4 * self.batch_size, version)

    @staticmethod
    def _seen(snap: Any) -> tuple[dict[str, Any], Any]:
        """(document, update_time) of a series document snapshot ({} and None when absent)."""
        if snap is None or not snap.exists:
            return {}, None
        return snap.to_dict() or {}, snap.update_time

    def _step(self, st: _Series) -> bool:
        """One round of the thread; False when it should stop (no waiter for ``idle_s``)."""
        with st.cond:
            while True:
                now = time.monotonic()
                pending = st.unresolved()
                mine = self._mine(st.doc)  # the lease was passed to us: take the turn (or pass it on, empty)
                if not pending and not mine and now - st.last_active > self.idle_s:
                    return False
                paths = {p for p in st.to_read if p in pending}
                # A document created in its numbering commit is not read while it waits (it is not stored).
                paths.update(
                    p for p in pending if st.waiting[p].new is None and now - st.waiting[p].checked > self.recheck_s
                )
                st.to_read.clear()
                if paths:
                    action = "read"
                    break
                may_lead = mine or (bool(pending) and now >= st.lead_after and self._lease_free(st.doc))
                fresh = st.doc is not None and now - st.seen_at <= self.poll_s
                behind = fresh and not may_lead and bool(pending) and not self._lease_free(st.doc)
                if behind:
                    action = self._behind(st, now, pending)
                    if action:
                        break
                else:
                    st.held_key = None
                # A stale observation that shows the lease free is led on without a read first: the commit
                # is conditioned on that version, and a failed one makes the next round read (st.doc None).
                if (pending or mine) and (st.doc is None or (now - st.seen_at > self.poll_s and not may_lead)):
                    action = "poll"
                    break
                if may_lead:
                    action = "lead"
                    break
                wait = self._sleep_s(st, pending)
                if behind and any(st.waiting[p].new is not None for p in pending):  # until we would spill
                    wait = min(wait, max(st.held_since + self.spill_s - now, 0.0) + 0.001)
                st.cond.wait(wait)
        if action == "read":
            self._read(st, sorted(paths))
        elif action == "join":
            self._join(st)
        elif action == "spill":
            self._spill(st, [p for p in pending if st.waiting.get(p) is not None and st.waiting[p].new is not None])
        elif action == "poll":
            self._poll(st)
        elif not self._lead(st):
            # Nothing of ours was queued: a commit that landed before our query numbered it. The series document
            # records that commit (``last_batch``): read it now rather than wait for the listener, which may lag
            # under load (our documents are read only if it does not settle them: versions skipped).
            self._poll(st)
            with st.cond:
                now = time.monotonic()
                for p in st.unresolved():
                    w = st.waiting[p]
                    if w.new is None:
                        w.checked = min(w.checked, now - self.recheck_s + self.poll_s)
                st.lead_after = now + self.poll_s
        return True

    def _poll(self, st: _Series) -> dict[str, Any] | None:
        """Read the series document (its listener is silent, or not started, or a judgment needs a fresh read);
        what was read."""
        doc, version = self._seen(self.series_ref(st.series_id).get())
        with st.cond:
            st.observe(doc, 4 * self.batch_size, version)
            st.seen_at = time.monotonic()  # read just now, even if what we hold was as new: no poll loop
        return doc

    def _behind(self, st: _Series, now: float, pending: list[str]) -> str:
        """Another allocator holds the lease (a sustained load): "join" its turns (it passes the lease to us
        after its commit; our new documents stay in memory meanwhile), or "spill" them, stored queued so its
        queue query numbers them, when it keeps the lease for ``spill_s`` (hung, or an allocator that does not
        take turns); "" to wait (caller holds ``cond``)."""
        doc = st.doc or {}
        key = doc.get("lease_owner")  # not its commits: an allocator that keeps the lease may commit all along
        if key != st.held_key:
            st.held_key, st.held_since = key, now
        if self.instance_id not in (doc.get(TURNS) or ()) and now - st.registered_at > self.poll_s:
            return "join"
        if now - st.held_since > self.spill_s and any(st.waiting[p].new is not None for p in pending):
            return "spill"
        return ""

    def _passed_while_leaving(self, st: _Series) -> bool:
        """Before the thread stops: leave the turns if we joined them; whether the lease came to us meanwhile
        (then the thread goes on and passes it: a stopped allocator holding it would block the series)."""
        with st.cond:
            joined = st.registered_at > 0 or self.instance_id in ((st.doc or {}).get(TURNS) or ())
            st.registered_at = -1e9
        if not joined:
            return False
        self._leave(st)
        self._poll(st)
        with st.cond:
            return self._mine(st.doc)

    def _mine(self, doc: dict[str, Any] | None) -> bool:
        """Whether the series document shows the lease held by this allocator (passed to us, or left by us)."""
        return doc is not None and doc.get("lease_owner") == self.instance_id and not self._lease_free(doc)

    def _join(self, st: _Series) -> None:
        """Add this allocator to the series' turns (one write, no precondition: it only adds our id).

        Its holder's next commit then fails once (the series document changed under it), and its retry sees
        us and passes the lease to us after that batch: no instance starves behind a busy leader.
        """
        from google.cloud import firestore as fs

        with st.cond:
            st.registered_at = time.monotonic()
        self._turns_write(st, fs.ArrayUnion([self.instance_id]))  # not written: we join again after ``poll_s``

    def _leave(self, st: _Series) -> None:
        """Take this allocator out of the turns (a holder would pass the lease to us)."""
        from google.cloud import firestore as fs

        with st.cond:
            st.registered_at = -1e9
        self._turns_write(st, fs.ArrayRemove([self.instance_id]))

    def _turns_write(self, st: _Series, change: Any) -> bool:
        """Join or leave the turns; whether it was written. A write the server aborts (contention on the hot
        series document) is tried again under the shared retry helper, a few times, then given up: neither ever
        fails a request (left in the turns, a lease passed to us while we no longer take turns runs out after
        ``handoff_s``, and whoever takes it over drops us)."""
        from google.api_core.exceptions import Conflict, NotFound
        from google.cloud import firestore as fs

        def write() -> bool:
            try:
                self.series_ref(st.series_id).update({TURNS: change, "commits": fs.Increment(1)})
            except NotFound:  # the series document is gone (a test reset): the next poll sees the lease free
                return False
            except Conflict as exc:  # ABORTED: too much contention; an unconditional update is simply sent again
                raise Stale(str(exc)) from exc
            self.stats.add(turns=1)
            return True

        try:
            return retry_on_contention(write, what=f"the turns of {st.series_id}", policy=TURNS_POLICY)
        except ContentionError:
            log.warning("turns not written", extra={"series_id": st.series_id})
            return False

    def _spill(self, st: _Series, paths: list[str]) -> None:
        """Store new documents queued (one batch of creates) while another allocator leads; they then wait
        like any queued document. One already stored is left as it is and read (numbered or queued)."""
        from google.api_core.exceptions import AlreadyExists, Conflict

        with st.cond:
            docs = {p: st.waiting[p].new for p in paths if p in st.waiting and st.waiting[p].new is not None}
        if not docs:  # stored meanwhile (the allocator thread and a request giving up may both try)
            return
        batch = self.db.batch()
        for path, doc in docs.items():
            batch.create(self.db.document(path), doc)
        stored: list[str] = []
        try:
            batch.commit()
        except (AlreadyExists, Conflict):  # one is stored already: create them one by one
            for path, doc in docs.items():
                try:
                    self.db.document(path).create(doc)
                except (AlreadyExists, Conflict):
                    stored.append(path)
        self.stats.add(spilled=len(docs) - len(stored))
        with st.cond:
            for path in docs:
                w = st.waiting.get(path)
                if w is not None:
                    w.new, w.checked = None, time.monotonic()
            st.to_read.update(stored)
            st.cond.notify_all()

    def _sleep_s(self, st: _Series, pending: list[str]) -> float:
        """Until the next thing that can happen without a notification: a lease running out, a poll."""
        if not pending:
            return self.idle_s
        wake = self.poll_s
        until = (st.doc or {}).get(self._lease.schema.lease_attr)
        if isinstance(until, dt.datetime):
            wake = min(wake, max((until - self.clock()).total_seconds(), 0.0) + 0.001)
        later = st.lead_after - time.monotonic()
        return max(min(wake, later) if later > 0 else wake, 0.001)

    def _lease_free(self, doc: dict[str, Any] | None) -> bool:
        return doc is not None and decide(self._lease.schema, doc, self.clock()) is not Decision.BUSY

    def _read(self, st: _Series, paths: Iterable[str]) -> None:
        """Read waiters' documents (one ``get_all``); hand over those numbered, or gone."""
        refs = [self.db.document(p) for p in paths]
        got: dict[str, dict[str, Any] | None] = {}
        for snap in self.db.get_all(refs):
            d = snap.to_dict() if snap.exists else None
            got[snap.reference.path] = d
        self.stats.add(read=len(refs))
        now = time.monotonic()
        with st.cond:
            for path, d in got.items():
                w = st.waiting.get(path)
                if w is None or w.event.is_set():
                    continue
                if d is None and w.new is not None:  # not created yet: it goes into one of our commits
                    w.checked = now
                elif d is None:
                    w.settle({})
                elif d.get("seq"):
                    w.settle(dict(d))
                else:
                    w.checked = now

    # -- 4. leading: group commits ------------------------------------------------------------------
    def _lead(self, st: _Series) -> bool:
        """Take the lease, then commit batch after batch while this process has requests waiting.

        With the series document's version known (observed, or left by our own last commit), the lease is
        taken by the first batch's commit itself, conditioned on that version: no separate claim (a read
        and a write) and, at a trickle, no lease round at all (the commit takes and releases it at once).
        A series never written yet is claimed through the shared claim primitive (it creates the document).
        The query for the next batch runs while the current commit is in flight (it skips that commit's
        documents), so a document queued during a commit goes into the very next one. Returns whether the
        session numbered anything (or the lease was busy or lost after all).
        """
        from google.cloud import firestore as fs

        owner = self.instance_id
        with st.cond:
            known = (st.doc, st.version) if st.doc and st.version is not None else None
            holding = known is None or self._mine(st.doc)  # a lease passed to us is passed on or released
            doc = st.doc or {}
            # an expired lease we take over: its holder leaves the turns (it rejoins if it is alive after all)
            stale = doc.get("lease_owner") if doc.get("lease_owner") != owner and self._lease_free(doc) else None
        if known is not None:
            claimed = Claim(Outcome.OWNED, self.series_ref(st.series_id), known[1], dict(known[0]), schema=SERIES_LEASE)
        else:
            claimed = self._lease.claim(
                self.series_ref(st.series_id),
                self.clock(),
                fields={"lease_owner": owner, "counter": 0, "commits": 1},
                takeover_fields={"lease_owner": owner, "commits": fs.Increment(1)},
                read_first=True,
            )
            if claimed.outcome is not Outcome.OWNED:  # somebody else leads: we will hear of their commits
                with st.cond:
                    if claimed.record is not None:
                        st.observe(claimed.record, 4 * self.batch_size, claimed.version)
                    else:
                        st.lead_after = time.monotonic() + self.poll_s
                return True
            self.stats.add(writes=1)
        with st.cond:
            st.leading = True
        try:
            numbered = self._session(st, claimed, owner, holding=holding, stale=stale)
        except BaseException:
            with st.cond:  # as a dead process would: hand nothing over (the caller fails our waiters)
                st.leading = st.sustained = False
            raise
        with st.cond:  # what the listener saw while we led (a leader after us, had our lease run out)
            st.leading = st.sustained = False
            for path in st.unresolved():
                if path in st.recent and st.waiting[path].new is None:
                    st.waiting[path].settle(st.recent[path])
                elif path in st.recent:
                    st.to_read.add(path)
        return numbered

    def _session(self, st: _Series, claimed: Claim, owner: str, *, holding: bool, stale: Any = None) -> bool:
        """Batches under the lease ``claimed``, until released, passed or lost; whether any number was assigned.

        ``holding``: the lease was claimed before or passed to us (it must be released or passed on); else the
        first commit takes it. While other allocators wait in the turns, a session is ONE commit that passes
        the lease to the next of them (``stale``: a holder whose lease ran out, dropped from the turns).
        """
        counter = int((claimed.record or {}).get("counter", 0))
        numbered = 0
        last_commit = 0.0
        # A lease taken over from a holder whose lease ran out: whatever waits stored queued (spilled behind it,
        # or another instance's drafts) is found by the queue query and numbered in this very commit.
        sweep = stale is not None
        foreign = False  # this session numbered a stored document none of our requests waits for
        prepared = _in_background(functools.partial(self._prepare, st, set(), counter, sweep))
        while True:
            cands, batch, assigned, seq = prepared.result()
            full = len(cands) >= self.batch_size
            with st.cond:  # lead only while our own requests wait (see the module docstring)
                more = bool(cands) and (full or any(p not in assigned for p in st.unresolved()))
                foreign = foreign or any(not new and p in assigned and p not in st.waiting for p, new in cands)
                turns, pass_to = self._turns_after(st.doc or claimed.record or {}, stale, stay=bool(cands))
            others = pass_to is not None  # others wait for their turn: this commit passes the lease on, or frees it
            if foreign:
                # The instance next in the turns may have been waiting only for what we just numbered: passed the
                # lease, it would have to write the series document with nothing to number. So the lease is not
                # passed but released: an instance that still waits sees it free and leads.
                pass_to = None
            held = more and not others
            if not cands and not holding:  # nothing to number and no lease taken: nothing to write
                return numbered > 0
            # Pace partial batches: at most one counter write per ``min_interval_s`` unless the queue
            # fills a whole batch, so the counter's write rate stays bounded whatever the load.
            wait = last_commit + self.min_interval_s - time.monotonic()
            if wait > 0 and not full:
                time.sleep(wait)
            last_commit = time.monotonic()
            if held:  # the next batch is queried and built while this one is committed (a sustained load: the
                # queue query runs too, for what instances waiting behind our lease stored queued)
                prepared = _in_background(functools.partial(self._prepare, st, {p for p, _ in cands}, seq, True))
                with st.cond:
                    st.sustained = True
            version = self._commit(
                st,
                batch,
                lease=claimed,
                owner=owner,
                assigned=assigned,
                seq=seq,
                held=held,
                cands=len(cands),
                pass_to=pass_to,
                turns=turns,
            )
            if version is _EXISTS:  # a document to create exists (a redelivery): settle it from the store, retry
                if held:
                    prepared.result()  # built on this batch's numbers: discarded
                if not self._settle_existing(st, [p for p, new in cands if new]):
                    return True
                prepared = _in_background(functools.partial(self._prepare, st, set(), counter, sweep))
                continue
            if version is None:  # the lease is not ours (it ran out and was taken over, or our view was stale)
                with st.cond:
                    st.doc = None  # the next round reads the series document before anything else
                return True
            claimed = dataclasses.replace(claimed, version=version)
            counter, holding, stale, sweep = seq, held, None, False
            numbered += len(assigned)
            with st.cond:  # documents other processes' commits numbered for us, if the listener missed them
                pending = st.unresolved()
                paths = sorted(p for p in st.to_read if p in pending)
                st.to_read.clear()
            if paths:
                self._read(st, paths)
            if not held:
                return numbered > 0

    def _turns_after(self, doc: dict[str, Any], stale: Any, *, stay: bool) -> tuple[list[str], str | None]:
        """(the turns our commit writes, the allocator it passes the lease to, None when no other waits).

        Round-robin: the next after us in ring order. ``stay``: this turn numbered something of ours, so we
        keep our place (an instance under load is not dropped and re-added every cycle, each re-adding
        failing the holder's commit once); a turn that finds nothing of ours leaves the ring.
        """
        me = self.instance_id
        turns = list(dict.fromkeys(t for t in (doc.get(TURNS) or ()) if isinstance(t, str) and t != stale))
        others = [t for t in turns if t != me]
        if not others:
            return [], None
        if me in turns:
            i = turns.index(me)
            nxt = next(t for t in turns[i + 1 :] + turns[:i] if t != me)
        else:
            nxt = others[0]
        if stay and me not in turns:
            turns.append(me)
        elif not stay:
            turns = others
        return turns, nxt

    def _settle_existing(self, st: _Series, paths: list[str]) -> bool:
        """After a commit refused a create: hand the stored documents to their waiters; whether any existed."""
        if not paths:
            return False
        found = False
        for snap in self.db.get_all([self.db.document(p) for p in paths]):
            if snap.exists:
                found = True
                with st.cond:
                    w = st.waiting.get(snap.reference.path)
                    stored = dict(snap.to_dict() or {})
                    # the create's waiter takes the stored copy (its caller queues it when unnumbered);
                    # a waiter for a number takes only a numbered one
                    if w is not None and (w.new is not None or stored.get("seq")):
                        w.settle(stored)
        self.stats.add(read=len(paths))
        return found

    def _prepare(
        self, st: _Series, inflight: set[str], counter: int, sustained: bool
    ) -> tuple[list[tuple[str, bool]], Any, dict[str, Any], int]:
        """The next batch, numbered after ``counter``, skipping the documents of the commit in flight
        (the query may see them still queued) -> ((path, created here) candidates, batch, numbering fields
        by path, last seq). Stored documents come from the queue query, run only while one of ours waits
        there or the session is ``sustained`` (past its first batch: other instances may have stored theirs);
        documents to create come from this process's waiters.
        """
        with st.cond:
            queued = sustained or st.queued_waiting()
            new = {p: dict(w.new) for p, w in st.waiting.items() if w.new is not None and w.result is None}
            encoded = {p: st.waiting[p].encoded for p in new}
        rows: list[tuple[Any, str, str, Any, dict[str, Any], bool]] = []
        if queued:
            for c in self._queued(st, len(inflight)):
                if c.reference.path not in inflight:
                    rows.append((c.get(QUEUED_AT), c.id, c.reference.path, c.reference, c.to_dict() or {}, False))
        stored = {r[2] for r in rows}
        for path, d in new.items():
            if path not in inflight and path not in stored:
                rows.append((d[QUEUED_AT], path.rsplit("/", 1)[-1], path, self.db.document(path), d, True))
        rows.sort(key=lambda r: (r[0], r[1]))
        rows = rows[: self.batch_size]
        batch, assigned, seq = self._build(st, rows, counter, encoded)
        return [(r[2], r[5]) for r in rows], batch, assigned, seq

    def _queued(self, st: _Series, skip: int) -> list[Any]:
        """The oldest queued documents of the series (``skip`` more, for those of the commit in flight)."""
        from google.cloud.firestore_v1.base_query import FieldFilter

        queued = self.db.collection(st.collection).where(filter=FieldFilter(QUEUE, "==", st.series_id))
        # Only the fields numbering needs: the documents themselves (lines, parties) stay on the server.
        fields_needed = [QUEUED_AT, "seq", SERIES_DEF, "status_after"]
        return list(queued.select(fields_needed).order_by(QUEUED_AT).limit(self.batch_size + skip).stream())

    def _build(
        self,
        st: _Series,
        rows: list[tuple[Any, str, str, Any, dict[str, Any], bool]],
        counter: int,
        encoded: dict[str, Any] | None = None,
    ) -> tuple[Any, dict[str, dict[str, Any]], int]:
        """The batch numbering ``rows`` (in order) after ``counter`` -> (batch, numbering fields by path, last seq).

        A stored document is updated with its number; a new one is created with it (``create``: if it
        exists after all, the whole commit fails and nothing is numbered).
        """
        from google.cloud import firestore as fs

        batch = self.db.batch()
        seq = counter
        assigned: dict[str, dict[str, Any]] = {}
        for _at, _id, path, ref, d, created_here in rows:
            if d.get("seq") and not created_here:  # numbered but still queued (cannot happen through enqueue)
                batch.update(ref, {QUEUE: fs.DELETE_FIELD})
                continue
            seq += 1
            fields = {
                "seq": seq,
                "number": self._definition(d[SERIES_DEF]).format(seq, d[QUEUED_AT]),
                "status": d["status_after"],
                "finalized_at": d[QUEUED_AT],
                "series_id": st.series_id,
            }
            if created_here:
                write = numbered_write((encoded or {}).get(path), fields)
                add_pbs = getattr(batch, "_add_write_pbs", None)  # the library's batch method (version pinned)
                if write is not None and add_pbs is not None:  # encoded by the request's thread: numbering added
                    add_pbs([write])
                else:
                    batch.create(ref, {**{k: v for k, v in d.items() if k != QUEUE}, **fields})
            else:
                batch.update(ref, {**fields, QUEUE: fs.DELETE_FIELD})
            assigned[path] = fields
        return batch, assigned, seq

    def _definition(self, raw: Any) -> SeriesDef:
        """The series definition a queued document carries (parsed once per distinct definition)."""
        key = tuple(sorted(raw.items())) if isinstance(raw, dict) else None
        found = self._definitions.get(key) if key is not None else None
        if found is None:
            found = SeriesDef.from_fields(raw)
            if key is not None:
                self._definitions[key] = found
        return found

    def _commit(
        self,
        st: _Series,
        batch: Any,
        *,
        lease: Claim,
        owner: str,
        assigned: dict[str, dict[str, Any]],
        seq: int,
        held: bool,
        cands: int,
        pass_to: str | None = None,
        turns: list[str] | None = None,
    ) -> Any:
        """Commit the batch with the counter write; the series document's new update_time, None when the
        lease is not ours, ``_EXISTS`` when a document to create exists already (nothing was written).
        ``held``: keep the lease; else pass it to ``pass_to`` (a fresh lease in its name), or release it."""
        from google.api_core.exceptions import AlreadyExists, Conflict, FailedPrecondition, NotFound
        from google.cloud import firestore as fs

        now = self.clock()
        head = {
            "counter": seq,
            "commits": fs.Increment(1),
            "lease_owner": owner if held else pass_to,
            **(
                self._lease.lease_fields(now)
                if held
                # a passed lease is short: an instance stopped since it was last seen blocks the series this long
                else {self._lease.schema.lease_attr: now + dt.timedelta(seconds=self.handoff_s)}
                if pass_to
                else self._lease.release_fields()
            ),
            TURNS: turns or [],
            LAST_BATCH: batch_record(assigned),
            "updated_at": now,
        }
        # The counter write, conditional on the series document being exactly what our last write left:
        # any other allocator's write in between changes it, and then this whole commit (numbers
        # included) fails.
        batch.update(lease.ref, head, option=precondition(lease.version))
        try:
            results = batch.commit()
        except AlreadyExists:
            return _EXISTS
        except (FailedPrecondition, NotFound, Conflict):
            return None
        version = results[-1].update_time
        self.stats.add(writes=1, numbered=len(assigned), dropped=cands - len(assigned))
        with st.cond:  # our own write is our newest observation: the next session needs no read
            # unless the listener delivered this very commit (or a later one) first: that copy is the exact one,
            # and ours, built on it, would count one commit too many (later versions would look older)
            if st.doc is None or st.version is None or st.version < version:
                base = st.doc if st.doc is not None else (lease.record or {})
                st.doc = {
                    **base,
                    "counter": seq,
                    "commits": int(base.get("commits", 0)) + 1,
                    "lease_owner": head["lease_owner"],
                    self._lease.schema.lease_attr: head[self._lease.schema.lease_attr],
                    TURNS: head[TURNS],
                    LAST_BATCH: head[LAST_BATCH],
                    "updated_at": now,
                }
                st.version, st.seen_at = version, time.monotonic()
        if assigned and self.after_batch is not None:  # first: a process dying after its commit hands nothing over
            self.after_batch(st.series_id, len(assigned))
        self._hand_over(st, assigned)
        if assigned:
            log.info("numbers allocated", extra={"series_id": st.series_id, "numbered": len(assigned), "last": seq})
        return version

    def _hand_over(self, st: _Series, assigned: dict[str, dict[str, Any]]) -> None:
        """Give this process's waiters the numbering fields just committed (no need to read them back)."""
        with st.cond:
            for path, fields in assigned.items():
                w = st.waiting.get(path)
                if w is not None:
                    w.settle(fields)


def encode_create(db: Any, doc_path: str, doc: dict[str, Any]) -> Any:
    """The create ``Write`` protobuf of ``doc`` (queue field left out), built by the waiting request's thread.

    Why: encoding a document of an invoice's size through the client library costs about 1 ms of CPU; built
    at commit time, a turn of 50 invoices spent 50 ms encoding while every other instance waited for the
    lease. Here each request encodes its own document in parallel with the turns, as a plain create would,
    and the holder only adds the numbering fields (``numbered_write``). The library's own encoder, so the
    write is the one ``WriteBatch.create`` would send (``tests/unit/invoices/test_numbering_turns.py``);
    None (the library path at commit time) for a client that is not the library's or a changed library.
    """
    try:
        from google.cloud.firestore_v1 import _helpers
        from google.cloud.firestore_v1.types import write as write_types

        ref = db.document(doc_path)
        [write] = _helpers.pbs_for_create(ref._document_path, {k: v for k, v in doc.items() if k != QUEUE})
        return write_types.Write.pb(write)
    except Exception:  # a test double, or a library without these helpers
        return None


def numbered_write(encoded: Any, fields: dict[str, Any]) -> Any:
    """A copy of an ``encode_create`` write with the numbering ``fields`` set (None when there is none)."""
    if encoded is None:
        return None
    from google.cloud.firestore_v1 import _helpers
    from google.cloud.firestore_v1.types import document as doc_types
    from google.cloud.firestore_v1.types import write as write_types

    pb = type(encoded)()
    pb.CopyFrom(encoded)
    for name, value in fields.items():
        pb.update.fields[name].CopyFrom(doc_types.Value.pb(_helpers.encode_value(value)))
    return write_types.Write.wrap(pb)


def counter_commits(db: Any, series_id: str) -> tuple[int, int]:
    """(last number allocated, counter commits) of a series, as recorded on its document."""
    snap = db.collection(SERIES).document(series_id).get()
    d = (snap.to_dict() or {}) if snap.exists else {}
    return int(d.get("counter", 0)), int(d.get("commits", 0))
