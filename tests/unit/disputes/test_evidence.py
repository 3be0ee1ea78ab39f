"""Evidence packets (pure): deterministic whatever the read order, no card data, the story the PSPs get;
and the ledger entries a loss posts."""

from __future__ import annotations

import datetime as dt
import io
import json
import zipfile
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from shared.disputes import evidence as ev
from shared.disputes.service import loss_entries
from shared.disputes.submit.base import Submission, summary, texts
from shared.ledger.journal import Journal, trial_balance
from tests.card_data import PANS, leaks

T0 = dt.datetime(2026, 9, 1, tzinfo=dt.UTC)
DISPUTE = {
    "key": "stripe~default~dp_1",
    "psp": "stripe",
    "account": "default",
    "dispute_id": "dp_1",
    "psp_payment_id": "pi_3",
    "status": "needs_response",
    "stage": "chargeback",
    "amount": 1190,
    "currency": "EUR",
    "reason": "subscription_canceled",
    "due_by": T0 + dt.timedelta(days=70),
    "refs": {"invoice_id": "inv_3", "subscription_id": "sub_1", "customer_id": "c-1"},
}
BUYER = {"id": "c-1", "name": "Ada Lovelace", "email": "ada@example.com", "country": "DE", "address_lines": ["Str 1"]}
SUB = {
    "id": "sub_1",
    "customer_id": "c-1",
    "status": "active",
    "created_at": T0,
    "plan": {
        "id": "pro",
        "currency": "EUR",
        "interval": "month",
        "interval_count": 1,
        "lines": [{"description": "Pro"}],
    },
    "payment_method": {"psp": "stripe", "method_ref": "pm_1"},
}


def invoice(i: int) -> dict[str, Any]:
    start = T0 + dt.timedelta(days=30 * i)
    return {
        "invoice_id": f"inv_{i}",
        "number": f"INV-2026-{i:04d}",
        "status": "paid",
        "subscription_id": "sub_1",
        "buyer": BUYER,
        "currency": "EUR",
        "total": 1190,
        "tax": 190,
        "period_start": start,
        "period_end": start + dt.timedelta(days=30),
        "paid_at": start + dt.timedelta(hours=1),
        "psp_payment_id": f"pi_{i}",
        "pdf_uri": f"gs://b/invoices/{i}.pdf",
        "lines": [{"description": "Pro plan", "quantity": 1, "total": 1000}],
    }


def fact(i: int, kind: str = "payment.succeeded") -> dict[str, Any]:
    event: dict[str, Any] = {
        "psp": "stripe",
        "psp_payment_id": f"pi_{i}",
        "psp_created_at": (T0 + dt.timedelta(days=30 * i, hours=1)).isoformat(),
        "amount": {"amount": 1190, "currency": "EUR"},
        "refs": {"invoice_id": f"inv_{i}"},
    }
    if kind == "payment.refunded":
        event |= {"refund_id": f"re_{i}", "refunded": {"amount": 500, "currency": "EUR"}}
    return {"event_type": kind, "event": event}


def holdings(order: list[int] | None = None) -> ev.Holdings:
    idx = order or [0, 1, 2, 3]
    return ev.Holdings(
        DISPUTE,
        SUB,
        tuple(invoice(i) for i in idx),
        (*(fact(i) for i in idx), fact(2, "payment.refunded")),
        {f"inv_{i}": f"%PDF-1.7 invoice {i}".encode() for i in idx},
    )


def test_packet_holds_the_facts_the_pdfs_and_a_manifest() -> None:
    p = ev.packet(holdings())
    with zipfile.ZipFile(io.BytesIO(p.data)) as z:
        names = z.namelist()
        manifest = json.loads(z.read("manifest.json"))
        facts = json.loads(z.read("evidence.json"))
    assert names == [
        "evidence.json",
        "invoices/INV-2026-0000.pdf",
        "invoices/INV-2026-0001.pdf",
        "invoices/INV-2026-0002.pdf",
        "invoices/INV-2026-0003.pdf",
        "manifest.json",
    ]
    assert set(manifest) == set(names) - {"manifest.json"}
    assert facts == p.facts
    assert facts["customer"]["name"] == "Ada Lovelace"
    assert facts["dispute"]["due_by"] == "2026-11-10T00:00:00+00:00"
    assert [s["invoice"] for s in facts["service"]] == [f"INV-2026-{i:04d}" for i in range(4)]
    assert [r["refund_id"] for r in facts["refunds"]] == ["re_2"]
    assert p.summary == {
        "invoices": 4,
        "pdfs": 4,
        "payments": 4,
        "refunds": 1,
        "service_periods": 4,
        "customer": "c-1",
    }
    assert p.name == f"disputes/stripe~default~dp_1/evidence-{p.sha256[:16]}.zip"
    assert "payment_method" not in json.dumps(facts), "only what proves the service, not how it was paid"


@given(st.permutations([0, 1, 2, 3]))
def test_same_records_in_any_read_order_make_the_same_object(order: list[int]) -> None:
    assert ev.packet(holdings(order)).data == ev.packet(holdings()).data


def test_new_facts_make_a_new_object() -> None:
    h = holdings()
    more = ev.Holdings(h.dispute, h.subscription, h.invoices, (*h.facts, fact(3, "payment.refunded")), h.pdfs)
    assert ev.packet(more).name != ev.packet(h).name


