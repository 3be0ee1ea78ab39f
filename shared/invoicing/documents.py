"""The invoice and credit-note documents as stored: pure builders, no I/O (tests price requests through them)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from decimal import Decimal
from typing import Any

from shared.domain import composition
from shared.domain import invoices as dom
from shared.domain.composition import ComposedInvoice, ComposedLine
from shared.domain.credit import CreditEntry
from shared.domain.money import Money
from shared.domain.numbering import SeriesDef
from shared.domain.pricing import ChargeLine
from shared.domain.tax import TaxDecision, decide
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


def request_lines(ev: RenewalDue) -> list[ChargeLine]:
    """The priced lines of a request with items: the period's items, then the waiting charges."""
    return [*ev.items, *ev.charges]


def compose_request(
    ev: RenewalDue,
    s: Seller,
    *,
    credit_entries: Sequence[CreditEntry] = (),
    invoice_id: str | None = None,
    at: dt.datetime | None = None,
) -> tuple[TaxDecision, ComposedInvoice]:
    """THE composition of a request with items (the invoice and its preview both come from here).

    The invoice is composed without credit (credit is applied at finalization, once, by the ledger); the
    preview passes the customer's ledger entries so the same domain decision shows what will be applied.
    """
    c = ev.customer
    decision = decide(s.country, c.country, vat_id=c.vat_id, tax_exempt=c.tax_exempt)
    composed = composition.compose(
        request_lines(ev),
        currency=ev.currency,
        tax=decision,
        discounts=ev.discounts,
        period_index=ev.period_index or 0,
        credit_entries=credit_entries,
        customer_id=c.id,
        invoice_id=invoice_id,
        at=at,
    )
    return decision, composed


def composed_line_doc(ln: ComposedLine) -> dict[str, Any]:
    """A composed line as stored: its amount as priced, each discount on it, then net, tax and total."""
    q = ln.quantity
    return {
        "description": ln.description,
        "quantity": int(q) if q == q.to_integral_value() else f"{q:f}",
        "kind": ln.kind.value,
        "price_id": ln.price_id,
        "product_id": ln.product_id,
        "tax_category": ln.tax_category,
        "tax_behavior": ln.tax_behavior.value,
        "amount": ln.amount.amount,
        "discount": ln.discount.amount,
        "discounts": [
            {"discount_id": d.discount_id, "coupon_id": d.coupon_id, "amount": d.amount.amount} for d in ln.discounts
        ],
        "rate": str(ln.rate),
        "net": ln.net.amount,
        "tax": ln.tax.amount,
        "total": ln.total.amount,
    }


def composed_breakdown(lines: Sequence[ComposedLine], currency: str) -> list[dict[str, Any]]:
    """The tax breakdown by rate (highest first), as the legacy invoices show it."""
    by_rate: dict[Decimal, tuple[int, int]] = {}
    for ln in lines:
        n, t = by_rate.get(ln.rate, (0, 0))
        by_rate[ln.rate] = (n + ln.net.amount, t + ln.tax.amount)
    rows = sorted(by_rate.items(), key=lambda kv: -kv[0])
    return [row_doc(dom.TaxRow(r, Money(n, currency), Money(t, currency))) for r, (n, t) in rows]


def composed_fields(composed: ComposedInvoice) -> dict[str, Any]:
    """The amounts of a composed invoice; ``composed`` keeps the whole composition for credit notes."""
    cur = composed.currency
    return {
        "lines": [composed_line_doc(ln) for ln in composed.lines],
        "breakdown": composed_breakdown(composed.lines, cur),
        "subtotal": composed.subtotal.amount,
        "discount": composed.discount.amount,
        "discounts": [
            {"discount_id": d.discount_id, "coupon_id": d.coupon_id, "amount": d.amount.amount}
            for d in composed.discounts
        ],
        "tax": composed.tax.amount,
        "total": composed.total.amount,
        "amount_due": composed.amount_due.amount,
        "credit_applied": composed.credit_applied.amount,
        "composed": composed.model_dump(mode="json", exclude={"credit_entry"}),
    }


