"""PDF render time per invoice and bytes (pure CPU: no storage, no network).

Renders realistic invoices (3 and 20 lines; EUR, JPY, KWD; a reverse-charge one) ``RUNS`` times each
after one warm-up (the first render pays fpdf2's import and font metrics).

Baselines:
* library floor: fpdf2 rendering a one-line page, the cheapest PDF it can make;
* budget: at the 500 finalizations/s target, 2 ms of CPU per invoice per core; the ratio says how many
  cores the PDF step alone needs at that rate.
"""

from __future__ import annotations

import datetime as dt
import os
import statistics
import time
from typing import Any

RUNS = int(os.environ.get("BENCH_PDF_RUNS", "60"))
BUDGET_S = 1 / 500


def _doc(currency: str, lines: int, *, reverse_charge: bool = False) -> Any:
    from shared.domain.money import Money
    from shared.events.billing import LineIn, Party, RenewalDue
    from shared.invoicing.entities import seller
    from shared.invoicing.repository import document_view
    from shared.invoicing.service import build_invoice_doc

    t0 = dt.datetime(2026, 3, 1, tzinfo=dt.UTC)
    country = {"EUR": "DE" if reverse_charge else "FR", "JPY": "JP", "KWD": "KW"}[currency]
    entity = "acme-jp" if currency == "JPY" else "acme-fr"
    req = RenewalDue(
        request_id="bench",
        seller_entity=entity,
        customer=Party(
            id="c",
            name="Bench Customer Ltd",
            country=country,
            vat_id="DE123456789" if reverse_charge else None,
            address_lines=("1 Bench Street", "Testville"),
        ),
        currency=currency,
        period_start=t0,
        period_end=t0 + dt.timedelta(days=31),
        lines=tuple(
            LineIn(
                description=f"Item {i}: seats, usage or add-on",
                quantity=1 + i % 3,
                unit_amount=Money(1999 + i, currency),
            )
            for i in range(lines)
        ),
    )
    doc = build_invoice_doc(req, "in_bench", seller(entity), t0, "h")
    doc.update(number="INV-2026-000123", finalized_at=t0)
    return document_view(doc)


def _floor() -> bytes:
    from fpdf import FPDF

    pdf = FPDF()
    pdf.add_page()
    pdf.set_font("Helvetica", size=10)
    pdf.cell(0, 10, "INV-2026-000123")
    return bytes(pdf.output())


def _time(fn: Any) -> tuple[float, float, int]:
    fn()  # warm-up
    samples = []
    size = 0
    for _ in range(RUNS):
        t = time.perf_counter()
        size = len(fn())
        samples.append(time.perf_counter() - t)
    samples.sort()
    return statistics.median(samples), samples[int(len(samples) * 0.95) - 1], size


def main() -> None:
    from shared.invoicing.pdf import render

    t = time.perf_counter()
    render(_doc("EUR", 1))
    print(f"first render in a fresh process (imports, font metrics): {(time.perf_counter() - t) * 1000:.0f} ms")
    floor, _, floor_bytes = _time(_floor)
    print(f"library floor (one-line page): {floor * 1000:.2f} ms, {floor_bytes} bytes")
    cases = [
        ("EUR, 3 lines", _doc("EUR", 3)),
        ("EUR, 20 lines", _doc("EUR", 20)),
        ("EUR reverse charge, 3 lines", _doc("EUR", 3, reverse_charge=True)),
        ("JPY, 3 lines", _doc("JPY", 3)),
        ("KWD, 3 lines", _doc("KWD", 3)),
    ]
    for name, doc in cases:
        p50, p95, size = _time(lambda doc=doc: render(doc))
        print(
            f"{name:<28} p50 {p50 * 1000:6.2f} ms  p95 {p95 * 1000:6.2f} ms  {size:6d} bytes  "
            f"x{p50 / floor:.1f} the library floor  x{p50 / BUDGET_S:.1f} the 2 ms budget at 500/s"
        )


if __name__ == "__main__":
    main()