@pytest.mark.parametrize("pan", PANS)
def test_no_card_data_in_the_packet(pan: str) -> None:
    buyer = {**BUYER, "name": f"Ada card {pan} cvc 739", "address_lines": [f"pan={pan}"]}
    inv = [{**invoice(i), "buyer": buyer} for i in range(2)]
    h = ev.Holdings(DISPUTE, SUB, tuple(inv), (), {})
    p = ev.packet(h)
    with zipfile.ZipFile(io.BytesIO(p.data)) as z:
        text = z.read("evidence.json").decode()
    assert leaks(text, [pan]) == []
    assert leaks(summary(p.facts), [pan]) == []


def test_texts_tell_the_story_for_the_psps() -> None:
    t = texts(ev.packet(holdings()).facts)
    assert t["customer_name"] == "Ada Lovelace"
    assert t["billing_address"] == "Str 1, DE"
    assert t["product"] == "Subscription sub_1 to plan pro (Pro) billed every 1 month in advance since 2026-09-01"
    assert t["service_date"] == "2026-11-30"
    assert t["service"].startswith("Service provided: INV-2026-0000 2026-09-01 to 2026-10-01; ")
    assert t["refunds"] == "Refunds: re_2 5.00 EUR on 2026-10-31"
    assert t["cancellation"] == "Subscription status: active, never canceled by the customer."
    assert "pi_3 11.90 EUR on 2026-11-30" in t["payments"]
    empty = texts(ev.packet(ev.Holdings(DISPUTE)).facts)
    assert empty == {"refunds": "No refund was requested or issued for this payment."}


def test_one_idempotency_key_per_dispute_and_stage_within_psp_limits() -> None:
    a = Submission(DISPUTE, {})
    b = Submission({**DISPUTE, "status": "under_review"}, {"x": 1}, packet_sha256="f" * 64)
    c = Submission({**DISPUTE, "key": "stripe~default~dp_2"}, {})
    d = Submission({**DISPUTE, "stage": "pre_arbitration"}, {})
    assert a.idempotency_key == b.idempotency_key
    assert len({a.idempotency_key, c.idempotency_key, d.idempotency_key}) == 3
    assert len(a.idempotency_key) + len("-defend") <= 64  # Adyen's limit, with the per-call suffix


# -- ledger on loss ------------------------------------------------------------------------------
LOST: dict[str, Any] = {**DISPUTE, "chargeback": {"amount": 1190, "currency": "EUR", "recorded_at": T0}}


def test_a_loss_moves_the_withdrawn_amount_to_losses_once() -> None:
    (entry,) = loss_entries(LOST)
    assert {(p.account, p.amount) for p in entry.postings} == {("chargeback_losses", 1190), ("chargebacks", -1190)}
    j = Journal()
    assert j.post(entry) is True
    assert [j.post(e) for e in loss_entries({**LOST, "chargeback": {**LOST["chargeback"]}})] == [False]
    assert trial_balance(j.balances()) == {}


def test_a_win_after_the_loss_reverses_it_and_nothing_without_an_amount() -> None:
    reversed_ = {**LOST, "chargeback": {**LOST["chargeback"], "reversed_at": T0 + dt.timedelta(days=9)}}
    j = Journal()
    for e in loss_entries(reversed_):
        j.post(e)
    assert j.balances() == {}
    assert len(j.entries) == 2
    assert loss_entries({**DISPUTE, "chargeback": {"amount": None, "currency": None, "recorded_at": T0}}) == []
    assert loss_entries(DISPUTE) == []


def test_payments_folded_into_invoices_and_credit_notes_count_once() -> None:
    """Applied facts live on the invoice (paid_at, psp_payment_id), refunds as credit notes: both are read."""
    note = {"credit_note_id": "cn_1", "number": "CN-1", "invoice_id": "inv_1", "refund_id": "re_1", "total": 500,
            "currency": "EUR", "created_at": T0, "pdf_uri": "gs://b/cn.pdf"}  # fmt: skip
    h = ev.Holdings(
        DISPUTE,
        SUB,
        (invoice(0), invoice(1)),
        (fact(1),),  # invoice 1's payment kept as a fact as well: counted once
        {"inv_0": b"%PDF-0", "cn_1": b"%PDF-cn"},
        (note,),
    )
    p = ev.packet(h)
    assert [(m["psp_payment_id"], m["amount"]["amount"]) for m in p.facts["payments"]] == [
        ("pi_0", 1190),
        ("pi_1", 1190),
    ]
    assert [(r["refund_id"], r["credit_note"]) for r in p.facts["refunds"]] == [("re_1", "CN-1")]
    assert p.members == ("credit_notes/CN-1.pdf", "evidence.json", "invoices/INV-2026-0000.pdf")
    refunded = ev.Holdings(h.dispute, h.subscription, h.invoices, (*h.facts, fact(1, "payment.refunded")), {}, (
        {**note, "refund_id": "re_1"},
    ))  # fmt: skip
    assert [r["refund_id"] for r in ev.packet(refunded).facts["refunds"]] == ["re_1"], (
        "fact and credit note: one refund"
    )
