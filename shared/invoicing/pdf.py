"""Render an invoice or credit note as PDF (fpdf2). Pure: values in, bytes out.

The output is deterministic for the same document (creation date = issue date, fixed file id), so a
redelivery that renders again produces the very bytes whose sha256 is already recorded. Text uses
the PDF core fonts (Latin-1): characters outside it are replaced rather than failing a legal
document over a glyph; the stored JSON keeps the exact names.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from dataclasses import dataclass, field
from decimal import Decimal
from typing import TYPE_CHECKING

from shared.domain.money import Money
from shared.domain.tax import format_rate

if TYPE_CHECKING:
    from fpdf import FPDF


@dataclass(frozen=True, slots=True)
class PartyView:
    name: str
    country: str
    vat_id: str | None = None
    address_lines: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class LineView:
    description: str
    quantity: int | Decimal
    unit_amount: Money | None  # None on composed lines: the amount is per line (tiers, packages)
    rate: Decimal
    net: Money
    tax: Money
    amount: Money | None = None  # composed lines: as priced, before discounts
    discount: Money | None = None  # composed lines: every discount on the line


@dataclass(frozen=True, slots=True)
class TaxRowView:
    rate: Decimal
    net: Money
    tax: Money


@dataclass(frozen=True, slots=True)
class DocumentView:
    title: str  # "INVOICE" / "CREDIT NOTE"
    number: str
    issued_at: dt.datetime
    seller: PartyView
    buyer: PartyView
    lines: tuple[LineView, ...]
    breakdown: tuple[TaxRowView, ...]
    subtotal: Money
    tax: Money
    total: Money
    amount_due: Money | None = None
    wording: str | None = None
    period: tuple[dt.datetime, dt.datetime] | None = None
    references: tuple[str, ...] = field(default=())  # e.g. "Credits invoice INV-2026-000001"
    discount: Money | None = None  # composed documents: the discounts before tax
    discounts: tuple[str, ...] = ()  # "coupon: -amount" per discount
    credit_applied: Money | None = None  # paid from the customer's credit balance
    due_at: dt.datetime | None = None  # send_invoice


def _t(text: str) -> str:
    return text.encode("latin-1", "replace").decode("latin-1")


def render(doc: DocumentView) -> bytes:
    """The PDF bytes of ``doc``."""
    from fpdf import FPDF

    pdf = FPDF(format="A4")
    pdf.set_creation_date(doc.issued_at.astimezone(dt.UTC))
    pdf.file_id = lambda: _file_id(doc)  # type: ignore[method-assign]
    pdf.set_title(_t(f"{doc.title} {doc.number}"))
    pdf.set_author(_t(doc.seller.name))
    pdf.set_auto_page_break(auto=True, margin=15)
    pdf.add_page()
    pdf.set_font("Helvetica", "B", 16)
    pdf.cell(0, 9, _t(f"{doc.title} {doc.number}"), new_x="LMARGIN", new_y="NEXT")
    pdf.set_font("Helvetica", size=9)
    pdf.cell(0, 5, f"Issue date: {doc.issued_at.astimezone(dt.UTC).date().isoformat()}", new_x="LMARGIN", new_y="NEXT")
    if doc.due_at is not None:
        pdf.cell(0, 5, f"Due date: {doc.due_at.astimezone(dt.UTC).date().isoformat()}", new_x="LMARGIN", new_y="NEXT")
    if doc.period:
        start, end = (d.astimezone(dt.UTC).date().isoformat() for d in doc.period)
        pdf.cell(0, 5, f"Service period: {start} to {end}", new_x="LMARGIN", new_y="NEXT")
    for ref in doc.references:
        pdf.cell(0, 5, _t(ref), new_x="LMARGIN", new_y="NEXT")
    pdf.ln(3)
    y = pdf.get_y()
    bottom = max(_party(pdf, "Seller", doc.seller, 10, y), _party(pdf, "Bill to", doc.buyer, 110, y))
    pdf.set_xy(10, bottom + 4)

    _lines(pdf, doc)
    pdf.ln(3)

    pdf.set_font("Helvetica", "B", 9)
    pdf.cell(0, 6, "Tax breakdown", new_x="LMARGIN", new_y="NEXT")
    pdf.set_font("Helvetica", size=9)
    for row in doc.breakdown:
        pdf.cell(0, 5, f"VAT {format_rate(row.rate)} on {row.net}: {row.tax}", new_x="LMARGIN", new_y="NEXT")
    pdf.ln(2)
    _totals(pdf, doc)
    if doc.wording:
        pdf.ln(4)
        pdf.set_font("Helvetica", "I", 9)
        pdf.multi_cell(0, 5, _t(doc.wording))
    return bytes(pdf.output())


def _lines(pdf: FPDF, doc: DocumentView) -> None:
    """The line table; composed documents show each line's amount and its discount."""
    composed = any(ln.amount is not None for ln in doc.lines)
    widths: tuple[int, ...] = (80, 14, 28, 16, 26, 26)
    heads: tuple[str, ...] = ("Description", "Qty", "Unit price", "VAT", "Net", "VAT amount")
    if composed:
        widths = (66, 12, 26, 24, 14, 24, 24)
        heads = ("Description", "Qty", "Amount", "Discount", "VAT", "Net", "VAT amount")
    pdf.set_font("Helvetica", "B", 9)
    for w, h in zip(widths, heads, strict=True):
        pdf.cell(w, 6, h, border="B", align="L" if h == "Description" else "R")
    pdf.ln()
    pdf.set_font("Helvetica", size=9)
    for ln in doc.lines:
        cells: tuple[str, ...] = (_t(ln.description)[: 48 if composed else 60], str(ln.quantity))
        if composed:
            cells += (str(ln.amount), f"-{ln.discount}" if ln.discount and ln.discount.amount else "")
        else:
            cells += (str(ln.unit_amount),)
        cells += (format_rate(ln.rate), str(ln.net), str(ln.tax))
        for i, (w, c) in enumerate(zip(widths, cells, strict=True)):
            pdf.cell(w, 6, c, align="L" if i == 0 else "R")
        pdf.ln()


