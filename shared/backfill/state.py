"""Where each (psp, account) backfill stands: a watermark, the window in progress and its cursor.

One Firestore document ``backfill_state/<psp>:<account>``, which is also the lease of the run: a
claim of the shared primitive (:mod:`shared.idempotency.claims`, a reusable lease: no final state), so
overlapping ticks do not list the same pages twice; correctness does not rest on it (every event goes
through the webhook's own dedupe record). Every progress write is a compare-and-set
(:func:`shared.idempotency.cas.update_if_unchanged`) that only succeeds while the run still owns the
lease, so a run that lost it (it outlived the lease) cannot move the cursor of the run that took over.

Why a cursor as well as a watermark: a window larger than the page budget of one tick is finished by
the next ticks from where the last one stopped, and a PSP failure mid-window loses only the page in
flight. The watermark (the end of the last finished window) moves only when a window is finished.
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from shared.backfill.base import Window
from shared.idempotency import Claims, Outcome, Schema
from shared.idempotency.cas import update_if_unchanged

COLLECTION = "backfill_state"
SCHEMA = Schema(state_attr=None, lease_attr="lease_until", release_deletes=False)


class LeaseLost(Exception):
    """Another run took this account over (ours outlived its lease): stop without writing."""


@dataclass(frozen=True, slots=True)
class Progress:
    watermark: dt.datetime | None  # every event created before it has been compared
    window: Window | None  # the window in progress, if a run stopped inside one
    cursor: str | None  # where that window's next page starts


@dataclass(frozen=True, slots=True)
class Run:
    """An owned lease on one account's state."""

    ref: Any
    owner: str
    progress: Progress
    release: Mapping[str, Any]


def progress_of(doc: Mapping[str, Any]) -> Progress:
    start, end = doc.get("window_start"), doc.get("window_end")
    window = Window(start, end) if isinstance(start, dt.datetime) and isinstance(end, dt.datetime) else None
    mark = doc.get("watermark")
    cursor = doc.get("cursor")
    return Progress(
        mark if isinstance(mark, dt.datetime) else None,
        window,
        str(cursor) if window is not None and cursor else None,
    )


def acquire(db: Any, psp: str, account: str, now: dt.datetime, lease_s: float) -> Run | None:
    """The account's lease and progress, or None while another run holds it."""
    claims = Claims(SCHEMA, lease_s=lease_s)
    owner = uuid.uuid4().hex
    ref = db.collection(COLLECTION).document(f"{psp}:{account}")
    fields = {"psp": psp, "account": account, "owner": owner}
    claimed = claims.claim(ref, now, fields=fields, takeover_fields={"owner": owner}, read_first=True)
    if claimed.outcome is not Outcome.OWNED:
        return None
    return Run(ref, owner, progress_of(claimed.record or {}), claims.release_fields())


def save(run: Run, fields: Mapping[str, Any], *, release: bool = False) -> None:
    """Write progress while the lease is ours (compare-and-set); raises :class:`LeaseLost` otherwise."""
    lost: list[bool] = []

    def change(doc: dict[str, Any] | None) -> dict[str, Any] | None:
        if doc is None or doc.get("owner") != run.owner:
            lost.append(True)
            return None
        return {**fields, **(run.release if release else {})}

    update_if_unchanged(run.ref, change)
    if lost:
        raise LeaseLost(f"{run.ref.id}: another run owns the backfill state")
