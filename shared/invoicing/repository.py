"""Firestore layout of invoices and credit notes, and the conversions to and from the domain.

``invoices/{invoice_id}``            the invoice (amounts as int minor units + one ``currency``)
``invoices/{invoice_id}/facts/{id}`` payment facts recorded for it, applied once it is numbered
``credit_notes/{credit_note_id}``    a credit note, referencing its invoice
``number_series/{series_id}``        the counter and lease (shared.invoicing.allocator)
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from decimal import Decimal
from typing import Any

from shared.domain.invoices import Line, TaxRow
from shared.domain.money import Money
from shared.idempotency import ContentionError, update_if_unchanged
from shared.invoicing.pdf import DocumentView, LineView, PartyView, TaxRowView

INVOICES = "invoices"
CREDIT_NOTES = "credit_notes"
FACTS = "facts"


# A document kept changing under a conditional update; raising lets Pub/Sub retry later.
Conflict = ContentionError


def invoice_id_for(request_id: str) -> str:
    """Deterministic: every delivery of one request lands on one document."""
    return "in_" + hashlib.sha256(request_id.encode()).hexdigest()[:24]


def credit_note_id_for(refund_key: str) -> str:
    return "cn_" + hashlib.sha256(refund_key.encode()).hexdigest()[:24]


def line_doc(ln: Line) -> dict[str, Any]:
    return {
        "description": ln.description,
        "quantity": ln.quantity,
        "unit_amount": ln.unit_amount.amount,
        "kind": ln.kind,
        "tax_category": ln.tax_category,
        "rate": str(ln.rate),
        "net": ln.net.amount,
        "tax": ln.tax.amount,
    }


def line_from(d: dict[str, Any], currency: str) -> Line:
    return Line(
        d["description"],
        int(d["quantity"]),
        Money(int(d["unit_amount"]), currency),
        d["kind"],
        d["tax_category"],
        Decimal(d["rate"]),
        Money(int(d["net"]), currency),
        Money(int(d["tax"]), currency),
    )


def row_doc(r: TaxRow) -> dict[str, Any]:
    return {"rate": str(r.rate), "net": r.net.amount, "tax": r.tax.amount}


def money(doc: dict[str, Any], key: str) -> Money:
    return Money(int(doc[key]), doc["currency"])


def document_view(doc: dict[str, Any]) -> DocumentView:
    """What the PDF shows, from a stored invoice or credit note."""
    cur = doc["currency"]
    seller, buyer = doc["seller"], doc["buyer"]
    is_invoice = doc["kind"] == "invoice"
    period = (doc["period_start"], doc["period_end"]) if doc.get("period_start") and doc.get("period_end") else None
    refs = () if is_invoice else (f"Credits invoice {doc['invoice_number']}",)
    return DocumentView(
        title="INVOICE" if is_invoice else "CREDIT NOTE",
        number=doc["number"],
        issued_at=doc["finalized_at"],
        seller=PartyView(
            seller["name"], seller["country"], seller.get("vat_id"), tuple(seller.get("address_lines", ()))
        ),
        buyer=PartyView(buyer["name"], buyer["country"], buyer.get("vat_id"), tuple(buyer.get("address_lines", ()))),
        lines=tuple(_composed_line_view(d, cur) for d in doc["lines"])
        if doc.get("composed")
        else tuple(
            LineView(ln.description, ln.quantity, ln.unit_amount, ln.rate, ln.net, ln.tax)
            for ln in (line_from(d, cur) for d in doc["lines"])
        ),
        breakdown=tuple(
            TaxRowView(Decimal(r["rate"]), Money(int(r["net"]), cur), Money(int(r["tax"]), cur))
            for r in doc["breakdown"]
        ),
        subtotal=money(doc, "subtotal"),
        tax=money(doc, "tax"),
        total=money(doc, "total"),
        amount_due=money(doc, "amount_due") if is_invoice else None,
        wording=doc.get("wording"),
        period=period,
        references=refs,
        discount=money(doc, "discount") if "discount" in doc else None,
        discounts=tuple(f"{d['coupon_id']}: -{Money(int(d['amount']), cur)}" for d in doc.get("discounts") or []),
        credit_applied=money(doc, "credit_applied") if is_invoice and "credit_applied" in doc else None,
        due_at=doc.get("due_at") if is_invoice else None,
    )


def _composed_line_view(d: dict[str, Any], cur: str) -> LineView:
    q = d["quantity"]
    return LineView(
        d["description"],
        q if isinstance(q, int) else Decimal(q),
        None,
        Decimal(d["rate"]),
        Money(int(d["net"]), cur),
        Money(int(d["tax"]), cur),
        amount=Money(int(d["amount"]), cur),
        discount=Money(int(d["discount"]), cur),
    )


def _party(p: dict[str, Any]) -> PartyView:
    return PartyView(p["name"], p["country"], p.get("vat_id"), tuple(p.get("address_lines", ())))


def cas_update(db: Any, ref: Any, change: Callable[[dict[str, Any] | None], dict[str, Any] | None]) -> Any:
    """Read-modify-write with an ``update_time`` precondition (optimistic; no transaction locks).

    ``change`` gets the current document (None if absent) and returns the fields to update, or None
    for nothing to do. Returns the snapshot the decision was made on. The shared compare-and-set helper
    (one retry policy); ``db`` is kept for the call sites.
    """
    return update_if_unchanged(ref, change)


def invoice_paid_by(db: Any, psp_payment_id: str) -> tuple[str, dict[str, Any]] | None:
    """The invoice a PSP payment paid (id, document), for facts that carry no reference of ours: Stripe's
    dispute object has no charge metadata. One single-field query, on the first notification only."""
    from google.cloud.firestore_v1.base_query import FieldFilter

    q = db.collection(INVOICES).where(filter=FieldFilter("psp_payment_id", "==", psp_payment_id)).limit(1)
    for snap in q.stream():
        return snap.id, snap.to_dict() or {}
    return None
