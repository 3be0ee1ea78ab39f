"""Use case: payment facts and credit notes. payment.succeeded -> paid, payment.refunded -> credit note,
dispute.opened -> flagged, dispute.won / dispute.lost -> the flag cleared (a loss marks the invoice
charged back); each applied once, in PSP order, once the invoice has its number.

Common path (the invoice is numbered, the usual case for a charge of ours): ONE conditional write on the
invoice applies the fact and records its ``event_id`` in ``facts_applied`` (which is what makes a
redelivery change nothing), after one read; no separate fact document. A payment's write also records
``paid`` as announced and names the fact that owns the announcement (``paid_fact``); ``invoice.paid`` is
published after it, and every delivery of that fact publishes it again with the same event id unless this
process already published it (``Deps.publish_again``): a crash between the write and the publish is healed
by the redelivery, with no second write after publishing. Other deliveries (a RenewalDue re-sent, another
fact, an operator) see ``paid`` recorded and publish nothing.

A fact that overtakes its invoice's numbering (or even its draft) is recorded first under
``invoices/{id}/facts/{event_id}`` and applied by the finalization (which queries the unapplied facts
after numbering). Ordering makes that race-free: the fact is recorded BEFORE this delivery looks at the
invoice again, and the finalization numbers BEFORE it queries the facts, so at least one of the two sees
the other. A fact that changes nothing and was not applied before (a second payment of a paid invoice,
a payment of a void one) is kept as a fact document too, for the audit trail.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from shared.domain import invoices as dom
from shared.domain.money import Money
from shared.events import Received
from shared.events.payments import (
    DisputeLost,
    DisputeOpened,
    DisputeWon,
    PaymentEvent,
    PaymentRefunded,
    PaymentSucceeded,
)
from shared.invoicing.deps import Deps
from shared.invoicing.entities import seller
from shared.invoicing.repository import (
    CREDIT_NOTES,
    FACTS,
    INVOICES,
    cas_update,
    credit_note_id_for,
    invoice_paid_by,
    money,
)
from shared.log import bind, get_logger

if TYPE_CHECKING:  # cold start: a payment fact needs neither the billing contracts nor the document builders
    from shared.events.billing import InvoicePaid
    from shared.invoicing.issuing import Documents

log = get_logger(__name__)

APPLIED = "facts_applied"  # event ids of the facts applied to the invoice (their redeliveries change nothing)
PAID_FACT = "paid_fact"  # the payment fact whose deliveries publish invoice.paid (recorded with the payment)


def paid_fields(d: dict[str, Any], ev: PaymentSucceeded) -> dict[str, Any] | None:
    """The fields that make ``d`` paid by ``ev``, or None when it cannot or need not change (pure)."""
    cur = dom.Status(d["status"])
    try:
        if not dom.transition(cur, dom.Status.PAID):
            if d.get("psp_payment_id") not in (None, ev.psp_payment_id) or d.get("paid_by") == "operator":
                log.error("invoice paid twice; a refund is due", extra={"psp_payment_id": ev.psp_payment_id})
            return None
    except dom.InvalidTransition:
        log.error("payment for an invoice that cannot be paid", extra={"status": cur.value})
        return None
    amount = ev.amount.amount if ev.amount is not None else int(d["amount_due"])
    if amount != int(d["amount_due"]):
        log.warning("payment amount differs from amount due", extra={"paid": amount})
    return {
        "status": dom.Status.PAID.value,
        "paid_at": ev.psp_created_at,
        "amount_paid": amount,
        "psp": ev.psp,
        "psp_payment_id": ev.psp_payment_id,
    }


def dispute_fields(d: dict[str, Any], ev: DisputeOpened | DisputeWon | DisputeLost) -> dict[str, Any] | None:
    """The dispute flag: set while a dispute is open, cleared by its outcome (pure).

    An outcome is remembered in ``disputes_closed`` so a late ``dispute.opened`` (out of order) does not
    flag the invoice again.
    """
    open_ids = list(d.get("disputes", []))
    closed = list(d.get("disputes_closed", []))
    if isinstance(ev, DisputeOpened):
        if ev.dispute_id in open_ids or ev.dispute_id in closed:
            return None
        return {"disputed": True, "disputes": [*open_ids, ev.dispute_id]}
    if ev.dispute_id in closed:
        return None
    rest = [x for x in open_ids if x != ev.dispute_id]
    fields: dict[str, Any] = {"disputed": bool(rest), "disputes": rest, "disputes_closed": [*closed, ev.dispute_id]}
    if isinstance(ev, DisputeLost):
        fields["charged_back"] = True
    return fields


class PaymentFacts:
    def __init__(self, deps: Deps, documents: Documents) -> None:
        self.deps = deps
        self.documents = documents

    def _invoice(self, invoice_id: str) -> Any:
        return self.deps.db.collection(INVOICES).document(invoice_id)

    # -- entry ----------------------------------------------------------------------------------
    def on_payment_fact(self, msg: Received[PaymentEvent]) -> dict[str, Any] | None:
        """Apply the fact now if the invoice is numbered; otherwise keep it for the finalization."""
        from google.api_core.exceptions import AlreadyExists, Conflict

        ev = msg.event
        invoice_id = ev.refs.invoice_id
        if not invoice_id and isinstance(ev, DisputeOpened | DisputeWon | DisputeLost) and ev.psp_payment_id:
            found = invoice_paid_by(self.deps.db, ev.psp_payment_id)  # Stripe's dispute carries no metadata
            invoice_id = found[0] if found else None
        if not invoice_id:
            log.info("payment fact without an invoice reference; nothing to do", extra={"psp": ev.psp})
            return None
        fact_id = msg.envelope.event_id
        with bind(invoice_id=invoice_id, psp=ev.psp):
            ref = self._invoice(invoice_id)
            done = self._apply(ref, fact_id, ev)
            if done is not None:
                return self._announce_paid(ref, done, fact_id=fact_id)
            try:
                ref.collection(FACTS).document(fact_id).create(
                    {
                        "event_type": ev.EVENT_TYPE,
                        "event": ev.model_dump(mode="json"),
                        "psp_created_at": ev.psp_created_at,
                        "applied": False,
                        "recorded_at": self.deps.clock(),
                    }
                )
            except (AlreadyExists, Conflict):
                pass
            return self.apply_facts(invoice_id)

    def apply_facts(self, invoice_id: str, doc: dict[str, Any] | None = None) -> dict[str, Any]:
        """Apply recorded facts in PSP order, once each; a no-op until the invoice has its number.

        ``doc``: the invoice as the caller knows it (the finalization passes what it just wrote).
        """
        from google.cloud.firestore_v1.base_query import FieldFilter

        ref = self._invoice(invoice_id)
        if doc is None:
            snap = ref.get()
            doc = snap.to_dict() if snap.exists else None
        if doc is None or not doc.get("seq"):
            log.info("fact recorded; applied when the invoice is finalized")
            return {"invoice_id": invoice_id, "status": "pending_finalization"}
        facts = sorted(
            ref.collection(FACTS).where(filter=FieldFilter("applied", "==", False)).stream(),
            key=lambda s: s.get("psp_created_at"),
        )
        for f in facts:
            d = f.to_dict() or {}
            self._apply(ref, f.id, _fact_event(d), fact_ref=f.reference)
        if facts:
            doc = ref.get().to_dict() or {}
        return self._announce_paid(ref, doc)

    # -- applying one fact ------------------------------------------------------------------------
    def _apply(self, ref: Any, fact_id: str, ev: PaymentEvent | None, *, fact_ref: Any = None) -> dict[str, Any] | None:
        """Apply one fact to a numbered invoice; the invoice after it, or None when it is not numbered.

        ``fact_ref``: the recorded fact (marked applied afterwards); None on the common path, where the
        fact is recorded on the invoice only (``facts_applied``) or, when it changes nothing, kept as a
        fact document for the audit trail.
        """
        if isinstance(ev, PaymentRefunded):
            return self._refund(ref, fact_id, ev, fact_ref)
        from google.cloud import firestore as fs

        seen: dict[str, Any] = {}

        def change(d: dict[str, Any] | None) -> dict[str, Any] | None:
            seen.clear()
            if d is None or not d.get("seq"):
                return None
            seen["doc"], seen["fields"] = d, None
            if fact_id in d.get(APPLIED, []):
                seen["duplicate"] = True
                return None
            fields: dict[str, Any] | None = None
            if isinstance(ev, PaymentSucceeded):
                fields = paid_fields(d, ev)
            elif isinstance(ev, DisputeOpened | DisputeWon | DisputeLost):
                fields = dispute_fields(d, ev)
            if fields is None:
                return None
            update = {**fields, APPLIED: fs.ArrayUnion([fact_id])}
            if isinstance(ev, PaymentSucceeded) and fact_ref is None:  # announced by this fact's deliveries
                fields = {**fields, PAID_FACT: fact_id, "published": [*d.get("published", []), "paid"]}
                update.update({PAID_FACT: fact_id, "published": fs.ArrayUnion(["paid"])})
            seen["fields"] = fields
            return update

        cas_update(self.deps.db, ref, change)
        if "doc" not in seen:
            return None
        doc, fields = seen["doc"], seen["fields"]
        if isinstance(ev, DisputeOpened) and fields:
            log.warning("invoice disputed", extra={"dispute_id": ev.dispute_id, "reason": ev.reason})
        if fact_ref is not None:
            fact_ref.update({"applied": True})
        elif fields is None and not seen.get("duplicate"):
            self._keep(ref, fact_id, ev, note="changed nothing")
        return {**doc, **(fields or {})}

    def _keep(self, ref: Any, fact_id: str, ev: PaymentEvent | None, note: str) -> None:
        """A fact applied without changing the invoice, kept for the audit trail (rare: not the common path)."""
        ref.collection(FACTS).document(fact_id).set(
            {
                "event_type": ev.EVENT_TYPE if ev is not None else None,
                "event": ev.model_dump(mode="json") if ev is not None else None,
                "psp_created_at": ev.psp_created_at if ev is not None else None,
                "applied": True,
                "note": note,
                "recorded_at": self.deps.clock(),
            }
        )

    def _announce_paid(self, ref: Any, doc: dict[str, Any], fact_id: str | None = None) -> dict[str, Any]:
        """Publish ``invoice.paid`` once the invoice is paid, whoever paid it (same key, same event id).

        ``fact_id``: the fact this delivery carries; when it is the one that paid the invoice on the common
        path (``paid_fact``), ``paid`` was recorded with the payment and this delivery publishes it (again).
        """
        if doc.get("status") == dom.Status.PAID:
            key = f"{doc['invoice_id']}:paid"
            if fact_id is not None and doc.get(PAID_FACT) == fact_id:
                self.deps.publish_again(
                    event=lambda: paid_event(doc), key=key, at=doc["paid_at"], routing=paid_routing(doc)
                )
            else:
                doc = self.deps.publish_once(
                    ref,
                    doc,
                    "paid",
                    event=lambda: paid_event(doc),
                    key=key,
                    at=doc["paid_at"],
                    routing=paid_routing(doc),
                )
        return {"invoice_id": doc.get("invoice_id"), "status": doc.get("status"), "disputed": bool(doc.get("disputed"))}

    # -- refunds and credit notes -------------------------------------------------------------------
    def _refund(self, ref: Any, fact_id: str, ev: PaymentRefunded, fact_ref: Any) -> dict[str, Any] | None:
        """A credit note for the refunded amount (its id derives from the fact: one per fact)."""
        cn_id = credit_note_id_for(fact_id)
        cn_ref = self.deps.db.collection(CREDIT_NOTES).document(cn_id)
        cn_snap = cn_ref.get()
        if cn_snap.exists:
            self.finalize_credit_note(cn_id, cn_snap.to_dict())
            outcome, inv = "credited", None
        else:
            outcome, inv, cn = self._create_credit_note(ref, cn_ref, ev, fact_id)
            if outcome == "not_numbered":
                return None
            if outcome == "credited":
                self.finalize_credit_note(cn_id, cn)
        if fact_ref is not None:
            fact_ref.update({"applied": True, **({"note": "nothing left to credit"} if outcome == "nothing" else {})})
        elif outcome == "nothing":
            self._keep(ref, fact_id, ev, note="nothing left to credit")
        return inv if inv is not None else (ref.get().to_dict() or {})

    def _create_credit_note(
        self, ref: Any, cn_ref: Any, ev: PaymentRefunded, fact_id: str
    ) -> tuple[str, dict[str, Any] | None, dict[str, Any] | None]:
        """Draft the credit note and book its amount on the invoice in ONE conditional commit.

        -> ("credited" | "nothing" | "not_numbered", the invoice after it, the credit note written or None).
        """
        from google.api_core.exceptions import AlreadyExists, Conflict
        from google.cloud import firestore as fs

        from shared.idempotency import precondition, retry_on_contention
        from shared.invoicing.documents import build_credit_note_doc

        def attempt() -> tuple[str, dict[str, Any] | None, dict[str, Any] | None]:
            snap = ref.get()  # a failed precondition (the invoice changed since this read) is retried
            inv = snap.to_dict() if snap.exists else None
            if inv is None or not inv.get("seq"):
                return "not_numbered", None, None
            cur = inv["currency"]
            if ev.refunded.currency != cur:
                raise dom.InvoiceError(f"refund in {ev.refunded.currency} for an invoice in {cur}")
            remaining = int(inv["total"]) - int(inv.get("credited", 0))
            amount = remaining if ev.full else min(ev.refunded.amount, remaining)
            if amount <= 0:
                log.warning("refund exceeds what is left to credit", extra={"refund_id": ev.refund_id})
                return "nothing", inv, None
            now = self.deps.clock()
            cn = build_credit_note_doc(inv, cn_ref.id, Money(amount, cur), ev, s=seller(inv["seller_entity"]), now=now)
            booked: dict[str, Any] = {
                "credited": int(inv.get("credited", 0)) + amount,
                "credit_note_ids": [*inv.get("credit_note_ids", []), cn_ref.id],
            }
            batch = self.deps.db.batch()
            batch.create(cn_ref, cn)
            batch.update(ref, {**booked, APPLIED: fs.ArrayUnion([fact_id])}, option=precondition(snap.update_time))
            try:
                batch.commit()
            except (AlreadyExists, Conflict):
                return "credited", None, None  # a concurrent delivery created it
            return "credited", {**inv, **booked}, cn

        return retry_on_contention(attempt, what=f"crediting {ref.path}")

    def credit_to_balance(self, invoice_id: str, key: str, amount: Money | None, reason: str) -> dict[str, Any]:
        """An operator's credit note on a paid invoice that credits the customer's balance instead of a refund.

        One note per ``key`` (its id derives from it: a retry finds it and only finishes numbering and archiving);
        drafted and booked on the invoice (``credited``) in ONE conditional commit, like a refund's. ``amount`` None:
        all that is left to credit. The caller (:meth:`shared.billing.credit.CreditStore.credit_invoice`) then
        writes the balance entry keyed by the note. -> the numbered note's id, number, total and buyer.
        """
        from google.api_core.exceptions import AlreadyExists, Conflict

        from shared.idempotency import precondition, retry_on_contention
        from shared.invoicing.documents import build_credit_note_doc

        ref = self._invoice(invoice_id)
        cn_ref = self.deps.db.collection(CREDIT_NOTES).document(credit_note_id_for(f"balance:{invoice_id}:{key}"))

        def attempt() -> dict[str, Any]:
            existing = cn_ref.get()
            if existing.exists:
                return existing.to_dict() or {}
            snap = ref.get()
            inv = snap.to_dict() if snap.exists else None
            if inv is None:
                raise CreditRefused(404, "invoice_not_found", invoice_id)
            if inv.get("status") != dom.Status.PAID.value:
                raise CreditRefused(409, "invoice_not_paid", f"invoice {invoice_id} is {inv.get('status')}")
            cur, remaining = inv["currency"], int(inv["total"]) - int(inv.get("credited", 0))
            wanted = remaining if amount is None else amount.amount
            if amount is not None and amount.currency != cur:
                raise CreditRefused(422, "currency_mismatch", f"the invoice is in {cur}")
            if not 0 < wanted <= remaining:
                raise CreditRefused(422, "invalid_amount", f"between 1 and {remaining} {cur} minor units remain")
            cn = build_credit_note_doc(
                inv,
                cn_ref.id,
                Money(wanted, cur),
                None,
                s=seller(inv["seller_entity"]),
                now=self.deps.clock(),
                reason=reason,
            )
            booked: dict[str, Any] = {
                "credited": int(inv.get("credited", 0)) + wanted,
                "credit_note_ids": [*inv.get("credit_note_ids", []), cn_ref.id],
            }
            batch = self.deps.db.batch()
            batch.create(cn_ref, cn)
            batch.update(ref, booked, option=precondition(snap.update_time))
            try:
                batch.commit()
            except (AlreadyExists, Conflict):
                return cn_ref.get().to_dict() or {}  # created concurrently under the same key
            return cn

        with bind(invoice_id=invoice_id):
            cn = retry_on_contention(attempt, what=f"crediting {ref.path}")
            out = self.finalize_credit_note(cn_ref.id, cn)
        return {**out, "total": money(cn, "total"), "customer_id": cn["buyer"]["id"], "invoice_id": invoice_id}

    def finalize_credit_note(self, cn_id: str, doc: dict[str, Any] | None = None) -> dict[str, Any]:
        """Number, archive and announce a credit note (``credit_note.issued``), each once."""
        from shared.events.billing import CreditNoteIssued

        ref = self.deps.db.collection(CREDIT_NOTES).document(cn_id)
        try:
            doc = self.documents.number(ref, doc, "issued")
        except LookupError:
            raise LookupError(f"credit note {cn_id} does not exist") from None
        fields = self.documents.archive(doc)
        doc = {**doc, **fields}
        self.deps.publish_once(
            ref,
            doc,
            "issued",
            event=lambda: CreditNoteIssued(
                invoice_id=doc["invoice_id"],
                number=doc["invoice_number"],
                subscription_id=doc.get("subscription_id"),
                customer_id=doc["buyer"]["id"],
                credit_note_id=cn_id,
                credit_note_number=doc["number"],
                amount=money(doc, "total"),
                reason=doc.get("reason"),
                refund_id=doc.get("refund_id"),
                pdf_uri=doc.get("pdf_uri"),
            ),
            key=f"{cn_id}:issued",
            at=doc["finalized_at"],
            fields=fields,
        )
        log.info("credit note issued", extra={"number": doc["number"], "credit_note_id": cn_id})
        return {"credit_note_id": cn_id, "number": doc["number"]}


class CreditRefused(Exception):
    """An operator credit note that cannot be issued: HTTP status, machine-readable code, detail."""

    def __init__(self, status: int, code: str, detail: str) -> None:
        super().__init__(f"{status} {code}: {detail}")
        self.status, self.code, self.detail = status, code, detail


def _fact_event(d: dict[str, Any]) -> PaymentEvent | None:
    etype = d.get("event_type")
    for cls in (PaymentSucceeded, PaymentRefunded, DisputeOpened, DisputeWon, DisputeLost):
        if etype == cls.EVENT_TYPE:
            return cls.model_validate(d["event"])
    return None


def paid_routing(doc: dict[str, Any]) -> dict[str, str]:
    """Attributes of ``invoice.paid`` for subscription filters: the renewals function does not need the
    ones of auto-collected invoices paid by a payment (its own charge's fact already settled the period)."""
    return {
        "collection": str(doc.get("collection") or ""),
        "paid_by": "operator" if doc.get("paid_by") == "operator" else "payment",
    }


def paid_event(doc: dict[str, Any]) -> InvoicePaid:
    from shared.events.billing import InvoicePaid

    return InvoicePaid(
        invoice_id=doc["invoice_id"],
        number=doc["number"],
        subscription_id=doc.get("subscription_id"),
        customer_id=doc["buyer"]["id"],
        amount_paid=Money(int(doc["amount_paid"]), doc["currency"]),
        paid_at=doc["paid_at"],
        psp=doc.get("psp"),
        psp_payment_id=doc.get("psp_payment_id"),
        collection=doc.get("collection"),
        paid_by="operator" if doc.get("paid_by") == "operator" else "payment",
        reason=doc.get("paid_reason"),
    )
