"""Invoices across the real local stack: renewals-due and payment-events pushed by the Pub/Sub emulator
to the invoices function, invoices and credit notes in Firestore, PDFs in the Storage emulator."""

from __future__ import annotations

import base64
import concurrent.futures
import datetime as dt
import io
import uuid
from pathlib import Path
from typing import Any

import pytest
import requests
from google.cloud.firestore_v1.base_query import FieldFilter
from pypdf import PdfReader

from infra.local.acts import DemoContext
from infra.local.acts import invoices as act
from infra.local.stack import Stack
from shared import clients
from shared.domain.money import Money
from shared.events import build_message, publish
from shared.events.payments import OurRefs, PaymentRefunded, PaymentSucceeded
from shared.invoicing import storage
from shared.invoicing.repository import CREDIT_NOTES, INVOICES, invoice_id_for
from shared.ops.invoices import audit_series
from tests.helpers import drain, pull_subscription, settle, wait_for


def test_requests_to_paid_invoice_and_credit_note(stack_env: Stack) -> None:
    events = pull_subscription(stack_env.project, "invoice-events", "e2e-inv")
    tag = f"e2e{uuid.uuid4().hex[:8]}"
    reqs = act.requests(tag)
    act.publish_requests(reqs, copies=2)
    invoices = act.wait_invoices(reqs)
    assert [d["treatment"] for d in invoices] == ["domestic", "reverse_charge", "domestic", "export"]
    assert [d["currency"] for d in invoices] == ["EUR", "EUR", "JPY", "KWD"]
    first = invoices[0]
    assert (first["subtotal"], first["tax"], first["total"]) == (3166, 633, 3799)
    text = PdfReader(io.BytesIO(storage.get(first["pdf_uri"]))).pages[0].extract_text()
    assert first["number"] in text
    assert "Total: 37.99 EUR" in text

    refs = OurRefs(invoice_id=first["invoice_id"])
    pay = PaymentSucceeded(
        psp="stripe",
        psp_payment_id=f"pi_{tag}",
        livemode=False,
        amount=Money(3799, "EUR"),
        refs=refs,
        psp_created_at=act.T0,
    )
    refund = PaymentRefunded(
        psp="stripe",
        psp_payment_id=f"pi_{tag}",
        livemode=False,
        refs=refs,
        psp_created_at=act.T0,
        refund_id=f"re_{tag}",
        refunded=Money(1000, "EUR"),
        full=False,
    )
    for ev in (refund, pay, pay):  # the refund overtakes the payment: both still apply
        publish(ev, idempotency_key=ev.fact_key(), occurred_at=ev.psp_created_at)
    paid = act.wait_doc(INVOICES, first["invoice_id"], lambda d: d["status"] == "paid" and d.get("credit_note_ids"))
    cn = act.wait_doc(CREDIT_NOTES, paid["credit_note_ids"][0], lambda d: bool(d.get("pdf_sha256")))
    assert cn["total"] == 1000
    assert cn["invoice_number"] == first["number"]
    db = clients.firestore()
    for series_id in {d["series_id"] for d in [*invoices, cn]}:
        assert audit_series(db, series_id).ok, series_id

    ours = {d["invoice_id"] for d in invoices}

    def kinds() -> list[tuple[str, str]]:
        # invoice-events is shared with the session's other tests (a late redelivery there re-announces
        # their invoices): only the facts of this test's invoices count.
        seen.extend((a, b) for a, b in drain(events) if b.get("invoice_id") in ours)
        return sorted({(a["event_type"], a["event_id"]) for a, _ in seen})

    def all_published() -> bool:
        got = [t for t, _ in kinds()]
        return got.count("invoice.finalized") >= 4 and "invoice.paid" in got and "credit_note.issued" in got

    seen: list[tuple[dict[str, str], dict[str, Any]]] = []
    # An event may be published after the document write this test waited for: wait for all, then for duplicates.
    wait_for(all_published, timeout_s=60)
    types = [t for t, _ in settle(kinds, quiet_s=2.0)]
    assert types.count("invoice.finalized") == 4
    assert types.count("invoice.paid") == 1
    assert types.count("credit_note.issued") == 1


def test_concurrent_raw_pushes_make_one_invoice(stack_env: Stack) -> None:
    req = act.requests(f"e2e{uuid.uuid4().hex[:8]}")[0]
    data, attrs = build_message(req, idempotency_key=req.request_id, occurred_at=dt.datetime.now(dt.UTC))
    url = f"{stack_env.function_urls['invoices']}/projects/{stack_env.project}/topics/renewals-due"
    body = {
        "message": {"data": base64.b64encode(data).decode(), "attributes": attrs, "messageId": "m-1"},
        "subscription": f"projects/{stack_env.project}/subscriptions/manual",
    }
    with concurrent.futures.ThreadPoolExecutor(6) as pool:
        statuses = list(pool.map(lambda _: requests.post(url, json=body, timeout=60).status_code, range(6)))
    assert all(s < 300 for s in statuses), statuses
    iid = invoice_id_for(req.request_id)
    doc = clients.firestore().collection(INVOICES).document(iid).get().to_dict() or {}
    assert doc["status"] == "open"
    assert doc["pdf_sha256"]
    query = clients.firestore().collection(INVOICES).where(filter=FieldFilter("request_id", "==", req.request_id))
    mine = list(query.stream())
    assert [s.id for s in mine] == [iid]


def test_demo_act_leaves_pdfs_and_prints_invoices(
    stack_env: Stack, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    act.play(DemoContext(stack=stack_env, output_dir=tmp_path))
    out = capsys.readouterr().out
    pdfs = sorted(p.name for p in (tmp_path / "invoices").iterdir())
    assert len(pdfs) == 5  # four invoices and one credit note
    assert any(p.startswith("CN-") for p in pdfs)
    assert any(p.startswith("JP-") for p in pdfs)
    assert "reverse charge" in out
    assert "credit note CN-" in out
    assert "NOT OK" not in out
