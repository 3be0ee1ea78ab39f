"""Dispute documents from canonical dispute events, deadline alerts, accept, and the win/loss report.

One document per PSP dispute (``disputes/{psp}~{account}~{dispute_id}``), advanced by the pure fold of
:mod:`shared.domain.disputes` in ONE conditional write per notification (the ``update_time`` read is the
precondition), so redeliveries (``applied`` holds the envelope's event id) and out-of-order notifications
never regress it. A loss records the chargeback on the document and posts its ledger entry here
(``chargebacks`` -> ``chargeback_losses``; a later win posts the reversal): the entry id derives from the
dispute, and every delivery that finds the document lost posts it again (a no-op once there), so a crash
between the document write and the ledger write is repaired by the redelivery. The withdrawal and
reinstatement themselves are posted by the reconciliation function from the same canonical events
(dispute.opened withdraws, dispute.won reinstates), so nothing is posted twice.

Evidence: :meth:`DisputeService.build_evidence` stores the packet (:mod:`shared.disputes.evidence`) and
points the document at it; :meth:`DisputeService.submit_evidence` (an operator's confirmed command) sends
the STORED packet through the PSP's API (:mod:`shared.disputes.submit`) under a leased claim per (dispute,
stage): a second operator or a retry finds it done, and a retry after a crash takes over the same packet
with the same idempotency key (adapters whose PSP has none look at the dispute first). The submission then
enters the fold as ``under_review``, is kept on the document and announced (``dispute.evidence_submitted``).

Deadline alerts: a scheduled tick finds the open disputes due within 72 h and raises
``dispute.deadline_approaching`` once per (dispute, threshold): a leased claim per pair
(:mod:`shared.idempotency.claims`), so overlapping ticks publish it once, and a tick that died after its
claim is taken over when the lease runs out (same key, same event id).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from shared import clients
from shared.disputes import evidence
from shared.disputes.submit import Submission, SubmitError, Submitter, submitter_for
from shared.domain import disputes as dom
from shared.domain.money import Money
from shared.events import Received
from shared.events.disputes import DisputeDeadlineApproaching, DisputeEvidenceSubmitted
from shared.events.payments import DisputeEvent, OurRefs
from shared.events.publisher import Publisher, default_publisher
from shared.idempotency import Claims, Outcome, Schema, Stale, precondition, retry_on_contention
from shared.ledger.journal import Entry
from shared.log import bind, get_logger

log = get_logger(__name__)

COLLECTION = "disputes"
ALERTS = "dispute_alerts"
SUBMISSIONS = "dispute_submissions"
# What a defence can answer: evidence awaited (first cycle or pre-arbitration), or notified with none asked yet.
SUBMITTABLE = frozenset({dom.Status.OPENED, dom.Status.NEEDS_RESPONSE, dom.Status.PRE_ARBITRATION})
HISTORY_MAX = 50  # notifications kept on the document (a dispute sees a handful)


def utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def dispute_key(psp: str, account: str, dispute_id: str) -> str:
    """Document id: readable for operators, free of Firestore's path separator."""
    return f"{psp}~{account}~{dispute_id}".replace("/", "_")


def observation(ev: DisputeEvent) -> dom.Observation:
    return dom.Observation(
        status=dom.Status(ev.EVENT_TYPE.removeprefix("dispute.")),
        at=ev.psp_created_at,
        stage=dom.Stage(ev.dispute_stage),
        amount=ev.amount.amount if ev.amount else None,
        currency=ev.amount.currency if ev.amount else None,
        reason_code=ev.reason_code,
        reason=dom.Reason(ev.normalised_reason) if ev.normalised_reason else None,
        due_by=ev.evidence_due_by,
    )


