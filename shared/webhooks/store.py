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
"""

from __future__ import annotations

import datetime as dt
import hashlib
import zlib
from typing import Any

from shared.idempotency import Claim as ClaimRecord
from shared.idempotency import Claims, Outcome, Schema

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
    return CLAIMS.claim(db.collection(COLLECTION).document(doc_id), now, fields=record)


def finish(claimed: Claimed, state: str, **fields: Any) -> None:
    """Mark the record final. A final state makes the lease irrelevant, and the document's own
    ``update_time`` tells when it was finished, so the write carries nothing else (hot path). It is not
    conditioned on our lease: the event WAS published (or ignored), whoever holds the lease now."""
    CLAIMS.complete(claimed, state=state, fields=fields, if_owner=False)


def release(claimed: Claimed) -> None:
    """Best effort after a failure: end our lease so the PSP's next retry need not wait for it."""
    CLAIMS.release(claimed)
