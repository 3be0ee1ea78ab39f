"""Invoices of catalog items: composed by shared.domain.composition, discounts per line and on the PDF, due date."""

from __future__ import annotations

import datetime as dt
import io

from pypdf import PdfReader

from shared.domain.calendar import Period
from shared.domain.catalog import Price
from shared.domain.discounts import AppliedDiscount, Coupon
from shared.domain.pricing import Item, item_lines
from shared.events.billing import Party, RenewalDue
from shared.invoicing import pdf
from shared.invoicing.documents import build_invoice_doc, compose_request
from shared.invoicing.entities import seller
from shared.invoicing.repository import document_view
from tests.fixtures.invoices import T0

SEAT = Price.model_validate(
    {
        "id": "seat-eur",
        "product_id": "seat",
        "currency": "EUR",
        "recurring": {"interval": "month"},
        "pricing": {"model": "per_unit", "unit_amount": "1000"},
        "nickname": "Seat",
    }
)
TEN = AppliedDiscount(
    id="d1",
    coupon=Coupon.model_validate({"id": "ten", "percent_off": "10", "duration": "repeating", "duration_in_periods": 2}),
    applied_at=T0,
)


def due(period_index: int = 0, **kw: object) -> RenewalDue:
    return RenewalDue.model_validate(
        {
            "request_id": f"sub:{period_index}",
            "subscription_id": "sub",
            "period_start": T0,
            "period_end": T0 + dt.timedelta(days=30),
            "seller_entity": "acme-de",
            "customer": Party(id="cus", name="Ada GmbH", country="DE"),
            "currency": "EUR",
            "items": item_lines([Item(price=SEAT, quantity=3)], Period(period_index, T0, T0 + dt.timedelta(days=30))),
            "discounts": [TEN] if TEN.active_for(period_index) else [],
            "period_index": period_index,
            **kw,
        }
    )


def test_the_invoice_is_the_composition_of_its_request() -> None:
    ev = due(due_at=T0 + dt.timedelta(days=14), collection="send_invoice")
    doc = build_invoice_doc(ev, "in_x", seller("acme-de"), T0, "h")
    _, composed = compose_request(ev, seller("acme-de"))
    assert (doc["subtotal"], doc["discount"], doc["tax"], doc["total"]) == (3000, 300, 513, 3213)
    assert doc["total"] == composed.total.amount
    assert doc["lines"][0]["discounts"] == [{"discount_id": "d1", "coupon_id": "ten", "amount": 300}]
    assert doc["due_at"] == T0 + dt.timedelta(days=14)


def test_pdf_shows_discounts_credit_and_due_date() -> None:
    ev = due(due_at=T0 + dt.timedelta(days=14), collection="send_invoice")
    doc = build_invoice_doc(ev, "in_x", seller("acme-de"), T0, "h")
    doc.update(number="INV-2026-000007", finalized_at=T0, credit_applied=1000, amount_due=2213)
    data = pdf.render(document_view(doc))
    text = "\n".join(p.extract_text() for p in PdfReader(io.BytesIO(data)).pages)
    assert "Due date: 2026-03-15" in text
    assert "-3.00 EUR" in text  # the discount on the line
    assert "Discount ten: -3.00 EUR" in text
    assert "Credit balance applied: -10.00 EUR" in text
    assert "Amount due: 22.13 EUR" in text
    assert pdf.render(document_view(doc)) == data


def test_repeating_discount_is_absent_from_the_period_after_its_last() -> None:
    doc = build_invoice_doc(due(2), "in_x", seller("acme-de"), T0, "h")
    assert (doc["discount"], doc["total"]) == (0, 3570)
