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
"""

from __future__ import annotations

import datetime as dt
import enum
import hashlib
import zlib
from dataclasses import dataclass
from typing import Any

COLLECTION = "webhook_events"
LEASE_S = 30
RPC_TIMEOUT_S = 5.0
INLINE_RAW_MAX = 256 * 1024  # larger payloads are stored zlib-compressed (Firestore: 1 MiB per document)
STORED_RAW_MAX = 900 * 1024

RECEIVED = "received"
PUBLISHED = "published"
IGNORED = "ignored"
REJECTED = "rejected"
FINAL = (PUBLISHED, IGNORED, REJECTED)


class Claim(enum.Enum):
    OWNED = "owned"  # we created or took over the record: publish, then finish
    DONE = "done"  # published or ignored before: acknowledge, do nothing
    BUSY = "busy"  # another request holds the lease right now


@dataclass(frozen=True, slots=True)
class Claimed:
    outcome: Claim
    ref: Any
    version: Any = None


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
    """Create the record, or decide from the existing one whether this request may publish."""
    from google.api_core.exceptions import AlreadyExists, Conflict, FailedPrecondition, NotFound

    ref = db.collection(COLLECTION).document(doc_id)
    lease = now + dt.timedelta(seconds=LEASE_S)
    for _ in range(3):
        try:
            wr = ref.create({**record, "state": RECEIVED, "lease_until": lease, "attempts": 1}, timeout=RPC_TIMEOUT_S)
            return Claimed(Claim.OWNED, ref, wr.update_time)
        except (AlreadyExists, Conflict):
            pass
        snap = ref.get(timeout=RPC_TIMEOUT_S)
        if not snap.exists:
            continue
        d = snap.to_dict() or {}
        if d.get("state") in FINAL:
            return Claimed(Claim.DONE, ref)
        held = d.get("lease_until")
        if isinstance(held, dt.datetime) and held > now:
            return Claimed(Claim.BUSY, ref)
        from google.cloud.firestore import Increment

        try:
            wr = ref.update(
                {"lease_until": lease, "attempts": Increment(1)},
                option=db.write_option(last_update_time=snap.update_time),
                timeout=RPC_TIMEOUT_S,
            )
        except (FailedPrecondition, NotFound):
            return Claimed(Claim.BUSY, ref)
        return Claimed(Claim.OWNED, ref, wr.update_time)
    return Claimed(Claim.BUSY, ref)


def finish(claimed: Claimed, state: str, **fields: Any) -> None:
    """Mark the record final. A final state makes the lease irrelevant, and the document's own
    ``update_time`` tells when it was finished, so the write carries nothing else (hot path)."""
    claimed.ref.update({"state": state, **fields}, timeout=RPC_TIMEOUT_S)


def release(claimed: Claimed) -> None:
    """Best effort after a failure: end our lease so the PSP's next retry need not wait for it."""
    try:
        claimed.ref.update(
            {"lease_until": dt.datetime(1970, 1, 1, tzinfo=dt.UTC)},
            option=claimed.ref._client.write_option(last_update_time=claimed.version),
            timeout=RPC_TIMEOUT_S,
        )
    except Exception:  # noqa: S110 (the outage may still be on; the lease then simply expires)
        pass
