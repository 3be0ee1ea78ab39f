"""A rendered invoice parses and shows number, totals, tax lines and legal wording (pure, no storage)."""

from __future__ import annotations

import io

import pytest
from pypdf import PdfReader

from shared.events.billing import Party
from shared.invoicing import pdf
from shared.invoicing.entities import seller
from shared.invoicing.repository import document_view
from shared.invoicing.service import build_invoice_doc
from tests.fixtures.invoices import B2B_DE, T0, renewal


def _render(req_kw: dict[str, object]) -> tuple[str, bytes]:
    req = renewal("r", **req_kw)  # type: ignore[arg-type]
    doc = build_invoice_doc(req, "in_x", seller(req.seller_entity), T0, "h")
    doc.update(number="INV-2026-000042", finalized_at=T0)
    data = pdf.render(document_view(doc))
    return "\n".join(p.extract_text() for p in PdfReader(io.BytesIO(data)).pages), data


def test_invoice_pdf_contents() -> None:
    text, data = _render({"amounts": (1999, -500), "quantity": 2})
    assert "INVOICE INV-2026-000042" in text
    assert "Issue date: 2026-03-01" in text
    assert "Service period: 2026-03-01 to 2026-04-01" in text
    assert "Acme SAS" in text
    assert "Camille Martin" in text
    assert "VAT 20% on 29.98 EUR: 6.00 EUR" in text
    assert "Subtotal: 29.98 EUR" in text
    assert "Total: 35.98 EUR" in text
    assert "Reverse charge" not in text
    assert _render({"amounts": (1999, -500), "quantity": 2})[1] == data  # deterministic bytes


def test_reverse_charge_wording() -> None:
    text, _ = _render({"customer": B2B_DE})
    assert "VAT id: DE 123 456 789" in text
    assert "Reverse charge" in text
    assert "VAT: 0.00 EUR" in text


@pytest.mark.parametrize(
    ("currency", "country", "seller_id", "expected"),
    [("JPY", "JP", "acme-jp", "Total: 13200 JPY"), ("KWD", "KW", "acme-fr", "Total: 12.345 KWD")],
)
def test_currency_exponents_render(currency: str, country: str, seller_id: str, expected: str) -> None:
    buyer = Party(id="c", name="Buyer", country=country)
    amount = 12000 if currency == "JPY" else 12345
    text, _ = _render({"currency": currency, "amounts": (amount,), "customer": buyer, "seller": seller_id})
    assert expected in text
