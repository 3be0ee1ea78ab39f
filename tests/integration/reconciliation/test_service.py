"""Reconciliation on the real Firestore, Pub/Sub and Storage emulators, one fresh project per test."""

from __future__ import annotations

import datetime as dt
import io
import random
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest

from infra.local import settlement_stub
from shared import clients
from shared.domain.money import Money
from shared.events.billing import CreditNoteIssued, InvoiceFinalized
from shared.events.payments import OurRefs, PaymentRefunded, PaymentSucceeded
from shared.ledger import journal as j
from shared.ledger import store as ledger
from shared.ops import reconciliation as cli
from shared.reconciliation.config import ReconSettings
from shared.reconciliation.reports import daily_report, open_exceptions
from shared.reconciliation.repository import EXCEPTIONS, LINES
from shared.reconciliation.service import Reconciler
from shared.reconciliation.synthetic import synthetic_day
from shared.settlement.lines import SettlementBatch
from tests.conftest import Gcp
from tests.helpers import drain

DAY = dt.date(2026, 3, 2)
NOW = dt.datetime(2026, 3, 3, 6, tzinfo=dt.UTC)  # the morning after: settlement in, facts still in their delay
LATER = dt.datetime(2026, 3, 10, tzinfo=dt.UTC)  # past the PSP-side delay


def settings(**kw: Any) -> ReconSettings:
    base = {
        "psp_delay": dt.timedelta(days=3),
        "our_delay": dt.timedelta(hours=1),
        "pull_sources": (),
        "pull_overlap": dt.timedelta(hours=1),
        "registry_module": "infra.local.settlement_stub",
        "allow_test_clock": True,
    }
    return ReconSettings(**{**base, **kw})


@pytest.fixture
def rec(gcp: Gcp) -> Reconciler:
    gcp.topic("reconciliation-events")
    return Reconciler(db=clients.firestore(), settings=settings(), clock=lambda: NOW, workers=4)


def events(sub: str) -> Counter[str]:
    return Counter(a["event_type"] for a, _ in drain(sub, wait=False))


def open_kinds(rec: Reconciler) -> set[tuple[str, str]]:
    return {(x["group"], x["kind"]) for x in open_exceptions(rec.db)}


def assert_balanced(rec: Reconciler) -> dict[tuple[str, str], int]:
    balances = ledger.balances(rec.db)
    assert j.trial_balance(balances) == {}
    return balances


def test_a_day_with_anomalies_in_any_order_with_redelivery(gcp: Gcp, rec: Reconciler) -> None:
    sub = gcp.pull_subscription("reconciliation-events")
    day = synthetic_day(5, payments=60, anomalies=5)
    rnd = random.Random(5)
    facts = list(day.facts)
    rnd.shuffle(facts)
    half = len(facts) // 2
    for f in facts[:half]:  # half the facts before the settlement files, half after
        rec.record_fact(f)
    for b in day.batches:
        rec.intake_batch(b)
    assert_balanced(rec)
    for f in facts[half:] + facts[:5]:  # ... and some facts delivered twice
        rec.record_fact(f)
    entries_before = len(list(ledger.entries(rec.db)))
    for b in day.batches[:2]:  # a settlement file delivered twice changes nothing
        rec.intake_batch(b)
    assert len(list(ledger.entries(rec.db))) == entries_before
    balances = assert_balanced(rec)
    # the payments missing on either side are still inside their delays: everything else is reported
    expected_now = {(g, k.value) for g, k in day.expected if not k.value.startswith("missing")}
    assert open_kinds(rec) == expected_now
    assert daily_report(rec.db, DAY, NOW, dt.timedelta(days=3), dt.timedelta(hours=1)).unexplained == {}
    assert rec.tick(LATER) == {"pulled_lines": 0, "aged_groups": 2}
    assert open_kinds(rec) == {(g, k.value) for g, k in day.expected}
    report = daily_report(rec.db, DAY, LATER, dt.timedelta(days=3))
    assert report.unexplained == {}
    assert report.lines == len(day.lines)
    assert 0 < report.matched < report.lines
    seen = events(sub)
    assert seen["reconciliation.payout_closed"] == 4
    assert seen["reconciliation.exception_raised"] == 5
    assert balances[(j.bank_in_transit("stripe", "default"), "EUR")] == day.batches[0].payouts[0].amount
    assert not any(k[0].startswith("psp_balance:") for k in assert_balanced(rec)), "every balance paid out"


def test_parallel_delivery_of_the_same_batch_and_facts(rec: Reconciler) -> None:
    day = synthetic_day(9, payments=40, anomalies=3)
    work: list[Any] = [*day.batches, *day.batches, *day.facts, *day.facts]
    random.Random(9).shuffle(work)

    def deliver(item: Any) -> None:
        if isinstance(item, SettlementBatch):
            rec.intake_batch(item)
        else:
            rec.record_fact(item)

    with ThreadPoolExecutor(6) as pool:
        list(pool.map(deliver, work))
    assert_balanced(rec)
    causes = {e.cause for e in ledger.entries(rec.db)}
    assert len(causes) == len(list(ledger.entries(rec.db)))
    expected_now = {(g, k.value) for g, k in day.expected if not k.value.startswith("missing")}
    assert open_kinds(rec) == expected_now
    assert daily_report(rec.db, DAY, NOW, dt.timedelta(days=3), dt.timedelta(hours=1)).unexplained == {}
    rec.tick(LATER)
    assert open_kinds(rec) == {(g, k.value) for g, k in day.expected}


