"""The journal on Firestore: ``ledger_entries/{entry id}``, created once, never updated or deleted.

Why ``create()``: the entry id derives from its cause, so a redelivered cause fails the create and
changes nothing; a different entry under the same cause is refused loudly (:class:`ConflictingEntry`).
A batch of new entries is one commit; only when a commit meets an existing entry (a redelivery) are its
entries created one by one.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Any

from shared.ledger.journal import Balances, ConflictingEntry, Entry, fold
from shared.log import get_logger

log = get_logger(__name__)

ENTRIES = "ledger_entries"
_CHUNK = 400


def post(db: Any, entries: Iterable[Entry]) -> int:
    """Append entries that are not there yet; returns how many were written."""
    from google.api_core.exceptions import AlreadyExists, Conflict

    todo = [e for e in entries if not e.empty]
    written = 0
    col = db.collection(ENTRIES)
    for i in range(0, len(todo), _CHUNK):
        chunk = todo[i : i + _CHUNK]
        batch = db.batch()
        for e in chunk:
            batch.create(col.document(e.id), e.to_doc())
        try:
            batch.commit()
            written += len(chunk)
            continue
        except (AlreadyExists, Conflict):
            pass
        for e in chunk:
            try:
                col.document(e.id).create(e.to_doc())
                written += 1
            except (AlreadyExists, Conflict):
                snap = col.document(e.id).get()
                if snap.exists and Entry.from_doc(snap.to_dict() or {}, e.id).postings != e.postings:
                    log.error("conflicting ledger entry", extra={"cause": e.cause})
                    raise ConflictingEntry(f"entry {e.cause!r} exists with other postings") from None
    return written


def get(db: Any, entry_id: str) -> Entry | None:
    snap = db.collection(ENTRIES).document(entry_id).get()
    return Entry.from_doc(snap.to_dict() or {}, entry_id) if snap.exists else None


def entries(db: Any) -> Iterator[Entry]:
    for snap in db.collection(ENTRIES).stream():
        yield Entry.from_doc(snap.to_dict() or {}, snap.id)


def balances(db: Any) -> Balances:
    """Derived on read, from every entry: balances are never stored."""
    return fold(entries(db))