def build_invoice_doc(
    ev: RenewalDue, invoice_id: str, s: Seller, now: dt.datetime, request_hash: str
) -> dict[str, Any]:
    """The draft invoice document (pure: tests price requests through it without Firestore).

    A plan renewal prices its lines here; a catalog one (``ev.composed``) goes through THE composition
    (discounts, credit) and carries its period index, due date and credit flag. The rest is shared.
    """
    c = ev.customer
    body: dict[str, Any]
    if ev.composed:
        decision, composed = compose_request(ev, s)
        body = {
            **composed_fields(composed),
            "period_index": ev.period_index,
            "due_at": ev.due_at,
            "apply_credit": ev.apply_credit,
        }
    else:
        decision = decide(s.country, c.country, vat_id=c.vat_id, tax_exempt=c.tax_exempt)
        specs = [dom.LineSpec(ln.description, ln.quantity, ln.unit_amount, ln.kind, ln.tax_category) for ln in ev.lines]
        lines = dom.price_lines(specs, ev.currency, decision)
        t = dom.totals(lines, ev.currency)
        body = {**_amounts(lines, t), "amount_due": t.amount_due.amount}
    return {
        "kind": "invoice",
        "invoice_id": invoice_id,
        "request_id": ev.request_id,
        "billing_reason": ev.reason,
        "request_hash": request_hash,
        "subscription_id": ev.subscription_id,
        "seller_entity": ev.seller_entity,
        "status": dom.Status.DRAFT.value,
        "currency": ev.currency,
        "seller": seller_doc(s),
        "buyer": c.model_dump(mode="json"),
        "treatment": decision.treatment.value,
        "wording": decision.wording,
        **body,
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
    inv: dict[str, Any],
    cn_id: str,
    amount: Money,
    ev: PaymentRefunded | None,
    *,
    s: Seller,
    now: dt.datetime,
    reason: str | None = None,
) -> dict[str, Any]:
    """The credit note of a refund (``ev``) or, without one, of an operator crediting the customer's balance."""
    cur = inv["currency"]
    full = amount.amount == int(inv["total"]) - int(inv.get("credited", 0)) and not inv.get("credited")
    if inv.get("composed"):
        # The discounts of the invoice are carried into the note, line by line (shared.domain.composition).
        note = composition.credit_note(ComposedInvoice.model_validate(inv["composed"]), None if full else amount)
        amounts: dict[str, Any] = {
            "lines": [composed_line_doc(ln) for ln in note.lines],
            "breakdown": composed_breakdown(note.lines, cur),
            "subtotal": note.subtotal.amount,
            "discount": note.discount.amount,
            "tax": note.tax.amount,
            "total": note.total.amount,
            "composed": note.model_dump(mode="json"),  # its PDF shows the composed lines (discounts given back)
        }
    else:
        inv_lines = [line_from(d, cur) for d in inv["lines"]]
        lines = dom.credit_lines(inv_lines, amount, full=full)
        t = dom.totals(lines, cur)
        amounts = _amounts(lines, t)
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
        **amounts,
        "refund_id": ev.refund_id if ev else None,
        "reason": ("refund" + (" (full)" if ev.full else " (partial)")) if ev else reason,
        "credited_to": "refund" if ev else "balance",
        "created_at": now,
        "published": [],
        **series_fields(s.series("credit_note"), now, f"{CREDIT_NOTES}/{cn_id}", "issued"),
    }


def _amounts(lines: Sequence[dom.Line], t: dom.Totals) -> dict[str, Any]:
    """The lines and totals as an invoice or a credit note stores them (minor units)."""
    return {
        "lines": [line_doc(ln) for ln in lines],
        "breakdown": [row_doc(r) for r in t.breakdown],
        "subtotal": t.subtotal.amount,
        "tax": t.tax.amount,
        "total": t.total.amount,
    }