def _pay(amount: int = 1000, **kw: Any) -> PaymentSucceeded:
    at = NOW - dt.timedelta(hours=30)
    refs = OurRefs(customer_id="c9")
    return PaymentSucceeded(psp="stripe", psp_payment_id="pi_late", livemode=False, amount=Money(amount, "EUR"),
                            refs=refs, psp_created_at=at, **kw)  # fmt: skip


def _batch(amount: int = 1000) -> SettlementBatch:
    csv = (
        settlement_stub.HEADER
        + "\n"
        + (
            f"capture,txn_1,ch_late,pi_late,EUR,{amount},processing=30,po_1,2026-03-02T10:00:00+00:00,,\n"
            f"payout,txn_po,,,EUR,-{amount - 30},,po_1,2026-03-02T23:00:00+00:00,,\n"
        )
    )
    return settlement_stub.parse_report(csv.encode(), account="default", source="t")


def test_a_late_fact_clears_the_exception_and_a_resolution_is_an_entry(gcp: Gcp, rec: Reconciler) -> None:
    sub = gcp.pull_subscription("reconciliation-events")
    rec.intake_batch(_batch())
    assert open_exceptions(rec.db) == []  # the webhook may be slower than the report: wait an hour
    rec.tick(NOW + dt.timedelta(hours=2))
    (x,) = open_exceptions(rec.db)
    assert (x["kind"], x["impact"]) == ("missing_on_our_side", {"EUR": -1000})
    rec.record_fact(_pay())  # the late fact explains it
    assert open_exceptions(rec.db) == []
    assert events(sub) == {"reconciliation.exception_raised": 1, "reconciliation.exception_cleared": 1,
                           "reconciliation.payout_closed": 1}  # fmt: skip
    # a refund fact of 250 whose refund line never comes: after the delay, an exception; resolved by hand
    refund = PaymentRefunded(psp="stripe", psp_payment_id="pi_late", livemode=False, refunded=Money(250, "EUR"),
                             refund_id="re_1", full=False, psp_created_at=NOW)  # fmt: skip
    rec.record_fact(refund)
    rec.tick(LATER)
    (x,) = open_exceptions(rec.db)
    assert (x["kind"], x["impact"]) == ("missing_on_psp_side", {"EUR": -250})
    out = io.StringIO()
    assert cli.main(["resolve", x["id"], "--reason", "refund cancelled at the PSP"], out=out, now=LATER) == 0
    again = rec.resolve(x["id"], "again", LATER)
    assert again["reason"] == "refund cancelled at the PSP"
    entry = ledger.get(rec.db, again["entry_id"])
    assert entry is not None
    assert entry.memo == "refund cancelled at the PSP"
    assert open_exceptions(rec.db) == []
    doc = rec.db.collection(EXCEPTIONS).document(x["id"]).get().to_dict()
    assert doc["status"] == "resolved"
    balances = assert_balanced(rec)
    assert balances.get((j.psp_pending("stripe", "default"), "EUR"), 0) == 0
    assert balances[(j.RECON_ADJUSTMENTS, "EUR")] == -250
    assert events(sub) == {"reconciliation.exception_raised": 1, "reconciliation.exception_resolved": 1}


def test_receivables_tie_out_with_invoices(rec: Reconciler) -> None:
    inv = InvoiceFinalized(
        invoice_id="inv_1", number="F-1", customer_id="c9", request_id="r1", subtotal=Money(800, "EUR"),
        tax=Money(200, "EUR"), total=Money(1000, "EUR"), amount_due=Money(1000, "EUR"),
        collection="charge_automatically", finalized_at=NOW,
    )  # fmt: skip
    cn = CreditNoteIssued(invoice_id="inv_1", number="F-1", customer_id="c9", credit_note_id="cn_1",
                          credit_note_number="A-1", amount=Money(100, "EUR"))  # fmt: skip
    for ev in (inv, inv, cn, cn):
        rec.record_invoice_event(ev, NOW)
    rec.record_fact(_pay(900))
    rec.record_fact(_pay(900))
    balances = assert_balanced(rec)
    assert balances.get((j.receivable("c9"), "EUR"), 0) == 0
    assert balances[(j.REVENUE, "EUR")] == -800
    assert balances[(j.CREDIT_NOTES, "EUR")] == 100


def test_a_report_file_in_the_bucket_is_taken_in_once(gcp: Gcp, rec: Reconciler) -> None:
    bucket = clients.storage().create_bucket(f"{gcp.project}-settlement")
    blob = bucket.blob("settlement/stripe/default/2026-03-02.csv")
    blob.upload_from_string(settlement_stub.to_csv(_batch()))
    blob.reload()
    rec.record_fact(_pay())
    first = rec.intake_object(bucket.name, blob.name, str(blob.generation))
    assert first["lines"] == 2
    assert first["payouts_closed"] == ["po_1"]
    stamps = {s.id: s.update_time for s in rec.db.collection(LINES).stream()}
    assert rec.intake_object(bucket.name, blob.name, str(blob.generation)) == first
    assert {s.id: s.update_time for s in rec.db.collection(LINES).stream()} == stamps
    out = io.StringIO()
    assert cli.main(["payout", "stripe", "po_1"], out=out) == 0
    assert "closed; lines sum 9.70 EUR" in out.getvalue()
    out = io.StringIO()
    assert cli.main(["report", "--day", "2026-03-02"], out=out, now=NOW) == 0
    assert "unexplained amount: 0" in out.getvalue()
    assert "matched or self-explaining 2 (100.00 %)" in out.getvalue()
