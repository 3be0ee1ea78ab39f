"""The invoices service: renewal-due -> numbered invoice + PDF; payment facts -> paid, credit note, flag.

Every step is re-entrant, so a redelivery after a crash at any point finishes the job without doing
anything twice:

* the invoice id is derived from ``request_id`` and the draft is written with ``create()``;
* the number is allocated once (the allocator skips documents that already have one);
* the PDF is stored under a stable name only if absent, and its sha256 recorded once;
* an event is published with its contract's idempotency key (same fact -> same ``event_id``) and
  marked in ``published``; a crash between the two only re-publishes the same event id.

Payment facts are recorded under the invoice first (``invoices/{id}/facts``), then applied when the
invoice is numbered; a payment that overtakes its invoice's finalization is therefore kept, and applied
by the finalization itself.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Any

from shared import clients
from shared.domain import invoices as dom
from shared.domain.money import Money
from shared.domain.numbering import SeriesDef
from shared.domain.tax import decide
from shared.events import Received, publish
from shared.events.billing import (
    CreditNoteIssued,
    InvoiceFinalized,
    InvoiceMarkedUncollectible,
    InvoicePaid,
    InvoiceVoided,
    RenewalDue,
)
from shared.events.payments import DisputeOpened, PaymentEvent, PaymentRefunded, PaymentSucceeded
from shared.idempotency import payload_hash
from shared.invoicing import pdf as pdfmod
from shared.invoicing import storage
from shared.invoicing.allocator import QUEUE, SERIES_DEF, NumberAllocator, Pending, queue_fields
from shared.invoicing.entities import Seller, seller
from shared.invoicing.repository import (
    CREDIT_NOTES,
    FACTS,
    INVOICES,
    cas_update,
    credit_note_id_for,
    document_view,
    invoice_id_for,
    line_doc,
    line_from,
    money,
    row_doc,
)
from shared.log import bind, get_logger

log = get_logger(__name__)


def _utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


@dataclass
class InvoiceService:
    """Wiring of the invoices function; tests build one with a small allocator batch or failure hooks."""

    db: Any = None
    allocator: NumberAllocator | None = None
    clock: Any = field(default=_utcnow)
    publish_events: bool = True

    def __post_init__(self) -> None:
        if self.db is None:
            self.db = clients.firestore()
        if self.allocator is None:
            self.allocator = NumberAllocator(self.db)

    @property
    def alloc(self) -> NumberAllocator:
        assert self.allocator is not None
        return self.allocator

    # -- renewal due -> invoice -------------------------------------------------------------------
    def on_renewal_due(self, msg: Received[RenewalDue]) -> dict[str, Any]:
        ev = msg.event
        invoice_id = invoice_id_for(ev.request_id)
        with bind(invoice_id=invoice_id, subscription_id=ev.subscription_id):
            return self.finalize(invoice_id, self.create_draft(ev, invoice_id))

    def create_draft(self, ev: RenewalDue, invoice_id: str) -> dict[str, Any]:
        """Price the request and store the draft, once; returns the stored document.

        The issue time (and so the series) is fixed here, and the draft is written already queued for
        its number, so the common path costs one write before numbering.
        """
        from google.api_core.exceptions import AlreadyExists, Conflict

        ref = self.db.collection(INVOICES).document(invoice_id)
        request_hash = payload_hash(ev.model_dump(mode="json", exclude={"attempt"}))
        doc = build_invoice_doc(ev, invoice_id, seller(ev.seller_entity), self.clock(), request_hash)
        try:
            ref.create(doc)
        except (AlreadyExists, Conflict):
            existing = ref.get().to_dict() or {}
            self._warn_if_changed(existing, request_hash)
            return dict(existing)
        log.info("invoice drafted", extra={"request_id": ev.request_id, "total": doc["total"]})
        return doc

    @staticmethod
    def _warn_if_changed(existing: dict[str, Any], request_hash: str) -> None:
        if existing.get("request_hash") != request_hash:
            log.warning("request_id seen before with other content; the first request stands")

    def finalize(self, invoice_id: str, doc: dict[str, Any] | None = None) -> dict[str, Any]:
        """Number (once), render and store the PDF (once), publish ``invoice.finalized``; re-entrant."""
        ref = self.db.collection(INVOICES).document(invoice_id)
        doc = self.number(invoice_id, doc)
        with bind(invoice_id=invoice_id):
            doc = self._store_pdf(ref, doc)
            if "finalized" not in doc.get("published", []):
                self._publish(
                    InvoiceFinalized(
                        invoice_id=invoice_id,
                        number=doc["number"],
                        subscription_id=doc.get("subscription_id"),
                        customer_id=doc["buyer"]["id"],
                        request_id=doc["request_id"],
                        period_start=doc.get("period_start"),
                        period_end=doc.get("period_end"),
                        subtotal=money(doc, "subtotal"),
                        tax=money(doc, "tax"),
                        total=money(doc, "total"),
                        amount_due=money(doc, "amount_due"),
                        collection=doc["collection"],
                        payment_method=doc.get("payment_method"),
                        finalized_at=doc["finalized_at"],
                        pdf_uri=doc.get("pdf_uri"),
                    ),
                    f"{invoice_id}:finalized",
                    doc["finalized_at"],
                )
                self._mark_published(ref, "finalized")
            log.info("invoice finalized", extra={"number": doc["number"], "series_id": doc["series_id"]})
            self.apply_facts(invoice_id)
        return {"invoice_id": invoice_id, "number": doc["number"], "status": doc["status"]}

    def number(self, invoice_id: str, doc: dict[str, Any] | None = None) -> dict[str, Any]:
        """Step one of finalization: the invoice with its number (allocated now if it has none).

        ``doc`` is the document as just read or written by the caller, saving a read.
        """
        ref = self.db.collection(INVOICES).document(invoice_id)
        doc = doc if doc is not None else ref.get().to_dict()
        if doc is None:
            raise LookupError(f"invoice {invoice_id} does not exist")
        if doc.get("seq"):
            return dict(doc)
        if doc.get(QUEUE) != doc["series_id"]:  # queued with the draft; older documents are queued now
            self.alloc.enqueue(doc["series_id"], _pending(ref.path, doc, "open"))
        doc = {**doc, **self.alloc.wait_numbered(doc["series_id"], ref.path)}
        doc.pop(QUEUE, None)
        return doc

    def _store_pdf(self, ref: Any, doc: dict[str, Any]) -> dict[str, Any]:
        if doc.get("pdf_sha256"):
            return doc
        data = pdfmod.render(document_view(doc))
        stored = storage.put_once(storage.object_name(doc["series_id"], doc["number"]), data)
        fields = {"pdf_uri": stored.uri, "pdf_sha256": stored.sha256, "pdf_bytes": stored.size}
        cas_update(self.db, ref, lambda d: None if (d or {}).get("pdf_sha256") else fields)
        return dict(ref.get().to_dict() or {})

    def _publish(self, event: Any, key: str, occurred_at: dt.datetime) -> None:
        if self.publish_events:
            publish(event, idempotency_key=key, occurred_at=occurred_at)

    def _mark_published(self, ref: Any, what: str) -> None:
        from google.cloud import firestore as fs

        ref.update({"published": fs.ArrayUnion([what])})

    # -- payment facts --------------------------------------------------------------------------
    def on_payment_fact(self, msg: Received[PaymentEvent]) -> dict[str, Any] | None:
        """Record the fact under its invoice, then apply whatever can be applied now."""
        from google.api_core.exceptions import AlreadyExists, Conflict

        ev = msg.event
        invoice_id = ev.refs.invoice_id
        if not invoice_id:
            log.info("payment fact without an invoice reference; nothing to do", extra={"psp": ev.psp})
            return None
        with bind(invoice_id=invoice_id, psp=ev.psp):
            fact_ref = (
                self.db.collection(INVOICES).document(invoice_id).collection(FACTS).document(msg.envelope.event_id)
            )
            try:
                fact_ref.create(
                    {
                        "event_type": ev.EVENT_TYPE,
                        "event": ev.model_dump(mode="json"),
                        "psp_created_at": ev.psp_created_at,
                        "applied": False,
                        "recorded_at": self.clock(),
                    }
                )
            except (AlreadyExists, Conflict):
                pass
            return self.apply_facts(invoice_id)

    def apply_facts(self, invoice_id: str) -> dict[str, Any]:
        """Apply recorded facts in PSP order, once each; a no-op until the invoice has its number."""
        from google.cloud.firestore_v1.base_query import FieldFilter

        ref = self.db.collection(INVOICES).document(invoice_id)
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
            etype = d["event_type"]
            if etype == PaymentSucceeded.EVENT_TYPE:
                self._apply_paid(ref, f.reference, PaymentSucceeded.model_validate(d["event"]))
            elif etype == PaymentRefunded.EVENT_TYPE:
                self._apply_refund(ref, f.reference, PaymentRefunded.model_validate(d["event"]), f.id)
            elif etype == DisputeOpened.EVENT_TYPE:
                self._apply_dispute(ref, f.reference, DisputeOpened.model_validate(d["event"]))
            else:
                f.reference.update({"applied": True})
        doc = ref.get().to_dict() or {}
        if doc.get("status") == dom.Status.PAID and "paid" not in doc.get("published", []):
            self._publish(
                InvoicePaid(
                    invoice_id=invoice_id,
                    number=doc["number"],
                    subscription_id=doc.get("subscription_id"),
                    customer_id=doc["buyer"]["id"],
                    amount_paid=Money(int(doc["amount_paid"]), doc["currency"]),
                    paid_at=doc["paid_at"],
                    psp=doc.get("psp"),
                    psp_payment_id=doc.get("psp_payment_id"),
                ),
                f"{invoice_id}:paid",
                doc["paid_at"],
            )
            self._mark_published(ref, "paid")
        return {"invoice_id": invoice_id, "status": doc.get("status"), "disputed": bool(doc.get("disputed"))}

    def _apply_paid(self, ref: Any, fact_ref: Any, ev: PaymentSucceeded) -> None:
        def change(d: dict[str, Any] | None) -> dict[str, Any] | None:
            cur = dom.Status((d or {})["status"])
            try:
                if not dom.transition(cur, dom.Status.PAID):
                    if (d or {}).get("psp_payment_id") not in (None, ev.psp_payment_id):
                        log.error("invoice paid twice; a refund is due", extra={"psp_payment_id": ev.psp_payment_id})
                    return None
            except dom.InvalidTransition:
                log.error("payment for an invoice that cannot be paid", extra={"status": cur.value})
                return None
            amount = ev.amount.amount if ev.amount is not None else int((d or {})["amount_due"])
            if amount != int((d or {})["amount_due"]):
                log.warning("payment amount differs from amount due", extra={"paid": amount})
            return {
                "status": dom.Status.PAID.value,
                "paid_at": ev.psp_created_at,
                "amount_paid": amount,
                "psp": ev.psp,
                "psp_payment_id": ev.psp_payment_id,
            }

        cas_update(self.db, ref, change)
        fact_ref.update({"applied": True})

    def _apply_dispute(self, ref: Any, fact_ref: Any, ev: DisputeOpened) -> None:
        from google.cloud import firestore as fs

        ref.update({"disputed": True, "disputes": fs.ArrayUnion([ev.dispute_id])})
        log.warning("invoice disputed", extra={"dispute_id": ev.dispute_id, "reason": ev.reason})
        fact_ref.update({"applied": True})

    def _apply_refund(self, ref: Any, fact_ref: Any, ev: PaymentRefunded, fact_id: str) -> None:
        cn_id = credit_note_id_for(fact_id)
        cn_ref = self.db.collection(CREDIT_NOTES).document(cn_id)
        if not cn_ref.get().exists and not self._create_credit_note(ref, cn_ref, ev):
            fact_ref.update({"applied": True, "note": "nothing left to credit"})
            return
        self.finalize_credit_note(cn_id)
        fact_ref.update({"applied": True})

    def _create_credit_note(self, ref: Any, cn_ref: Any, ev: PaymentRefunded) -> bool:
        """Draft the credit note and book its amount on the invoice in ONE conditional commit."""
        from google.api_core.exceptions import AlreadyExists, Conflict

        from shared.idempotency import precondition, retry_on_contention

        def attempt() -> bool:  # a failed precondition (the invoice changed since the read) is retried
            snap = ref.get()
            inv = snap.to_dict() or {}
            cur = inv["currency"]
            if ev.refunded.currency != cur:
                raise dom.InvoiceError(f"refund in {ev.refunded.currency} for an invoice in {cur}")
            remaining = int(inv["total"]) - int(inv.get("credited", 0))
            amount = remaining if ev.full else min(ev.refunded.amount, remaining)
            if amount <= 0:
                log.warning("refund exceeds what is left to credit", extra={"refund_id": ev.refund_id})
                return False
            now = self.clock()
            cn = build_credit_note_doc(inv, cn_ref.id, Money(amount, cur), ev, s=seller(inv["seller_entity"]), now=now)
            batch = self.db.batch()
            batch.create(cn_ref, cn)
            batch.update(
                ref,
                {
                    "credited": int(inv.get("credited", 0)) + amount,
                    "credit_note_ids": [*inv.get("credit_note_ids", []), cn_ref.id],
                },
                option=precondition(snap.update_time),
            )
            try:
                batch.commit()
            except (AlreadyExists, Conflict):
                return True  # a concurrent delivery created it
            return True

        return retry_on_contention(attempt, what=f"crediting {ref.path}")

    def finalize_credit_note(self, cn_id: str) -> dict[str, Any]:
        ref = self.db.collection(CREDIT_NOTES).document(cn_id)
        doc = ref.get().to_dict()
        if doc is None:
            raise LookupError(f"credit note {cn_id} does not exist")
        if not doc.get("seq"):
            if doc.get(QUEUE) != doc["series_id"]:
                self.alloc.enqueue(doc["series_id"], _pending(ref.path, doc, "issued"))
            doc = {**doc, **self.alloc.wait_numbered(doc["series_id"], ref.path)}
        doc = self._store_pdf(ref, doc)
        if "issued" not in doc.get("published", []):
            self._publish(
                CreditNoteIssued(
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
                f"{cn_id}:issued",
                doc["finalized_at"],
            )
            self._mark_published(ref, "issued")
        log.info("credit note issued", extra={"number": doc["number"], "credit_note_id": cn_id})
        return {"credit_note_id": cn_id, "number": doc["number"]}

    # -- operator transitions -------------------------------------------------------------------
    def void(self, invoice_id: str, reason: str | None = None) -> dict[str, Any]:
        return self._terminal(invoice_id, dom.Status.VOID, reason)

    def mark_uncollectible(self, invoice_id: str, reason: str | None = None) -> dict[str, Any]:
        return self._terminal(invoice_id, dom.Status.UNCOLLECTIBLE, reason)

    def _terminal(self, invoice_id: str, target: dom.Status, reason: str | None) -> dict[str, Any]:
        ref = self.db.collection(INVOICES).document(invoice_id)

        def change(d: dict[str, Any] | None) -> dict[str, Any] | None:
            if d is None:
                raise LookupError(f"invoice {invoice_id} does not exist")
            if not dom.transition(dom.Status(d["status"]), target):
                return None
            return {"status": target.value, f"{target.value}_at": self.clock(), f"{target.value}_reason": reason}

        cas_update(self.db, ref, change)
        doc = ref.get().to_dict() or {}
        what = target.value
        if doc.get("status") == what and what not in doc.get("published", []):
            cls = InvoiceVoided if target == dom.Status.VOID else InvoiceMarkedUncollectible
            self._publish(
                cls(
                    invoice_id=invoice_id,
                    number=doc["number"],
                    subscription_id=doc.get("subscription_id"),
                    customer_id=doc["buyer"]["id"],
                    reason=doc.get(f"{what}_reason"),
                ),
                f"{invoice_id}:{'voided' if target == dom.Status.VOID else 'uncollectible'}",
                doc[f"{what}_at"],
            )
            self._mark_published(ref, what)
        return {"invoice_id": invoice_id, "status": doc.get("status"), "number": doc.get("number")}


def _pending(path: str, doc: dict[str, Any], status_after: str) -> Pending:
    return Pending(path, doc["issued_at"], SeriesDef.from_fields(doc[SERIES_DEF]), status_after)


def _series_fields(series: SeriesDef, at: dt.datetime, path: str, status_after: str) -> dict[str, Any]:
    """Series, issue time and the queue fields: a draft is queued for its number as it is created."""
    sid = series.series_id(at)
    return {
        "series_id": sid,
        "issued_at": at,
        **queue_fields(sid, Pending(path, at, series, status_after)),
    }


def _seller_doc(s: Seller) -> dict[str, Any]:
    return {"name": s.name, "country": s.country, "vat_id": s.vat_id, "address_lines": list(s.address_lines)}


def build_invoice_doc(
    ev: RenewalDue, invoice_id: str, s: Seller, now: dt.datetime, request_hash: str
) -> dict[str, Any]:
    """The draft invoice document (pure: tests price requests through it without Firestore)."""
    c = ev.customer
    decision = decide(s.country, c.country, vat_id=c.vat_id, tax_exempt=c.tax_exempt)
    specs = [dom.LineSpec(ln.description, ln.quantity, ln.unit_amount, ln.kind, ln.tax_category) for ln in ev.lines]
    lines = dom.price_lines(specs, ev.currency, decision)
    t = dom.totals(lines, ev.currency)
    return {
        "kind": "invoice",
        "invoice_id": invoice_id,
        "request_id": ev.request_id,
        "request_hash": request_hash,
        "subscription_id": ev.subscription_id,
        "seller_entity": ev.seller_entity,
        "status": dom.Status.DRAFT.value,
        "currency": ev.currency,
        "seller": _seller_doc(s),
        "buyer": c.model_dump(mode="json"),
        "treatment": decision.treatment.value,
        "wording": decision.wording,
        "lines": [line_doc(ln) for ln in lines],
        "breakdown": [row_doc(r) for r in t.breakdown],
        "subtotal": t.subtotal.amount,
        "tax": t.tax.amount,
        "total": t.total.amount,
        "amount_due": t.amount_due.amount,
        "credited": 0,
        "period_start": ev.period_start,
        "period_end": ev.period_end,
        "collection": ev.collection,
        "payment_method": ev.payment_method.model_dump(mode="json") if ev.payment_method else None,
        "created_at": now,
        "published": [],
        **_series_fields(s.series("invoice"), now, f"{INVOICES}/{invoice_id}", dom.Status.OPEN.value),
    }


def build_credit_note_doc(
    inv: dict[str, Any], cn_id: str, amount: Money, ev: PaymentRefunded, *, s: Seller, now: dt.datetime
) -> dict[str, Any]:
    cur = inv["currency"]
    inv_lines = [line_from(d, cur) for d in inv["lines"]]
    full = amount.amount == int(inv["total"]) - int(inv.get("credited", 0)) and not inv.get("credited")
    lines = dom.credit_lines(inv_lines, amount, full=full)
    t = dom.totals(lines, cur)
    return {
        "kind": "credit_note",
        "credit_note_id": cn_id,
        "invoice_id": inv["invoice_id"],
        "invoice_number": inv["number"],
        "subscription_id": inv.get("subscription_id"),
        "seller_entity": inv["seller_entity"],
        "status": "draft",
        "currency": cur,
        "seller": inv["seller"],
        "buyer": inv["buyer"],
        "treatment": inv["treatment"],
        "wording": inv.get("wording"),
        "lines": [line_doc(ln) for ln in lines],
        "breakdown": [row_doc(r) for r in t.breakdown],
        "subtotal": t.subtotal.amount,
        "tax": t.tax.amount,
        "total": t.total.amount,
        "refund_id": ev.refund_id,
        "reason": "refund" + (" (full)" if ev.full else " (partial)"),
        "created_at": now,
        "published": [],
        **_series_fields(s.series("credit_note"), now, f"{CREDIT_NOTES}/{cn_id}", "issued"),
    }
