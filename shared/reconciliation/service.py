"""Reconciliation on Firestore: intake of settlement batches, payment facts and invoice events; the tick.

Every step is idempotent and order-independent, because Pub/Sub redelivers, a bucket may fire twice and
facts and lines arrive in any order:

* a line is one document keyed by :meth:`SettlementLine.key` (``create()``: the same line twice changes
  nothing); a bucket object is intake work under a claim of the shared primitive;
* ledger entries derive their ids from their cause (a line, a fact, an invoice, a payout, a resolution);
* a payment's group document collects its facts and line views and is updated with the one
  compare-and-set helper; its verdict is recomputed from the whole group each time (pure
  :func:`~shared.reconciliation.matching.evaluate`), so arrival order cannot change the outcome;
* exception documents follow the verdict: created when found, cleared when a later fact or line explains
  them, resolved only by an operator (with a ledger entry); each change is published once per id.
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from collections.abc import Callable, Iterable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from decimal import Decimal
from typing import Any

from shared import clients
from shared.events import publish
from shared.events.envelope import Event
from shared.events.payments import PaymentEvent
from shared.events.reconciliation import (
    PayoutClosed,
    ReconciliationExceptionCleared,
    ReconciliationExceptionRaised,
    ReconciliationExceptionResolved,
)
from shared.idempotency import Claims, IdempotencyAlreadyInProgressError, Outcome, update_if_unchanged
from shared.ledger import postings
from shared.ledger import store as ledger
from shared.ledger.journal import entry_id
from shared.log import get_logger
from shared.reconciliation import matching as m
from shared.reconciliation.config import ReconSettings, recon_settings
from shared.reconciliation.repository import (
    CURSORS,
    EXCEPTIONS,
    FILE_CLAIM,
    FILES,
    GROUPS,
    LINES,
    PAYOUT_PARTS,
    PAYOUTS,
    REFS,
    file_key,
    line_doc,
    payout_key,
    payout_parts,
    ref_key,
)
from shared.settlement.lines import LineType, Payout, SettlementBatch, SettlementLine

log = get_logger(__name__)

_CHUNK = 400


def _utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


class UnknownObject(ValueError):
    """A bucket object no settlement source claims (acknowledged and logged: retrying cannot help)."""


@dataclass
class IntakeResult:
    lines: int = 0
    new_lines: int = 0
    groups: int = 0
    findings: int = 0
    payouts_closed: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return {
            "lines": self.lines,
            "new_lines": self.new_lines,
            "groups": self.groups,
            "findings": self.findings,
            "payouts_closed": self.payouts_closed,
        }


@dataclass
class Reconciler:
    """The reconciliation service; tests build one on their own project and clock."""

    db: Any = None
    clock: Callable[[], dt.datetime] = field(default=_utcnow)
    settings: ReconSettings | None = None
    publish_events: bool = True
    workers: int = 8

    def __post_init__(self) -> None:
        if self.db is None:
            self.db = clients.firestore()
        if self.settings is None:
            self.settings = recon_settings()

    @property
    def cfg(self) -> ReconSettings:
        assert self.settings is not None
        return self.settings

    # -- settlement lines -------------------------------------------------------------------------
    def intake_batch(self, batch: SettlementBatch, now: dt.datetime | None = None) -> IntakeResult:
        """Store lines and payouts, post their entries, re-evaluate every payment they touch, close payouts."""
        now = now or self.clock()
        res = IntakeResult(lines=len(batch.lines))
        groups: dict[str, tuple[tuple[str, str, str], dict[str, m.LineView]]] = {}
        docs: list[tuple[str, dict[str, Any]]] = []
        fallback = self._fallback(batch.lines)
        for line in batch.lines:
            ref = m.payment_ref(line)
            candidates: tuple[str, ...] = ()
            if ref is None and line.key() in fallback:
                ref, candidates = fallback[line.key()]
            gid = None
            if ref is not None:
                gid = m.group_id(line.psp, line.account, ref)
            elif line.type in m.CATEGORIES:  # a payment line naming no payment: its own group
                ref, gid = f"line:{line.line_id}", m.group_id(line.psp, line.account, f"line:{line.key()}")
            if gid is not None and ref is not None:
                view = m.view_line(line, now, candidates)
                groups.setdefault(gid, ((line.psp, line.account, ref), {}))[1][line.key()] = view
            docs.append((line.key(), line_doc(line, gid)))
        res.new_lines = self._create_all(LINES, docs)
        ledger.post(self.db, [postings.line_entry(ln) for ln in batch.lines])
        res.groups = len(groups)
        with ThreadPoolExecutor(self.workers) as pool:
            evals = list(pool.map(lambda g: self._merge(g[0], g[1][0], lines=g[1][1], now=now), groups.items()))
        res.findings = sum(len(e.findings) for e in evals)
        self._create_all(PAYOUT_PARTS, payout_parts(batch))
        for p in batch.payouts:
            self._payout_doc(p)
        touched = {(p.psp, p.account, p.payout_id) for p in batch.payouts}
        touched |= {(ln.psp, ln.account, ln.payout_id) for ln in batch.lines if ln.payout_id}
        for psp, account, pid in sorted(touched):
            if self._check_payout(psp, account, pid, now):
                res.payouts_closed.append(pid)
        return res

    def _fallback(self, lines: Iterable[SettlementLine]) -> dict[str, tuple[str, tuple[str, ...]]]:
        """Line key -> (payment ref, candidates) for payment lines naming no payment at the PSP: the one
        payment our reference names; else a ``ref:`` group where the line waits for it (its fact may come
        later) or, when the reference names several payments, the candidates (an exception, not a guess)."""
        todo = [(ln, m.line_our_refs(ln)) for ln in lines]
        todo = [(ln, refs) for ln, refs in todo if refs]
        if not todo:
            return {}
        index = self._ref_index({(ln.psp, ln.account, r) for ln, refs in todo for r in refs})
        out: dict[str, tuple[str, tuple[str, ...]]] = {}
        for ln, refs in todo:
            hit = next(((r, index[(ln.psp, ln.account, r)]) for r in refs if index.get((ln.psp, ln.account, r))), None)
            if hit is None:
                out[ln.key()] = (m.fallback_ref(refs[0]), ())
            elif len(hit[1]) == 1:
                out[ln.key()] = (next(iter(hit[1].values())), ())
                self._joined(ln.psp, ln.account, hit[0], {ln.key(): next(iter(hit[1]))})
            else:
                out[ln.key()] = (m.fallback_ref(hit[0]), tuple(sorted(hit[1].values())))
        return out

    def _ref_index(self, keys: set[tuple[str, str, str]]) -> dict[tuple[str, str, str], dict[str, str]]:
        """(psp, account, our ref) -> {group id: payment ref} of the payments whose facts carry it."""
        col = self.db.collection(REFS)
        by_id = {ref_key(*k): k for k in keys}
        out: dict[tuple[str, str, str], dict[str, str]] = {}
        ids = sorted(by_id)
        for i in range(0, len(ids), 300):
            for snap in self.db.get_all([col.document(d) for d in ids[i : i + 300]]):
                if snap.exists:
                    out[by_id[snap.id]] = dict((snap.to_dict() or {}).get("groups") or {})
        return out

    def _joined(self, psp: str, account: str, our_ref: str, lines: dict[str, str]) -> None:
        """Remember which lines joined a payment through ``our_ref`` (line key -> group id), so they can be
        taken back should the reference later name a second payment."""
        ref = self.db.collection(REFS).document(ref_key(psp, account, our_ref))
        ref.set({"psp": psp, "account": account, "ref": our_ref, "lines": lines}, merge=True)

    def _unjoin(self, psp: str, account: str, our_ref: str, now: dt.datetime) -> None:
        """Once ``our_ref`` names several payments, the lines that joined one of them through it go back to
        waiting under the reference, with the candidates: an ``ambiguous_reference`` exception, whichever
        order the facts and lines came in."""
        from google.cloud.firestore_v1 import DELETE_FIELD

        ref = self.db.collection(REFS).document(ref_key(psp, account, our_ref))
        d = ref.get().to_dict() or {}
        groups, joined = d.get("groups") or {}, d.get("lines") or {}
        if len(groups) < 2 or not joined:
            return
        meta = (psp, account, m.fallback_ref(our_ref))
        ogid, cands = m.group_id(*meta), tuple(sorted(groups.values()))
        for key, tgid in sorted(joined.items()):
            tdoc = self.db.collection(GROUPS).document(tgid).get().to_dict() or {}
            view = (tdoc.get("lines") or {}).get(key)
            if view is not None:  # first waiting again, then out of the payment: never in neither group
                moved = replace(m.LineView.from_doc(key, view), candidates=cands)
                self._merge(ogid, meta, lines={key: moved}, replace_lines=True, now=now)
                self.db.collection(LINES).document(key).update({"group": ogid})
                self._merge(tgid, (psp, account, groups[tgid]), drop=frozenset({key}), now=now)
            ref.update({self.db.field_path("lines", key): DELETE_FIELD})

    def _adopt(self, psp: str, account: str, our_ref: str, now: dt.datetime) -> None:
        """Lines that waited under ``our_ref`` join the payment it now names (or, if it names several, carry
        the candidates). Their waiting group drops them; its exceptions, if any, clear."""
        meta = (psp, account, m.fallback_ref(our_ref))
        ogid = m.group_id(*meta)
        snap = self.db.collection(GROUPS).document(ogid).get()
        waiting = (snap.to_dict() or {}).get("lines") or {} if snap.exists else {}
        if not waiting:
            return
        views = {k: m.LineView.from_doc(k, v) for k, v in waiting.items()}
        named = self._ref_index({(psp, account, our_ref)}).get((psp, account, our_ref)) or {}
        if len(named) > 1:
            cands = tuple(sorted(named.values()))
            if any(v.candidates != cands for v in views.values()):
                replaced = {k: replace(v, candidates=cands) for k, v in views.items()}
                self._merge(ogid, meta, lines=replaced, replace_lines=True, now=now)
            return
        if len(named) != 1:
            return
        ((tgid, pref),) = named.items()
        self._merge(tgid, (psp, account, pref), lines={k: replace(v, candidates=()) for k, v in views.items()}, now=now)
        self._joined(psp, account, our_ref, dict.fromkeys(views, tgid))
        for key in views:  # the line's pointer to its group follows it (the line itself is never edited)
            self.db.collection(LINES).document(key).update({"group": tgid})
        self._merge(ogid, meta, drop=frozenset(views), now=now)

    def _create_all(self, collection: str, docs: list[tuple[str, dict[str, Any]]]) -> int:
        """Create documents that do not exist yet (a redelivered batch creates none)."""
        from google.api_core.exceptions import AlreadyExists, Conflict

        col, created = self.db.collection(collection), 0
        for i in range(0, len(docs), _CHUNK):
            chunk = docs[i : i + _CHUNK]
            wb = self.db.batch()
            for doc_id, doc in chunk:
                wb.create(col.document(doc_id), doc)
            try:
                wb.commit()
                created += len(chunk)
                continue
            except (AlreadyExists, Conflict):
                pass
            for doc_id, doc in chunk:
                try:
                    col.document(doc_id).create(doc)
                    created += 1
                except (AlreadyExists, Conflict):
                    pass
        return created

    # -- payment facts and invoice events ----------------------------------------------------------
    def record_fact(self, event: PaymentEvent, now: dt.datetime | None = None) -> m.Evaluation | None:
        """Post the fact's entry and add it to its payment's group (facts that move no money are skipped)."""
        now = now or self.clock()
        entry = postings.fact_entry(event)
        if entry is not None:
            ledger.post(self.db, [entry])
        view = m.view_fact(event)
        if view is None:
            return None
        gid = m.group_id(event.psp, event.account, event.psp_payment_id)
        ev = self._merge(gid, (event.psp, event.account, event.psp_payment_id), facts={view.fact_id: view}, now=now)
        for r in m.fact_our_refs(event):  # index our references, then take in lines that waited for them
            doc = {"psp": event.psp, "account": event.account, "ref": r, "groups": {gid: event.psp_payment_id}}
            self.db.collection(REFS).document(ref_key(event.psp, event.account, r)).set(doc, merge=True)
            self._unjoin(event.psp, event.account, r, now)
            self._adopt(event.psp, event.account, r, now)
        return ev

    def record_invoice_event(self, event: Event, at: dt.datetime) -> int:
        """Receivables tie out with invoices: finalized, credited and voided invoices post entries."""
        from shared.events.billing import CreditNoteIssued, InvoiceFinalized, InvoiceVoided

        if isinstance(event, InvoiceVoided):
            fin = ledger.get(self.db, entry_id(f"invoice:{event.invoice_id}:finalized"))
            if fin is None:
                raise LookupError(f"invoice {event.invoice_id} voided before its finalization was posted")
            return ledger.post(self.db, [postings.void_entry(event, fin, at)])
        if isinstance(event, InvoiceFinalized | CreditNoteIssued):
            entry = postings.invoice_entry(event, at)
            return ledger.post(self.db, [entry] if entry else [])
        return 0

    # -- the group of one payment -----------------------------------------------------------------
    def _merge(
        self,
        gid: str,
        meta: tuple[str, str, str],
        *,
        lines: Mapping[str, m.LineView] | None = None,
        facts: Mapping[str, m.FactView] | None = None,
        drop: frozenset[str] = frozenset(),
        replace_lines: bool = False,
        now: dt.datetime,
    ) -> m.Evaluation:
        from google.api_core.exceptions import AlreadyExists, Conflict

        psp, account, ref = meta
        ref_doc = self.db.collection(GROUPS).document(gid)
        out: dict[str, Any] = {}

        def fields(fdocs: dict[str, Any], ldocs: dict[str, Any], flagged: bool) -> dict[str, Any]:
            ev = m.evaluate(
                [m.FactView.from_doc(k, v) for k, v in fdocs.items()],
                [m.LineView.from_doc(k, v) for k, v in ldocs.items()],
                now,
                self.cfg.psp_delay,
                self.cfg.our_delay,
            )
            out["ev"] = ev
            return {
                "facts": fdocs,
                "lines": ldocs,
                "state": ev.state,
                "due_at": ev.due_at,
                "open": sorted(f.id(gid) for f in ev.findings),
                "flagged": flagged or bool(ev.findings),
            }

        new_f = {k: v.to_doc() for k, v in (facts or {}).items()}
        new_l = {k: v.to_doc() for k, v in (lines or {}).items()}
        first = {"psp": psp, "account": account, "payment_ref": ref, **fields(new_f, new_l, False)}
        was_flagged = False
        try:
            ref_doc.create(first)
        except (AlreadyExists, Conflict):

            def change(doc: dict[str, Any] | None) -> dict[str, Any] | None:
                nonlocal was_flagged
                doc = doc or {}
                was_flagged = bool(doc.get("flagged"))
                f = {**new_f, **(doc.get("facts") or {})}  # the first delivery's view stands
                old_l = doc.get("lines") or {}
                ln = {**old_l, **new_l} if replace_lines else {**new_l, **old_l}
                ln = {k: v for k, v in ln.items() if k not in drop}
                upd = fields(f, ln, was_flagged)
                same = all(doc.get(k) == upd[k] for k in ("state", "due_at", "open", "flagged"))
                same_lines = ln == old_l if replace_lines or drop else len(ln) == len(old_l)
                if same and same_lines and len(f) == len(doc.get("facts") or {}):
                    return None
                return upd

            update_if_unchanged(ref_doc, change)
        ev: m.Evaluation = out["ev"]
        if ev.findings or was_flagged:
            self._sync_exceptions(gid, meta, ev, now)
        return ev

    def _sync_exceptions(self, gid: str, meta: tuple[str, str, str], ev: m.Evaluation, now: dt.datetime) -> None:
        from google.api_core.exceptions import AlreadyExists, Conflict
        from google.cloud.firestore_v1.base_query import FieldFilter

        psp, account, ref = meta
        col = self.db.collection(EXCEPTIONS)
        current = {f.id(gid): f for f in ev.findings}
        q = col.where(filter=FieldFilter("group", "==", gid)).where(filter=FieldFilter("status", "==", "open"))
        open_docs = {s.id: s.to_dict() or {} for s in q.stream()}
        for xid, f in current.items():
            doc = open_docs.get(xid)
            if doc is None:
                doc = {
                    "group": gid,
                    "psp": psp,
                    "account": account,
                    "payment_ref": ref,
                    "kind": f.kind.value,
                    "category": f.category.value,
                    "line_keys": list(f.line_keys),
                    "fact_ids": list(f.fact_ids),
                    "impact": dict(f.impact),
                    "detail": f.detail,
                    "status": "open",
                    "detected_at": now,
                    "published": False,
                }
                try:
                    col.document(xid).create(doc)
                except (AlreadyExists, Conflict):
                    continue  # cleared or resolved earlier: its history stands
            if not doc.get("published"):
                self._publish(
                    ReconciliationExceptionRaised(
                        exception_id=xid,
                        kind=f.kind.value,
                        psp=psp,
                        account=account,
                        payment_ref=ref,
                        impact=dict(f.impact),
                        category=f.category.value,
                        line_ids=tuple(f.line_keys),
                        fact_ids=tuple(f.fact_ids),
                        detail=f.detail,
                        detected_at=now,
                    ),
                    f"{xid}:raised",
                    now,
                )
                col.document(xid).update({"published": True})
        for xid, doc in open_docs.items():
            if xid in current:
                continue

            def clear(d: dict[str, Any] | None) -> dict[str, Any] | None:
                return {"status": "cleared", "cleared_at": now} if d and d.get("status") == "open" else None

            update_if_unchanged(col.document(xid), clear)
            self._publish(
                ReconciliationExceptionCleared(
                    exception_id=xid,
                    kind=doc["kind"],
                    psp=psp,
                    account=account,
                    payment_ref=ref,
                    impact=doc.get("impact") or {},
                    cleared_at=now,
                ),
                f"{xid}:cleared",
                now,
            )

    def _publish(self, event: Event, key: str, at: dt.datetime) -> None:
        if self.publish_events:
            publish(event, idempotency_key=key, occurred_at=at)

    # -- payouts ----------------------------------------------------------------------------------
    def _payout_doc(self, p: Payout) -> None:
        from google.api_core.exceptions import AlreadyExists, Conflict

        doc = {**p.model_dump(mode="json"), "status": "open", "published": False}
        try:
            self.db.collection(PAYOUTS).document(payout_key(p.psp, p.account, p.payout_id)).create(doc)
        except (AlreadyExists, Conflict):
            pass

    def _check_payout(self, psp: str, account: str, payout_id: str, now: dt.datetime) -> bool:
        """Close the payout when its lines sum to what was paid to the bank; True when closed by this call."""
        from google.cloud.firestore_v1.base_query import FieldFilter

        key = payout_key(psp, account, payout_id)
        ref = self.db.collection(PAYOUTS).document(key)
        snap = ref.get()
        if not snap.exists:
            return False  # lines before their payout: the payout's own intake checks again
        doc = snap.to_dict() or {}
        q = self.db.collection(LINES).where(filter=FieldFilter("payout_key", "==", key))
        total = int(q.sum("net").get()[0][0].value or 0)
        if doc.get("status") != "closed" and total != int(doc["amount"]) and self._rounding_line(key, doc, total, now):
            total = int(q.sum("net").get()[0][0].value or 0)
        count = int(q.count().get()[0][0].value or 0)
        if doc.get("status") != "closed" and total != int(doc["amount"]):
            if doc.get("lines_sum") != total:
                ref.update({"lines_sum": total, "lines": count})
            return False
        closed_now = False
        if doc.get("status") != "closed":

            def close(d: dict[str, Any] | None) -> dict[str, Any] | None:
                if not d or d.get("status") == "closed":
                    return None
                return {"status": "closed", "closed_at": now, "lines_sum": total, "lines": count}

            before = update_if_unchanged(ref, close)
            closed_now = (before.to_dict() or {}).get("status") != "closed"
        entry = postings.payout_entry(
            psp, account, payout_id, currency=doc["currency"], amount=int(doc["amount"]), at=now
        )
        ledger.post(self.db, [entry])
        if not doc.get("published"):
            self._publish(
                PayoutClosed(
                    psp=psp,
                    account=account,
                    payout_id=payout_id,
                    currency=doc["currency"],
                    amount=int(doc["amount"]),
                    lines=count,
                    closed_at=doc.get("closed_at") or now,
                ),
                f"{key}:closed",
                now,
            )
            ref.update({"published": True})
        return closed_now

    def _rounding_line(self, key: str, doc: dict[str, Any], total: int, now: dt.datetime) -> bool:
        """Add the ``<payout>:rounding`` line when the PSP's exact nets (not the rounded lines) meet the payout
        within one minor unit, as :func:`shared.settlement.adapters.checkout.close_payouts` does for a pull.
        Its id derives from the payout, so a second check finds it and posts nothing more."""
        from google.cloud.firestore_v1.base_query import FieldFilter

        q = self.db.collection(PAYOUT_PARTS).where(filter=FieldFilter("payout_key", "==", key))
        parts = [s.to_dict() or {} for s in q.stream()]
        amount, cur = int(doc["amount"]), str(doc["currency"])
        exact = sum((Decimal(p["exact_net"]) for p in parts if p.get("currency") == cur), Decimal(0))
        if not parts or abs(amount - exact) > 1:
            return False
        diff = amount - total
        line = SettlementLine(
            psp=doc["psp"],
            account=doc["account"],
            line_id=f"{doc['payout_id']}:rounding",
            type=LineType.ADJUSTMENT,
            currency=cur,
            gross=diff,
            net=diff,
            payout_id=doc["payout_id"],
            booked_at=now,
            source=f"rounding: exact nets {exact.normalize()} vs payout {amount} minor units",
        )
        self._create_all(LINES, [(line.key(), line_doc(line, None))])
        ledger.post(self.db, [postings.line_entry(line)])
        return True

    # -- operator resolution ----------------------------------------------------------------------
    def resolve(self, exception_id: str, reason: str, now: dt.datetime | None = None, by: str = "") -> dict[str, Any]:
        """Resolve an open exception with a reason: a ledger entry moves its amount out of the clearing
        account (never an edit of earlier entries). Running it again returns the same resolution."""
        now = now or self.clock()
        if not reason.strip():
            raise ValueError("a resolution needs a reason")
        ref = self.db.collection(EXCEPTIONS).document(exception_id)
        snap = ref.get()
        if not snap.exists:
            raise LookupError(f"no exception {exception_id}")
        doc = snap.to_dict() or {}
        if doc.get("status") == "resolved":
            return dict(doc["resolution"])
        if doc.get("status") != "open":
            raise ValueError(f"exception {exception_id} is {doc.get('status')}, not open")
        entry = postings.resolution_entry(
            exception_id, doc["psp"], doc["account"], impact=doc["impact"], reason=reason, at=now
        )
        ledger.post(self.db, [entry])
        resolution = {"reason": reason, "entry_id": entry.id, "at": now, "by": by}

        def mark(d: dict[str, Any] | None) -> dict[str, Any] | None:
            if not d or d.get("status") != "open":
                return None
            return {"status": "resolved", "resolution": resolution}

        update_if_unchanged(ref, mark)
        self._publish(
            ReconciliationExceptionResolved(
                exception_id=exception_id,
                kind=doc["kind"],
                psp=doc["psp"],
                account=doc["account"],
                payment_ref=doc.get("payment_ref"),
                impact=doc["impact"],
                reason=reason,
                entry_id=entry.id,
                resolved_at=now,
            ),
            f"{exception_id}:resolved",
            now,
        )
        return resolution

    # -- the scheduled tick -----------------------------------------------------------------------
    def tick(self, now: dt.datetime | None = None, limit: int = 500) -> dict[str, int]:
        """Pull the API sources, then re-evaluate payments whose facts or lines waited past their delay."""
        now = now or self.clock()
        pulled = failed = 0
        for psp, account in self.cfg.pull_sources:
            try:
                pulled += self.pull(psp, account, now).lines
            except Exception:  # one PSP's outage or missing key must not stop the others nor the ageing below
                failed += 1
                log.exception("settlement pull failed; retried on the next tick", extra={"psp": psp})
        from google.cloud.firestore_v1.base_query import FieldFilter

        q = (
            self.db.collection(GROUPS)
            .where(filter=FieldFilter("state", "==", "awaiting"))
            .where(filter=FieldFilter("due_at", "<=", now))
            .order_by("due_at")
            .limit(limit)
        )
        due = [(s.id, s.to_dict() or {}) for s in q.stream()]
        for gid, d in due:
            self._merge(gid, (d["psp"], d["account"], d["payment_ref"]), now=now)
        return {"pulled_lines": pulled, "failed_sources": failed, "aged_groups": len(due)}

    def pull(self, psp: str, account: str, now: dt.datetime) -> IntakeResult:
        """One API pull from the cursor (minus an overlap) to now; the same page twice changes nothing."""
        from shared.settlement import registry  # the PSP adapters load for a pull or a report, not at start

        try:
            puller, client = registry.source_for(psp, account)
        except registry.NoSource:
            log.error("no API source for configured pull source", extra={"psp": psp})
            return IntakeResult()
        ref = self.db.collection(CURSORS).document(f"{psp}:{account}")
        snap = ref.get()
        until = (snap.to_dict() or {}).get("until") if snap.exists else None
        since = (until - self.cfg.pull_overlap) if isinstance(until, dt.datetime) else now - dt.timedelta(days=7)
        batch = puller(client, account=account, since=since, until=now)
        res = self.intake_batch(batch, now)
        ref.set({"until": now, "lines": res.lines})
        return res

    # -- bucket objects ---------------------------------------------------------------------------
    def intake_object(self, bucket: str, name: str, generation: str, now: dt.datetime | None = None) -> dict[str, Any]:
        """A settlement report dropped into the bucket: detect its source, parse, intake, once per generation."""
        from shared.settlement import registry

        now = now or self.clock()
        found = registry.detect(name)
        if found is None:
            raise UnknownObject(f"no settlement source for object {name!r}")
        psp, account = found
        parser = registry.REPORT_PARSERS.get(psp)
        if parser is None:
            raise UnknownObject(f"no report parser for {psp}")
        # The generation is written glued to "gen": a bare 16-19 digit storage generation is Luhn-valid one
        # time in ten, and stored data must never hold what a card-number sweep cannot tell from a PAN.
        source = f"gs://{bucket}/{name}#gen{generation}"
        claims = Claims(FILE_CLAIM, lease_s=600)
        claimed = claims.claim(
            self.db.collection(FILES).document(file_key(bucket, name, generation)),
            now,
            fields={"bucket": bucket, "name": name, "source": source, "psp": psp, "account": account},
        )
        if claimed.outcome is Outcome.DONE:
            return dict(claimed.result or {})
        if claimed.outcome is Outcome.BUSY:
            raise IdempotencyAlreadyInProgressError(f"object {name} is being taken in")
        try:
            blob = clients.storage().bucket(bucket).blob(name)
            data = (
                blob.download_as_bytes(if_generation_match=int(generation)) if generation else blob.download_as_bytes()
            )
            batch = parser(data, account=account, source=source)
            result = self.intake_batch(batch, now).as_dict()
        except Exception:
            claims.release(claimed)
            raise
        claims.complete(claimed, result=result, fields={"done_at": now})
        return result


def lines_of(batches: Iterable[SettlementBatch]) -> list[SettlementLine]:
    return [ln for b in batches for ln in b.lines]


def facts_by_group(events: Iterable[PaymentEvent]) -> dict[str, list[PaymentEvent]]:
    out: dict[str, list[PaymentEvent]] = defaultdict(list)
    for e in events:
        out[m.group_id(e.psp, e.account, e.psp_payment_id)].append(e)
    return dict(out)
