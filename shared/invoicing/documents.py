"""The invoice and credit-note documents as stored: pure builders, no I/O (tests price requests through them)."""

from __future__ import annotations

import datetime as dt
from typing import Any

from shared.domain import invoices as dom
from shared.domain.money import Money
from shared.domain.numbering import SeriesDef
from shared.domain.tax import decide
from shared.events.billing import RenewalDue
from shared.events.payments import PaymentRefunded
from shared.invoicing.allocator import SERIES_DEF, Pending, queue_fields
from shared.invoicing.entities import Seller
from shared.invoicing.repository import CREDIT_NOTES, INVOICES, line_doc, line_from, row_doc


def pending(path: str, doc: dict[str, Any], status_after: str) -> Pending:
    """What the allocator needs to number a stored document."""
    return Pending(path, doc["issued_at"], SeriesDef.from_fields(doc[SERIES_DEF]), status_after)


def series_fields(series: SeriesDef, at: dt.datetime, path: str, status_after: str) -> dict[str, Any]:
    """Series, issue time and the queue fields: a draft is queued for its number as it is created."""
    sid = series.series_id(at)
    return {
        "series_id": sid,
        "issued_at": at,
        **queue_fields(sid, Pending(path, at, series, status_after)),
    }


def seller_doc(s: Seller) -> dict[str, Any]:
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
        "seller": seller_doc(s),
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
        **series_fields(s.series("invoice"), now, f"{INVOICES}/{invoice_id}", dom.Status.OPEN.value),
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
        **series_fields(s.series("credit_note"), now, f"{CREDIT_NOTES}/{cn_id}", "issued"),
    }
