"""Firestore layout of subscriptions and charge attempts, and the conversion to the pure domain.

``subscriptions/{id}``: what was sold (customer, plan, payment method) plus the lifecycle fields of
:class:`~shared.domain.subscriptions.SubState`, and two planner fields: ``due_at`` (next time the
planner has work; None when there is none) and ``shard`` (a fixed virtual shard 0..255). The planner's query is
``shard == s AND due_at <= now ORDER BY due_at`` on the composite index (shard, due_at), so a tick
touches only due documents, never the whole collection.

``renewal_publishes/{id}``: one per planner invocation that claimed something: ``publishing`` under a
wall-clock lease while it claims and publishes, ``acked`` once every message it published is acknowledged,
``failed`` when a publish failed. Claimed subscriptions point at it (``publish_batch``), so a later tick
can tell a lost RenewalDue (re-send it) from one that is durably queued or still being published (wait).

``charge_attempts/{invoice_id}:{attempt}``: one document per PSP call, created BEFORE the call with
``create()`` (an atomic precondition), so concurrent or repeated deliveries of the same invoice and
attempt can never both charge. The PSP's answer to a subscription's attempt is stored on the subscription
(``charges``, in the write that applies the outcome: Firestore bills per document written, so the attempt
document is written once, by its claim); the oldest results move, a dozen at a time, into one document of
``subscriptions/{id}/charge_results``. :func:`attempt_record` reads an attempt whole from those places.
A one-off invoice's attempt (no subscription) keeps its answer on the attempt document.
"""

from __future__ import annotations

import datetime as dt
import zlib
from collections.abc import Iterable, Mapping
from typing import Any

from shared import clients
from shared.domain.calendar import Anchor, Cadence, Schedule, Unit
from shared.domain.subscriptions import Billing, Dunning, SubState, due_at
from shared.metering.billing import owes_usage

SUBSCRIPTIONS = "subscriptions"
ATTEMPTS = "charge_attempts"
PUBLISHES = "renewal_publishes"


VIRTUAL_SHARDS = 256  # fixed forever: the planner's task count (RENEWALS_SHARDS) may change freely


def shard_of(subscription_id: str) -> int:
    """The document's virtual shard; planner task ``i`` of ``n`` owns the shards ``v`` with ``v % n == i``."""
    return zlib.crc32(subscription_id.encode()) % VIRTUAL_SHARDS


def _db(db: Any) -> Any:
    return db if db is not None else clients.firestore()


def subs(db: Any = None) -> Any:
    """The collection on ``db`` (the injected client), else on the shared client."""
    return _db(db).collection(SUBSCRIPTIONS)


def attempts(db: Any = None) -> Any:
    return _db(db).collection(ATTEMPTS)


def publishes(db: Any = None) -> Any:
    return _db(db).collection(PUBLISHES)


def attempt_id(invoice_id: str, attempt: int) -> str:
    return f"{invoice_id}:{attempt}"


CHARGE_RESULTS = "charge_results"
FINAL_RESULTS = ("succeeded", "failed")


def charge_results(subscription_id: str, db: Any = None) -> Any:
    """The archive of a subscription's older charge results (one document per batch moved off ``charges``)."""
    return subs(db).document(subscription_id).collection(CHARGE_RESULTS)


def archived_result(subscription_id: str, key: str, db: Any = None) -> dict[str, Any] | None:
    """An attempt's result moved off the subscription's ``charges`` (a rare lookup: late duplicates only)."""
    for snap in charge_results(subscription_id, db).stream():
        found: dict[str, Any] | None = ((snap.to_dict() or {}).get("results") or {}).get(key)
        if found is not None:
            return found
    return None


def result_on_subscription(doc: Mapping[str, Any], key: str, db: Any = None) -> dict[str, Any] | None:
    """Attempt ``key``'s result as its subscription ``doc`` keeps it: in ``charges``, else in the archive."""
    found: dict[str, Any] | None = (doc.get("charges") or {}).get(key)
    if (found is None or found.get("status") not in FINAL_RESULTS) and doc.get("charges_archived"):
        archived = archived_result(str(doc["id"]), key, db)
        if archived is not None and (found is None or archived.get("status") in FINAL_RESULTS):
            found = archived  # a late pending copy on the map never hides the final one archived
    return found


def attempt_record(key: str, db: Any = None) -> dict[str, Any]:
    """Charge attempt ``key`` whole: its claim document with the result stored for it (on the attempt, or
    on its subscription): ``claim`` ``charged`` once answered, ``status`` mirroring a final answer,
    ``result``, and ``risk`` (the risk step's decision). Empty when the attempt was never claimed."""
    snap = attempts(db).document(key).get()
    doc: dict[str, Any] = snap.to_dict() or {}
    own = doc.get("result") or {}
    if not doc or own.get("status") in FINAL_RESULTS or not doc.get("subscription_id"):
        return doc
    sub = subs(db).document(doc["subscription_id"]).get().to_dict() or {}
    result = result_on_subscription(sub, key, db)
    if result is None or (own and result.get("status") not in FINAL_RESULTS):
        return doc  # nothing newer there than the (pending) answer adopted onto the attempt
    out = {**doc, "claim": "charged", "result": {k: v for k, v in result.items() if k != "risk"}}
    if result.get("status") in FINAL_RESULTS:
        out["status"] = result["status"]
    if result.get("risk") is not None:
        out["risk"] = result["risk"]
    return out


