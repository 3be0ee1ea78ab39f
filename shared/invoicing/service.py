"""The invoices service: one object per use case, sharing one set of collaborators.

* :class:`~shared.invoicing.issuing.IssueInvoices`: issuing and numbering (RenewalDue -> invoice);
* :class:`~shared.invoicing.payments.PaymentFacts`: payment facts and credit notes;
* :class:`~shared.invoicing.operator.OperatorTransitions`: void, uncollectible, mark paid.

They share :class:`~shared.invoicing.deps.Deps` (Firestore, the numbering allocator, the clock, the PDF
archive writer, and the one publish-once helper). :class:`InvoiceService` wires them for a function
instance (``functions/invoices`` dispatches to the use cases) and keeps the former entry points, which
delegate, for operators, benchmarks and tests.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from shared.invoicing.allocator import NumberAllocator
from shared.invoicing.deps import Deps, _utcnow
from shared.invoicing.issuing import Documents, IssueInvoices
from shared.invoicing.operator import OperatorTransitions
from shared.invoicing.payments import PaymentFacts
from shared.invoicing.storage import ArchiveWriter

if TYPE_CHECKING:
    from shared.events import Received
    from shared.events.billing import RenewalDue
    from shared.events.payments import PaymentEvent
    from shared.invoicing.documents import build_credit_note_doc, build_invoice_doc
    from shared.invoicing.documents import pending as _pending

__all__ = ["InvoiceService", "_pending", "build_credit_note_doc", "build_invoice_doc"]

_DOCUMENTS = {
    "build_credit_note_doc": "build_credit_note_doc",
    "build_invoice_doc": "build_invoice_doc",
    "_pending": "pending",
}


def __getattr__(name: str) -> Any:
    """The document builders, re-exported on first access: importing the service (a cold invoices function) must
    not load pricing, tax and the billing contracts behind them before an invoice is issued."""
    if name in _DOCUMENTS:
        from shared.invoicing import documents

        return getattr(documents, _DOCUMENTS[name])
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


@dataclass
class InvoiceService:
    """Wiring of the invoices function; tests build one with a small allocator batch or failure hooks."""

    db: Any = None
    allocator: NumberAllocator | None = None
    clock: Callable[[], dt.datetime] = field(default=_utcnow)
    publish_events: bool = True
    archive: ArchiveWriter | None = None

    def __post_init__(self) -> None:
        self.deps = Deps(self.db, self.allocator, self.clock, self.publish_events, self.archive or ArchiveWriter())
        self.db, self.allocator = self.deps.db, self.deps.allocator
        documents = Documents(self.deps)
        self.payments = PaymentFacts(self.deps, documents)
        self.issuing = IssueInvoices(self.deps, documents, self.payments.apply_facts)
        self.operator = OperatorTransitions(self.deps)

    @property
    def alloc(self) -> NumberAllocator:
        return self.deps.alloc

    # -- issuing and numbering --------------------------------------------------------------------
    def on_renewal_due(self, msg: Received[RenewalDue]) -> dict[str, Any]:
        return self.issuing.on_renewal_due(msg)

    def create_draft(self, ev: RenewalDue, invoice_id: str) -> dict[str, Any]:
        return self.issuing.create_draft(ev, invoice_id)

    def number(self, invoice_id: str, doc: dict[str, Any] | None = None) -> dict[str, Any]:
        return self.issuing.number(invoice_id, doc)

    def finalize(self, invoice_id: str, doc: dict[str, Any] | None = None) -> dict[str, Any]:
        return self.issuing.finalize(invoice_id, doc)

    # -- payment facts and credit notes -----------------------------------------------------------
    def on_payment_fact(self, msg: Received[PaymentEvent]) -> dict[str, Any] | None:
        return self.payments.on_payment_fact(msg)

    def apply_facts(self, invoice_id: str) -> dict[str, Any]:
        return self.payments.apply_facts(invoice_id)

    def finalize_credit_note(self, cn_id: str) -> dict[str, Any]:
        return self.payments.finalize_credit_note(cn_id)

    # -- operator transitions ---------------------------------------------------------------------
    def mark_paid(self, invoice_id: str, reason: str | None = None) -> dict[str, Any]:
        return self.operator.mark_paid(invoice_id, reason)

    def void(self, invoice_id: str, reason: str | None = None) -> dict[str, Any]:
        return self.operator.void(invoice_id, reason)

    def mark_uncollectible(self, invoice_id: str, reason: str | None = None) -> dict[str, Any]:
        return self.operator.mark_uncollectible(invoice_id, reason)