@dataclass(frozen=True, slots=True)
class DisputeDeps:
    """Injected collaborators (``db`` is a factory: the shared client is per project, created lazily)."""

    db: Callable[[], Any] = clients.firestore
    publisher: Publisher = field(default_factory=default_publisher)
    clock: Callable[[], dt.datetime] = utcnow
    alert_lease_s: float = 120.0
    ledger: bool = True  # post the loss entries (off only where a test isolates the document logic)
    submit_lease_s: float = 300.0  # longer than a submission's PSP calls (20 s timeouts, up to three calls)
    pdf_reader: Callable[[str], bytes] | None = None  # archived invoice PDFs (default: the invoice archive)
    submitter: Callable[[str, str], Submitter] = submitter_for


class DisputeService:
    def __init__(self, deps: DisputeDeps | None = None) -> None:
        self.deps = deps or DisputeDeps()
        self.alert_claims = Claims(Schema(), lease_s=self.deps.alert_lease_s)
        self.submit_claims = Claims(Schema(), lease_s=self.deps.submit_lease_s)

    def ref(self, key: str) -> Any:
        return self.deps.db().collection(COLLECTION).document(key)

    # -- documents from canonical events -------------------------------------------------------------
    def on_event(self, msg: Received[DisputeEvent]) -> dict[str, Any]:
        return self.apply(msg.event, msg.envelope.event_id)

    def apply(self, ev: DisputeEvent, event_id: str) -> dict[str, Any]:
        """Create or advance the dispute's document with one notification (a redelivery changes nothing)."""
        from google.api_core.exceptions import AlreadyExists, Conflict

        key = dispute_key(ev.psp, ev.account, ev.dispute_id)
        ref = self.ref(key)
        obs = observation(ev)
        now = self.deps.clock()
        entry = {"event_id": event_id, "type": ev.EVENT_TYPE, "at": ev.psp_created_at, "psp_status": ev.psp_status}

        def step() -> dict[str, Any]:
            snap = ref.get()
            if not snap.exists:
                d = dom.start(obs)
                doc = {
                    "key": key,
                    "psp": ev.psp,
                    "account": ev.account,
                    "dispute_id": ev.dispute_id,
                    "psp_payment_id": ev.psp_payment_id,
                    "livemode": ev.livemode,
                    "refs": self._refs(ev).model_dump(),
                    "reason_text": ev.reason,
                    **dom.to_doc(d),
                    **_effects(None, d, now),
                    "opened_at": ev.psp_created_at,
                    "created_at": now,
                    "updated_at": now,
                    "applied": [event_id],
                    "history": [entry],
                }
                try:
                    ref.create(doc)
                except (AlreadyExists, Conflict):
                    raise Stale from None  # a concurrent first notification: decide again on its document
                return doc
            cur = snap.to_dict() or {}
            if event_id in cur.get("applied", []):
                return cur
            before = dom.from_doc(cur)
            after = before.apply(obs)
            fields: dict[str, Any] = {
                **dom.to_doc(after),
                **_effects(cur, after, now),
                "applied": [*cur.get("applied", []), event_id][-HISTORY_MAX:],
                "history": [*cur.get("history", []), entry][-HISTORY_MAX:],
                "updated_at": now,
            }
            if ev.reason and not cur.get("reason_text"):
                fields["reason_text"] = ev.reason
            ref.update(fields, option=precondition(snap.update_time))
            return {**cur, **fields}

        with bind(dispute=key):
            doc = retry_on_contention(step, what=ref.path)
            self.post_ledger(doc)
            log.info("dispute", extra={"status": doc["status"], "event_type": ev.EVENT_TYPE})
            return doc

    def _refs(self, ev: DisputeEvent) -> OurRefs:
        """Our references; when the PSP's dispute object has none (Stripe's dispute carries no charge
        metadata), the invoice this payment paid supplies them (one query, on the first notification)."""
        if ev.refs.invoice_id:
            return ev.refs
        from shared.invoicing.repository import invoice_paid_by

        found = invoice_paid_by(self.deps.db(), ev.psp_payment_id)
        if found is not None:
            invoice_id, d = found
            return OurRefs(
                customer_id=ev.refs.customer_id or (d.get("buyer") or {}).get("id"),
                subscription_id=ev.refs.subscription_id or d.get("subscription_id"),
                invoice_id=invoice_id,
                attempt_id=ev.refs.attempt_id,
            )
        return ev.refs

    # -- operator actions -----------------------------------------------------------------------------
    def get(self, key: str) -> dict[str, Any] | None:
        snap = self.ref(key).get()
        return snap.to_dict() if snap.exists else None

    def list_open(self, limit: int = 100) -> list[dict[str, Any]]:
        """Open disputes, the soonest due first (no due time: last)."""
        from google.cloud.firestore_v1.base_query import FieldFilter

        col = self.deps.db().collection(COLLECTION)
        docs = [s.to_dict() or {} for s in col.where(filter=FieldFilter("open", "==", True)).limit(limit).stream()]
        far = dt.datetime.max.replace(tzinfo=dt.UTC)
        return sorted(docs, key=lambda d: (d.get("due_by") or far, d["key"]))

    def record_operator(self, key: str, status: dom.Status, what: str) -> dict[str, Any]:
        """An outcome we caused (accept; submitted evidence) enters the same fold as the PSP's notifications."""
        doc = self.get(key)
        if doc is None:
            raise LookupError(f"no dispute {key}")
        at = self.deps.clock()
        obs = dom.Observation(status=status, at=at, stage=dom.Stage(doc["stage"]))
        ref = self.ref(key)
        event_id = f"operator:{what}"

        def step() -> dict[str, Any]:
            snap = ref.get()
            cur = snap.to_dict() or {}
            if event_id in cur.get("applied", []):
                return cur
            after = dom.from_doc(cur).apply(obs)
            entry = {"event_id": event_id, "type": f"operator.{what}", "at": at, "psp_status": None}
            fields = {
                **dom.to_doc(after),
                **_effects(cur, after, at),
                "applied": [*cur.get("applied", []), event_id][-HISTORY_MAX:],
                "history": [*cur.get("history", []), entry][-HISTORY_MAX:],
                "updated_at": at,
            }
            ref.update(fields, option=precondition(snap.update_time))
            return {**cur, **fields}

        out = retry_on_contention(step, what=ref.path)
        self.post_ledger(out)
        return out

    def post_ledger(self, doc: Mapping[str, Any]) -> int:
        """The ledger entries the document's chargeback calls for (idempotent: entry ids from the dispute)."""
        if not self.deps.ledger:
            return 0
        from shared.ledger import store

        entries = loss_entries(doc)
        if not entries:
            return 0
        return store.post(self.deps.db(), entries)

    # -- evidence -------------------------------------------------------------------------------------
    def _must(self, key: str) -> dict[str, Any]:
        doc = self.get(key)
        if doc is None:
            raise LookupError(f"no dispute {key}")
        return doc

    def build_evidence(self, key: str) -> dict[str, Any]:
        """Assemble and store the packet from what we hold now; the document points at it."""
        doc = self._must(key)
        with bind(dispute=key):
            p = evidence.packet(evidence.gather(self.deps.db(), doc, pdf=self.deps.pdf_reader))
            stored = evidence.store(p)
            evidence.record(self.ref(key), stored, self.deps.clock())
            log.info("evidence packet", extra={"uri": stored["uri"], "new_object": stored["created"]})
        return stored

    def submission(self, key: str, *, build: bool = True) -> Submission:
        """The stored packet as a submission (built first when the dispute has none yet)."""
        doc = self._must(key)
        ev = doc.get("evidence") or (self.build_evidence(key) if build else None)
        if not ev:
            raise SubmitError(f"{key} has no evidence packet yet")
        facts, pdfs = evidence.unpack(evidence.read(ev["uri"]))
        return Submission(doc, facts, pdfs, ev["sha256"])

    def preview_submission(self, key: str) -> dict[str, Any]:
        """What ``submit`` would send (the CLI without --confirm): no PSP call, no claim."""
        sub = self.submission(key)
        doc = sub.dispute
        return {
            "key": key,
            "psp": doc["psp"],
            "status": doc["status"],
            "packet": (doc.get("evidence") or {}).get("uri"),
            "request": self.deps.submitter(doc["psp"], doc["account"]).preview(sub),
        }

    def submit_evidence(self, key: str, operator: str | None = None) -> dict[str, Any]:
        """Submit the stored packet through the PSP's API, once per (dispute, stage)."""
        doc = self._must(key)
        ref = self.deps.db().collection(SUBMISSIONS).document(f"{key}~{doc['stage']}")
        snap = ref.get()
        if not (snap.exists and (snap.to_dict() or {}).get("status") == "COMPLETED"):
            if dom.Status(doc["status"]) not in SUBMITTABLE:
                raise SubmitError(f"{key} is {doc['status']}: no evidence can be submitted now")
            self.submission(key)  # builds the packet when there is none
            doc = self._must(key)
        ev = doc.get("evidence") or {}
        now = self.deps.clock()
        fields = {"dispute": key, "packet_uri": ev.get("uri"), "packet_sha256": ev.get("sha256"), "operator": operator}
        claim = self.submit_claims.claim(ref, now, fields=fields)
        if claim.outcome is Outcome.BUSY:
            raise SubmitError(f"{key} is being submitted right now (by another operator or a retry)")
        if claim.outcome is Outcome.DONE:
            return self._submitted(key, dict(claim.result or {}))
        rec = claim.record or fields  # a takeover sends what the crashed attempt sent
        facts, pdfs = evidence.unpack(evidence.read(str(rec["packet_uri"])))
        sub = Submission(doc, facts, pdfs, str(rec["packet_sha256"]), resumed=claim.taken_over)
        try:
            with bind(dispute=key):
                done = self.deps.submitter(doc["psp"], doc["account"]).submit(sub)
        except BaseException:
            self.submit_claims.release(claim)
            raise
        result = {
            "psp": done.psp,
            "dispute_id": done.dispute_id,
            "requests": done.requests,
            "detail": dict(done.detail),
            "packet_uri": rec["packet_uri"],
            "packet_sha256": rec["packet_sha256"],
            "operator": rec.get("operator"),
            "stage": doc["stage"],
            "submitted_at": now,
        }
        self.submit_claims.complete(claim, result=result)
        log.warning("dispute evidence submitted", extra={"dispute": key, "psp": done.psp})
        return self._submitted(key, result)

    def _submitted(self, key: str, result: dict[str, Any]) -> dict[str, Any]:
        """After a submission (again after a crash, harmlessly): the fold, the document, the event."""
        doc = self.record_operator(key, dom.Status.UNDER_REVIEW, f"submit:{result['stage']}")
        self.ref(key).update({"submission": result})
        self.deps.publisher.publish(
            DisputeEvidenceSubmitted(
                dispute_key=key,
                psp=doc["psp"],
                account=doc["account"],
                dispute_id=doc["dispute_id"],
                psp_payment_id=doc["psp_payment_id"],
                refs=OurRefs(**(doc.get("refs") or {})),
                amount=Money(doc["amount"], doc["currency"]) if doc.get("amount") is not None else None,
                normalised_reason=doc.get("reason"),
                packet_uri=result["packet_uri"],
                packet_sha256=result["packet_sha256"],
                submitted_at=result["submitted_at"],
                operator=result.get("operator"),
            ),
            idempotency_key=f"{key}:evidence:{result['packet_sha256']}",
            occurred_at=result["submitted_at"],
        )
        return {"key": key, "status": doc["status"], "submission": result}

    # -- deadline alerts --------------------------------------------------------------------------------
    def tick(self, now: dt.datetime | None = None) -> dict[str, int]:
        """Raise the deadline alerts due at ``now`` (the test clock may pass one); once per threshold."""
        from google.cloud.firestore_v1.base_query import FieldFilter

        now = now or self.deps.clock()
        horizon = now + dt.timedelta(hours=max(dom.ALERT_HOURS))
        q = (
            self.deps.db()
            .collection(COLLECTION)
            .where(filter=FieldFilter("open", "==", True))
            .where(filter=FieldFilter("due_by", ">", now))
            .where(filter=FieldFilter("due_by", "<=", horizon))
        )
        counts = {"due": 0, "published": 0}
        for snap in q.stream():
            d = snap.to_dict() or {}
            hours = dom.alert_due(d["due_by"], now)
            if hours is None:
                continue
            counts["due"] += 1
            counts["published"] += self._alert(d, hours)
        return counts

    def _alert(self, d: Mapping[str, Any], hours: int) -> int:
        ref = self.deps.db().collection(ALERTS).document(f"{d['key']}~{hours}h")
        claim = self.alert_claims.claim(ref, self.deps.clock(), fields={"dispute": d["key"], "hours": hours})
        if claim.outcome is not Outcome.OWNED:
            return 0  # raised already, or another tick is raising it now
        try:
            due = d["due_by"].astimezone(dt.UTC)
            self.deps.publisher.publish(
                DisputeDeadlineApproaching(
                    dispute_key=d["key"],
                    psp=d["psp"],
                    account=d["account"],
                    dispute_id=d["dispute_id"],
                    psp_payment_id=d["psp_payment_id"],
                    refs=OurRefs(**(d.get("refs") or {})),
                    amount=Money(d["amount"], d["currency"]) if d.get("amount") is not None else None,
                    normalised_reason=d.get("reason"),
                    hours=hours,  # type: ignore[arg-type]
                    evidence_due_by=due,
                    status=d["status"],
                ),
                idempotency_key=f"{d['key']}:deadline:{hours}h",
                occurred_at=due - dt.timedelta(hours=hours),
            )
        except BaseException:
            self.alert_claims.release(claim)
            raise
        self.alert_claims.complete(claim, result={"published": True})
        log.warning("dispute deadline approaching", extra={"dispute": d["key"], "hours": hours})
        return 1

    # -- report -----------------------------------------------------------------------------------------
    def report(self) -> list[dict[str, Any]]:
        return win_loss(s.to_dict() or {} for s in self.deps.db().collection(COLLECTION).stream())


