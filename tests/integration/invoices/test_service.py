"""The invoices service on the emulators: one invoice per request, payments, refunds, disputes, PDFs."""

from __future__ import annotations

import io
import threading

import pytest
from pypdf import PdfReader

from shared.domain.invoices import InvalidTransition
from shared.domain.money import Money
from shared.events.billing import Party
from shared.events.payments import OurRefs
from shared.invoicing import pdf, storage
from shared.invoicing.repository import CREDIT_NOTES, INVOICES, invoice_id_for
from tests.fixtures.invoices import B2B_DE, disputed, due_msg, fact_msg, paid, refunded, renewal
from tests.integration.invoices.conftest import Env


def _pdf_text(uri: str) -> str:
    return "\n".join(p.extract_text() for p in PdfReader(io.BytesIO(storage.get(uri))).pages)


def test_one_invoice_per_request_whatever_the_deliveries(env: Env) -> None:
    r = renewal("sub_9:2026-03-01", amounts=(2500, -500))
    threads = [threading.Thread(target=env.svc.on_renewal_due, args=(due_msg(r),)) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    out = env.svc.on_renewal_due(due_msg(r))
    inv = env.doc(INVOICES, out["invoice_id"])
    assert inv["number"] == "INV-2026-000001"
    assert (inv["subtotal"], inv["tax"], inv["total"]) == (2000, 400, 2400)
    events = [b for a, b in env.events() if a["event_type"] == "invoice.finalized"]
    assert {e["invoice_id"] for e in events} == {out["invoice_id"]}
    assert events[0]["total"] == {"amount": 2400, "currency": "EUR"}
    assert events[0]["pdf_uri"] == inv["pdf_uri"]


def test_pdf_is_stored_once_with_its_hash_and_shows_number_totals_and_tax(env: Env) -> None:
    out = env.svc.on_renewal_due(due_msg(renewal("pdf:1", amounts=(1999,), quantity=3)))
    inv = env.doc(INVOICES, out["invoice_id"])
    assert inv["pdf_uri"].endswith("/invoices/acme-fr.INV.2026/INV-2026-000001.pdf")
    data = storage.get(inv["pdf_uri"])
    # The PDF lives in an archive object (write-once): an attempt to overwrite it leaves the stored bytes.
    archive = inv["pdf_uri"].partition(storage.MEMBER_SEP)[0].split("/", 3)[3]
    assert storage.put_once(archive, b"tampered", "application/zip").created is False
    assert pdf.sha256(storage.get(inv["pdf_uri"])) == inv["pdf_sha256"]
    assert storage.get(inv["pdf_uri"]) == data  # never rewritten
    text = _pdf_text(inv["pdf_uri"])
    assert "INVOICE INV-2026-000001" in text
    assert "VAT 20% on 59.97 EUR: 11.99 EUR" in text
    assert "Total: 71.96 EUR" in text


def test_reverse_charge_de_buyer_of_fr_seller(env: Env) -> None:
    out = env.svc.on_renewal_due(due_msg(renewal("rc:1", customer=B2B_DE)))
    inv = env.doc(INVOICES, out["invoice_id"])
    assert (inv["treatment"], inv["tax"], inv["total"]) == ("reverse_charge", 0, 2500)
    assert "Reverse charge" in _pdf_text(inv["pdf_uri"])


def test_payment_marks_paid_once_and_publishes_paid(env: Env) -> None:
    out = env.svc.on_renewal_due(due_msg(renewal("pay:1")))
    iid = out["invoice_id"]
    msg = fact_msg(paid(iid, Money(3000, "EUR")))
    for _ in range(3):
        assert (env.svc.on_payment_fact(msg) or {})["status"] == "paid"
    inv = env.doc(INVOICES, iid)
    assert (inv["status"], inv["amount_paid"], inv["psp_payment_id"]) == ("paid", 3000, "pi_1")
    types = [a["event_type"] for a, _ in env.events()]
    assert types.count("invoice.paid") == 1
    with pytest.raises(InvalidTransition):
        env.svc.void(iid)


def test_payment_before_finalization_is_kept_and_applied(env: Env) -> None:
    r = renewal("early:1")
    iid = invoice_id_for(r.request_id)
    early = env.svc.on_payment_fact(fact_msg(paid(iid, Money(3000, "EUR"))))
    assert early == {"invoice_id": iid, "status": "pending_finalization"}
    env.svc.create_draft(r, iid)
    again = env.svc.on_payment_fact(fact_msg(paid(iid, Money(3000, "EUR"))))
    assert (again or {})["status"] == "pending_finalization"
    env.svc.on_renewal_due(due_msg(r))
    assert env.doc(INVOICES, iid)["status"] == "paid"
    types = [a["event_type"] for a, _ in env.events()]
    assert types.index("invoice.finalized") < types.index("invoice.paid")


def test_refunds_issue_credit_notes_in_their_own_series(env: Env) -> None:
    iid = env.svc.on_renewal_due(due_msg(renewal("ref:1", amounts=(2500,))))["invoice_id"]
    env.svc.on_payment_fact(fact_msg(paid(iid, Money(3000, "EUR"))))
    part = fact_msg(refunded(iid, Money(1000, "EUR"), "re_1"))
    env.svc.on_payment_fact(part)
    env.svc.on_payment_fact(part)  # duplicate: no second credit note
    env.svc.on_payment_fact(fact_msg(refunded(iid, Money(3000, "EUR"), "re_2", full=True)))
    env.svc.on_payment_fact(fact_msg(refunded(iid, Money(100, "EUR"), "re_3")))  # nothing left
    inv = env.doc(INVOICES, iid)
    assert inv["credited"] == 3000
    cns = [env.doc(CREDIT_NOTES, c) for c in inv["credit_note_ids"]]
    assert [c["number"] for c in cns] == ["CN-2026-000001", "CN-2026-000002"]
    assert [(c["subtotal"], c["tax"], c["total"]) for c in cns] == [(833, 167, 1000), (1667, 333, 2000)]
    assert all(c["invoice_number"] == inv["number"] for c in cns)
    text = _pdf_text(cns[0]["pdf_uri"])
    assert "CREDIT NOTE CN-2026-000001" in text
    assert f"Credits invoice {inv['number']}" in text
    issued = [b for a, b in env.events() if a["event_type"] == "credit_note.issued"]
    assert sorted(b["credit_note_number"] for b in issued) == ["CN-2026-000001", "CN-2026-000002"]
    assert env.doc(INVOICES, iid)["status"] == "paid"


def test_dispute_flags_the_invoice(env: Env) -> None:
    iid = env.svc.on_renewal_due(due_msg(renewal("dsp:1")))["invoice_id"]
    env.svc.on_payment_fact(fact_msg(disputed(iid)))
    inv = env.doc(INVOICES, iid)
    assert inv["disputed"] is True
    assert inv["disputes"] == ["dp_1"]


def test_a_dispute_without_our_references_flags_the_invoice_its_payment_paid(env: Env) -> None:
    """Stripe's dispute object carries no charge metadata: the payment id finds the invoice it paid."""
    iid = env.svc.on_renewal_due(due_msg(renewal("dsp:2")))["invoice_id"]
    env.svc.on_payment_fact(fact_msg(paid(iid, Money(3000, "EUR"), payment_id="pi_dsp2")))
    bare = disputed(iid, "dp_2").model_copy(update={"refs": OurRefs(), "psp_payment_id": "pi_dsp2"})
    env.svc.on_payment_fact(fact_msg(bare))
    inv = env.doc(INVOICES, iid)
    assert (inv["disputed"], inv["disputes"]) == (True, ["dp_2"])
    stray = disputed(iid, "dp_3").model_copy(update={"refs": OurRefs(), "psp_payment_id": "pi_unknown"})
    assert env.svc.on_payment_fact(fact_msg(stray)) is None


def test_void_keeps_the_number_and_uncollectible_then_paid(env: Env) -> None:
    a = env.svc.on_renewal_due(due_msg(renewal("v:1")))["invoice_id"]
    b = env.svc.on_renewal_due(due_msg(renewal("v:2")))["invoice_id"]
    assert env.svc.void(a, "issued in error") == {"invoice_id": a, "status": "void", "number": "INV-2026-000001"}
    env.svc.void(a)  # idempotent
    env.svc.mark_uncollectible(b)
    env.svc.on_payment_fact(fact_msg(paid(b, Money(3000, "EUR"))))
    assert env.doc(INVOICES, b)["status"] == "paid"
    c = env.svc.on_renewal_due(due_msg(renewal("v:3")))
    assert c["number"] == "INV-2026-000003"  # the voided number is never reused
    types = [a["event_type"] for a, _ in env.events()]
    assert types.count("invoice.voided") == 1
    assert types.count("invoice.uncollectible") == 1


@pytest.mark.parametrize(
    ("currency", "amount", "seller", "total_text"),
    [("JPY", 12000, "acme-jp", "Total: 13200 JPY"), ("KWD", 12345, "acme-fr", "Total: 12.345 KWD")],
)
def test_exponent_0_and_3_currencies(env: Env, currency: str, amount: int, seller: str, total_text: str) -> None:
    buyer = Party(id="c", name="Buyer", country="JP" if currency == "JPY" else "KW")
    req = renewal(f"x:{currency}", currency=currency, amounts=(amount,), customer=buyer, seller=seller)
    out = env.svc.on_renewal_due(due_msg(req))
    inv = env.doc(INVOICES, out["invoice_id"])
    assert total_text in _pdf_text(inv["pdf_uri"])
    assert out["number"] == ("JP-000001" if currency == "JPY" else "INV-2026-000001")


def test_operator_cli_show_and_void(env: Env, capsys: pytest.CaptureFixture[str]) -> None:
    from shared.ops.invoices import main

    iid = env.svc.on_renewal_due(due_msg(renewal("cli:1")))["invoice_id"]
    assert main(["show", iid]) == 0
    assert '"number": "INV-2026-000001"' in capsys.readouterr().out
    assert main(["show", "in_missing"]) == 2
    assert main(["void", iid, "--reason", "issued in error"]) == 0
    assert env.doc(INVOICES, iid)["status"] == "void"
    assert main(["uncollectible", iid]) == 2  # void is final
    assert main(["series"]) == 0
    assert "acme-fr.INV.2026\tcounter=1" in capsys.readouterr().out
