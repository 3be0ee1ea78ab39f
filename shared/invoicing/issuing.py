"""Use case: issuing and numbering. RenewalDue -> draft -> gapless number -> archived PDF -> invoice.finalized.

Every step is re-entrant, so a redelivery after a crash at any point finishes the job without doing
anything twice:

* the invoice id is derived from ``request_id``; the invoice is created WITH its number, in the
  allocator's group commit (``create``: one write, no draft write before it; until that commit the
  unacknowledged RenewalDue is the queue entry, so a crash before it stores nothing and the redelivery
  starts afresh). A delivery that finds the invoice stored (a redelivery) carries on from the stored
  document;
* the number is allocated once (the allocator skips documents that already have one);
* the PDF is rendered deterministically and archived (:class:`~shared.invoicing.storage.ArchiveWriter`)
  before anything is announced; its URI, sha256 and size are recorded in the same write as the
  ``finalized`` publication mark (the publish-once helper), once.

Cost: what the message carries and what this delivery wrote are not read back. A first delivery reads
only the facts recorded for the invoice (one query, usually empty) and writes the invoice twice: created
numbered, then the archived PDF with the ``finalized`` mark.

A RenewalDue delivered again for an invoice that is finalized and still open re-announces
``invoice.finalized`` (same idempotency key, so the same event id: consumers deduplicate it). That is how
a lost or dead-lettered announcement is recovered: the planner re-sends the request of a period that is
not paid. A paid, void or uncollectible invoice is not re-announced.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Protocol

from shared.domain import invoices as dom
from shared.domain.money import Money
from shared.events import Received
from shared.idempotency import payload_hash
from shared.invoicing import pdf as pdfmod
from shared.invoicing import storage
from shared.invoicing.allocator import QUEUE
from shared.invoicing.deps import Deps
from shared.invoicing.entities import seller
from shared.invoicing.repository import INVOICES, document_view, invoice_id_for, money
from shared.log import bind, get_logger

if TYPE_CHECKING:  # cold start: the billing contracts and document builders load when an invoice is issued
    from shared.billing.credit import CreditStore
    from shared.events.billing import InvoiceFinalized, RenewalDue

log = get_logger(__name__)


class Documents:
    """The two steps every issued document (invoice or credit note) goes through: number, archive."""

    def __init__(self, deps: Deps) -> None:
        self.deps = deps

    def number(self, ref: Any, doc: dict[str, Any] | None, status_after: str) -> dict[str, Any]:
        """The document with its number (allocated now if it has none); ``doc`` saves a read when given."""
        doc = doc if doc is not None else ref.get().to_dict()
        if doc is None:
            raise LookupError(f"{ref.path} does not exist")
        if doc.get("seq"):
            return dict(doc)
        from shared.invoicing.documents import pending

        alloc = self.deps.alloc
        if doc.get(QUEUE) != doc["series_id"]:  # queued with the draft; older documents are queued now
            alloc.enqueue(doc["series_id"], pending(ref.path, doc, status_after))
        doc = {**doc, **alloc.wait_numbered(doc["series_id"], ref.path)}
        doc.pop(QUEUE, None)
        return doc

    def create_numbered(self, ref: Any, doc: dict[str, Any], status_after: str) -> dict[str, Any]:
        """Store the new document ``doc`` (queued fields included) with its number, in the numbering commit.

        When it is stored already (a redelivery) the stored document stands and is numbered if it is not.
        """
        got = self.deps.alloc.create_numbered(doc["series_id"], ref.path, doc)
        if got.get("request_hash", doc.get("request_hash")) != doc.get("request_hash"):
            log.warning("request_id seen before with other content; the first request stands")
        if not got.get("seq"):  # stored before without a number (a draft of another path): queue it
            return self.number(ref, got, status_after)
        numbered = {**doc, **got}
        numbered.pop(QUEUE, None)
        return numbered

    def archive(self, doc: dict[str, Any]) -> dict[str, Any]:
        """Render and archive the PDF of a numbered document; the fields that record it ({} if recorded)."""
        if doc.get("pdf_sha256"):
            return {}
        data = pdfmod.render(document_view(doc))
        stored = self.deps.archive.store(doc["series_id"], storage.object_name(doc["series_id"], doc["number"]), data)
        return {"pdf_uri": stored.uri, "pdf_sha256": stored.sha256, "pdf_bytes": stored.size}


class CreditLedger(Protocol):
    """The customer's credit balance (``shared.billing.credit.CreditStore``): one decision per invoice."""

    def apply_credit(self, customer_id: str, invoice_id: str, amount_due: Money) -> Money: ...