def _effects(cur: Mapping[str, Any] | None, after: dom.Dispute, now: dt.datetime) -> dict[str, Any]:
    """A loss records the chargeback once; a later win (a reversal) marks it reversed."""
    had = (cur or {}).get("chargeback")
    if after.outcome == "lost" and not had:
        return {"chargeback": {"amount": after.amount, "currency": after.currency, "recorded_at": now}}
    if after.outcome == "won" and had and not had.get("reversed_at"):
        return {"chargeback": {**had, "reversed_at": now}}
    return {}


def loss_entries(doc: Mapping[str, Any]) -> list[Entry]:
    """The loss entry of a recorded chargeback, and its reversal once a later win reversed it (pure)."""
    from shared.ledger.postings import dispute_loss_entry

    cb = doc.get("chargeback") or {}
    if cb.get("amount") is None or not cb.get("currency"):
        return []
    kw = {"currency": cb["currency"], "amount": int(cb["amount"])}
    who = (str(doc["psp"]), str(doc["account"]), str(doc["dispute_id"]))
    out = [dispute_loss_entry(*who, **kw, at=cb["recorded_at"])]
    if cb.get("reversed_at"):
        out.append(dispute_loss_entry(*who, **kw, at=cb["reversed_at"], reversed_=True))
    return out


def win_loss(docs: Iterable[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """Win and loss counts, rates and amounts by PSP and normalised reason (decided disputes only)."""
    rows: dict[tuple[str, str], dict[str, Any]] = {}
    for d in docs:
        out = d.get("outcome")
        k = (str(d.get("psp")), str(d.get("reason") or "general"))
        r = rows.setdefault(k, {"psp": k[0], "reason": k[1], "won": 0, "lost": 0, "open": 0, "lost_amount": {}})
        if out is None:
            r["open"] += 1
            continue
        r[out] += 1
        if out == "lost" and d.get("amount") is not None:
            r["lost_amount"][d["currency"]] = r["lost_amount"].get(d["currency"], 0) + int(d["amount"])
    for r in rows.values():
        decided = r["won"] + r["lost"]
        r["win_rate"] = round(r["won"] / decided, 4) if decided else None
    return [rows[k] for k in sorted(rows)]