def _dt(v: Any) -> dt.datetime | None:
    if v is None:
        return None
    if isinstance(v, dt.datetime):
        return v.astimezone(dt.UTC)
    raise TypeError(f"expected a timestamp, got {type(v).__name__}")


def _req_dt(v: Any) -> dt.datetime:
    t = _dt(v)
    if t is None:
        raise ValueError("missing timestamp")
    return t


def schedule_of(doc: Mapping[str, Any]) -> Schedule:
    plan = doc.get("cadence") or doc["plan"]  # items subscriptions store their cadence; plans carry it
    return Schedule(
        Anchor(dt.datetime.fromisoformat(doc["anchor_local"]), doc["anchor_zone"]),
        Cadence(Unit(plan["interval"]), int(plan["interval_count"])),
    )


def state_of(doc: Mapping[str, Any]) -> SubState:
    b = doc.get("billing")
    d = doc.get("dunning")
    return SubState(
        id=doc["id"],
        customer_id=doc["customer_id"],
        status=doc["status"],
        version=int(doc["version"]),
        schedule=schedule_of(doc),
        created_at=_req_dt(doc["created_at"]),
        trial_end=_dt(doc.get("trial_end")),
        paid_index=doc.get("paid_index"),
        billing=Billing(
            index=int(b["index"]),
            start=_req_dt(b["start"]),
            end=_req_dt(b["end"]),
            request_id=b["request_id"],
            claimed_at=_req_dt(b["claimed_at"]),
            republish_at=_req_dt(b["republish_at"]),
            republishes=int(b.get("republishes", 0)),
        )
        if b
        else None,
        dunning=Dunning(
            invoice_id=d["invoice_id"],
            period_index=int(d["period_index"]),
            failed_attempt=int(d["failed_attempt"]),
            first_failed_at=_req_dt(d["first_failed_at"]),
            next_retry_at=_dt(d.get("next_retry_at")),
            action_required=bool(d.get("action_required", False)),
            attempted_at=_dt(d.get("attempted_at")),
        )
        if d
        else None,
        cancel_at_period_end=bool(doc.get("cancel_at_period_end", False)),
        canceled_at=_dt(doc.get("canceled_at")),
        last_cause=doc.get("last_cause"),
        # Proration lines, or the usage a metered subscription owes in arrears until its final close.
        has_pending=bool(doc.get("pending_lines") or doc.get("pending_charges") or owes_usage(doc)),
        collection=doc.get("collection") or "charge_automatically",
        days_until_due=doc.get("days_until_due"),
        open_due=tuple((int(x["index"]), _req_dt(x["due"])) for x in doc.get("open_due") or []),
        overdue_until=_dt(doc.get("overdue_until")),
    )


def state_fields(s: SubState) -> dict[str, Any]:
    """The lifecycle fields to write back (plus ``due_at``, derived, for the planner's index)."""
    b, d = s.billing, s.dunning
    return {
        "status": s.status,
        "version": s.version,
        "trial_end": s.trial_end,
        "paid_index": s.paid_index,
        "billing": {
            "index": b.index,
            "start": b.start,
            "end": b.end,
            "request_id": b.request_id,
            "claimed_at": b.claimed_at,
            "republish_at": b.republish_at,
            "republishes": b.republishes,
        }
        if b
        else None,
        "dunning": {
            "invoice_id": d.invoice_id,
            "period_index": d.period_index,
            "failed_attempt": d.failed_attempt,
            "first_failed_at": d.first_failed_at,
            "next_retry_at": d.next_retry_at,
            "action_required": d.action_required,
            "attempted_at": d.attempted_at,
        }
        if d
        else None,
        "cancel_at_period_end": s.cancel_at_period_end,
        "canceled_at": s.canceled_at,
        "last_cause": s.last_cause,
        "open_due": [{"index": k, "due": due} for k, due in s.open_due],
        "overdue_until": s.overdue_until,
        "due_at": due_at(s),
    }


_SHOWN = ("psp_payment_id", "decline_code", "category")


def with_results(
    docs: Iterable[dict[str, Any]], db: Any = None, known: Iterable[Mapping[str, Any]] = ()
) -> list[dict[str, Any]]:
    """Attempt documents (each with its id in ``_id``, as listings read them) with what their subscriptions
    keep for them: ``status`` mirroring a final answer, and the PSP's payment id, decline code and category.
    ``known``: subscription documents already read; the others are read in one batch."""
    rows = list(docs)
    by_id = {str(d.get("id")): d for d in known}
    need = {str(d["subscription_id"]) for d in rows if d.get("subscription_id") and d.get("status") == "claimed"}
    if missing := sorted(need - set(by_id)):
        for snap in _db(db).get_all([subs(db).document(i) for i in missing]):
            if snap.exists:
                by_id[snap.id] = snap.to_dict() or {}
    out = []
    for row in rows:
        sub = by_id.get(str(row.get("subscription_id"))) if row.get("status") == "claimed" else None
        found = result_on_subscription(sub, str(row["_id"]), db) if sub else None
        if found is None:
            out.append(row)
            continue
        shown = {k: found[k] for k in _SHOWN if found.get(k) is not None}
        final = {"status": found["status"]} if found.get("status") in FINAL_RESULTS else {}
        out.append({**row, **shown, **final})
    return out