def _totals(pdf: FPDF, doc: DocumentView) -> None:
    """Subtotal, each discount, VAT, total, credit applied, amount due."""
    totals: list[tuple[str, str]] = [("Subtotal", str(doc.subtotal))]
    if doc.discount is not None and doc.discount.amount:
        totals += [(_t(f"Discount {d}"), "") for d in doc.discounts]
        totals.append(("Discount", f"-{doc.discount}"))
    totals += [("VAT", str(doc.tax)), ("Total", str(doc.total))]
    if doc.credit_applied is not None and doc.credit_applied.amount:
        totals.append(("Credit balance applied", f"-{doc.credit_applied}"))
    if doc.amount_due is not None:
        totals.append(("Amount due", str(doc.amount_due)))
    for label, shown in totals:
        pdf.set_font("Helvetica", "B" if label in ("Total", "Amount due") else "", 10)
        pdf.cell(150, 6, f"{label}:" if shown else label, align="R")
        pdf.cell(40, 6, shown, align="R", new_x="LMARGIN", new_y="NEXT")


def _party(pdf: FPDF, label: str, p: PartyView, x: float, y: float) -> float:
    pdf.set_xy(x, y)
    pdf.set_font("Helvetica", "B", 9)
    pdf.cell(90, 5, label, new_x="LEFT", new_y="NEXT")
    pdf.set_font("Helvetica", size=9)
    rows = [p.name, *p.address_lines, f"Country: {p.country}"]
    if p.vat_id:
        rows.append(f"VAT id: {p.vat_id}")
    for r in rows:
        pdf.cell(90, 5, _t(r), new_x="LEFT", new_y="NEXT")
    return float(pdf.get_y())


def _file_id(doc: DocumentView) -> str:
    h = hashlib.md5(f"{doc.title}|{doc.number}|{doc.seller.name}".encode(), usedforsecurity=False).hexdigest()
    return f"<{h}><{h}>"


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()