class _BillingLedger:
    """The billing credit store on the invoices function's Firestore and clock; no customer record, no credit."""

    def __init__(self, deps: Deps) -> None:
        self._deps = deps
        self._store: CreditStore | None = None  # built on first use: a payment fact never loads the billing API

    def apply_credit(self, customer_id: str, invoice_id: str, amount_due: Money) -> Money:
        from shared.billing.deps import BillingError

        if self._store is None:
            from shared.billing.credit import CreditStore
            from shared.billing.deps import BillingDeps

            deps = self._deps
            self._store = CreditStore(BillingDeps(db=lambda: deps.db, clock=deps.clock))
        try:
            return self._store.apply_credit(customer_id, invoice_id, amount_due)
        except BillingError as exc:
            if exc.status == 404:  # a customer of the plan era, never recorded in the billing customers
                return Money.zero(amount_due.currency)
            raise


class IssueInvoices:
    """RenewalDue -> numbered, archived, announced invoice; then whatever payment facts were waiting."""

    def __init__(
        self,
        deps: Deps,
        documents: Documents,
        apply_facts: Callable[[str, dict[str, Any]], Any],
        credit: CreditLedger | None = None,
    ) -> None:
        self.deps = deps
        self.documents = documents
        self._apply_facts = apply_facts
        self.credit = credit or _BillingLedger(deps)

    def apply_credit(self, invoice_id: str, doc: dict[str, Any], *, stored: bool = True) -> dict[str, Any]:
        """Pay the invoice from the customer's credit balance after tax, once: the ledger decides once per invoice
        (a redelivery or a parallel finalization gets the first decision), and the invoice records it before its
        number, PDF and announcement, so every copy shows the same amount due. ``stored=False``: the invoice is
        not written yet, the decision goes into the document that will be created (no write of its own)."""
        if not doc.get("apply_credit") or doc.get("credit_decided") or doc.get("pdf_sha256"):
            return doc
        if doc.get("status") not in (dom.Status.DRAFT.value, dom.Status.OPEN.value):
            return doc
        before = int(doc["amount_due"]) + int(doc.get("credit_applied", 0))
        applied = self.credit.apply_credit(doc["buyer"]["id"], invoice_id, Money(before, doc["currency"]))
        fields = {"credit_applied": applied.amount, "amount_due": before - applied.amount, "credit_decided": True}
        if stored:
            self.deps.db.collection(INVOICES).document(invoice_id).update(fields)
        if applied.amount:
            log.info("credit balance applied", extra={"credit_applied": applied.amount})
        return {**doc, **fields}

    def on_renewal_due(self, msg: Received[RenewalDue]) -> dict[str, Any]:
        ev = msg.event
        invoice_id = invoice_id_for(ev.request_id)
        with bind(invoice_id=invoice_id, subscription_id=ev.subscription_id):
            return self.finalize(invoice_id, self.issue_numbered(ev, invoice_id))

    def issue_numbered(self, ev: RenewalDue, invoice_id: str) -> dict[str, Any]:
        """Price the request and create the invoice with its number in one write; returns the stored document.

        The issue time (and so the series) is fixed here; the credit balance decision goes into the same
        write. A redelivery gets the stored invoice (numbered now if it was not).
        """
        from shared.invoicing.documents import build_invoice_doc

        ref = self.deps.db.collection(INVOICES).document(invoice_id)
        # The billing reason labels the request id (older requests lack it): not part of the content compared.
        request_hash = payload_hash(ev.model_dump(mode="json", exclude={"attempt", "billing_reason"}))
        doc = build_invoice_doc(ev, invoice_id, seller(ev.seller_entity), self.deps.clock(), request_hash)
        doc = self.apply_credit(invoice_id, doc, stored=False)
        doc = self.documents.create_numbered(ref, doc, dom.Status.OPEN.value)
        log.info("invoice issued", extra={"request_id": ev.request_id, "total": doc["total"], "number": doc["number"]})
        return doc

    def create_draft(self, ev: RenewalDue, invoice_id: str) -> dict[str, Any]:
        """Price the request and store the draft, once; returns the stored document.

        The issue time (and so the series) is fixed here, and the draft is written already queued for
        its number, so the common path costs one write before numbering.
        """
        from google.api_core.exceptions import AlreadyExists, Conflict

        from shared.invoicing.documents import build_invoice_doc

        ref = self.deps.db.collection(INVOICES).document(invoice_id)
        request_hash = payload_hash(ev.model_dump(mode="json", exclude={"attempt", "billing_reason"}))
        doc = build_invoice_doc(ev, invoice_id, seller(ev.seller_entity), self.deps.clock(), request_hash)
        try:
            ref.create(doc)
        except (AlreadyExists, Conflict):
            existing = ref.get().to_dict() or {}
            if existing.get("request_hash") != request_hash:
                log.warning("request_id seen before with other content; the first request stands")
            return dict(existing)
        log.info("invoice drafted", extra={"request_id": ev.request_id, "total": doc["total"]})
        return doc

    def number(self, invoice_id: str, doc: dict[str, Any] | None = None) -> dict[str, Any]:
        """Step one of finalization: the invoice with its number (allocated now if it has none)."""
        ref = self.deps.db.collection(INVOICES).document(invoice_id)
        try:
            return self.documents.number(ref, doc, dom.Status.OPEN.value)
        except LookupError:
            raise LookupError(f"invoice {invoice_id} does not exist") from None

    def _risk(self, doc: dict[str, Any]) -> dict[str, Any] | None:
        """The customer's risk profile for the collector (auto-collect only): this function waits on I/O
        anyway, so the read is made here and the charge path decides in pure CPU (``shared.risk.gate``)."""
        if doc.get("collection") != "charge_automatically":
            return None
        from shared.risk.gate import snapshot_for

        due = int(doc.get("amount_due") or 0)
        return snapshot_for(doc["buyer"]["id"], doc.get("payment_method"), due, self.deps.clock())

    def finalize(self, invoice_id: str, doc: dict[str, Any] | None = None) -> dict[str, Any]:
        """Number (once), archive the PDF (once), publish ``invoice.finalized``, apply waiting facts."""
        ref = self.deps.db.collection(INVOICES).document(invoice_id)
        if doc is None:
            doc = ref.get().to_dict()
            if doc is None:
                raise LookupError(f"invoice {invoice_id} does not exist")
        doc = self.number(invoice_id, self.apply_credit(invoice_id, doc))
        with bind(invoice_id=invoice_id):
            fields = self.documents.archive(doc)
            doc = {**doc, **fields}
            announced = "finalized" in doc.get("published", [])
            if not announced or doc.get("status") == dom.Status.OPEN.value:
                if announced:
                    log.info("finalized invoice still open; invoice.finalized re-announced")
                doc = self.deps.publish_once(
                    ref,
                    doc,
                    "finalized",
                    event=lambda: finalized_event(doc, risk=self._risk(doc)),
                    key=f"{invoice_id}:finalized",
                    at=doc["finalized_at"],
                    fields=fields,
                    again=True,
                )
            elif fields:
                ref.update(fields)
            log.info("invoice finalized", extra={"number": doc["number"], "series_id": doc["series_id"]})
            self._apply_facts(invoice_id, doc)
        return {"invoice_id": invoice_id, "number": doc["number"], "status": doc["status"]}


def finalized_event(doc: dict[str, Any], risk: dict[str, Any] | None = None) -> InvoiceFinalized:
    from shared.events.billing import InvoiceFinalized, RiskSnapshot, billing_reason_of

    return InvoiceFinalized(
        invoice_id=doc["invoice_id"],
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
        due_at=doc.get("due_at"),
        discount=money(doc, "discount") if "discount" in doc else None,
        credit_applied=money(doc, "credit_applied") if "credit_applied" in doc else None,
        risk=RiskSnapshot.model_validate(risk) if risk is not None else None,
        billing_reason=doc.get("billing_reason")
        or billing_reason_of(doc["request_id"], doc.get("subscription_id"), doc.get("period_index")),
    )
