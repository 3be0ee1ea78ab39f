"""Reconciliation on the real Firestore, Pub/Sub and Storage emulators, one fresh project per test."""

from __future__ import annotations

import datetime as dt
import io
import json
import random
import re
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest

from infra.local.settlement_stub import SettlementStub
from shared import clients
from shared.domain.money import Money
from shared.events.billing import CreditNoteIssued, InvoiceFinalized
from shared.events.payments import OurRefs, PaymentRefunded, PaymentSucceeded
from shared.ledger import journal as j
from shared.ledger import store as ledger
from shared.ops import reconciliation as cli
from shared.reconciliation.config import ReconSettings
from shared.reconciliation.reports import daily_report, open_exceptions, payout_view
from shared.reconciliation.repository import CURSORS, EXCEPTIONS, FILES, LINES
from shared.reconciliation.service import Reconciler
from shared.reconciliation.synthetic import synthetic_day
from shared.settlement.adapters import adyen, checkout
from shared.settlement.lines import Fee, LineType, SettlementBatch, SettlementLine
from shared.settlement.writers import adyen_report
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
    assert rec.tick(LATER) == {"pulled_lines": 0, "failed_sources": 0, "aged_groups": 2}
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
    return PaymentSucceeded(psp="adyen", psp_payment_id="PSPLATE0001", livemode=False, amount=Money(amount, "EUR"),
                            refs=refs, psp_created_at=at, **kw)  # fmt: skip


def _report(amount: int = 1000) -> bytes:
    """An Adyen settlement details report: one capture with its commission, then the payout of batch 1."""
    at = dt.datetime(2026, 3, 2, 10, tzinfo=dt.UTC)
    capture = SettlementLine(psp="adyen", line_id="c", type=LineType.CAPTURE, psp_reference="MODLATE0001",
                             psp_payment_id="PSPLATE0001", currency="EUR", gross=amount,
                             fees=(Fee(kind="commission", amount=30),), net=amount - 30, booked_at=at)  # fmt: skip
    payout = SettlementLine(psp="adyen", line_id="p", type=LineType.PAYOUT, currency="EUR", gross=30 - amount,
                            net=30 - amount, booked_at=at + dt.timedelta(hours=13))  # fmt: skip
    return adyen_report([capture, payout], merchant="DemoECOM", batch=1)


def _batch(amount: int = 1000) -> SettlementBatch:
    return adyen.parse_report(_report(amount), account="default", source="t")


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
    refund = PaymentRefunded(psp="adyen", psp_payment_id="PSPLATE0001", livemode=False, refunded=Money(250, "EUR"),
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
    assert balances.get((j.psp_pending("adyen", "default"), "EUR"), 0) == 0
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
    blob = bucket.blob("settlement/adyen/default/settlement_detail_report_batch_1.csv")
    blob.upload_from_string(_report())
    blob.reload()
    rec.record_fact(_pay())
    first = rec.intake_object(bucket.name, blob.name, str(blob.generation))
    assert first["lines"] == 2
    assert first["payouts_closed"] == ["DemoECOM:1"]
    # the generation is glued to "gen": never a bare 16-19 digit run that a card-number sweep would flag
    where = f"gs://{bucket.name}/{blob.name}#gen{blob.generation}#"
    assert all(str(s.to_dict()["source"]).startswith(where) for s in rec.db.collection(LINES).stream())
    bare = re.compile(rf"(?<![A-Za-z_]){blob.generation}")
    stored = [json.dumps(s.to_dict(), default=str) for c in (LINES, FILES) for s in rec.db.collection(c).stream()]
    assert stored
    assert not [d for d in stored if bare.search(d)]
    stamps = {s.id: s.update_time for s in rec.db.collection(LINES).stream()}
    assert rec.intake_object(bucket.name, blob.name, str(blob.generation)) == first
    assert {s.id: s.update_time for s in rec.db.collection(LINES).stream()} == stamps
    out = io.StringIO()
    assert cli.main(["payout", "adyen", "DemoECOM:1"], out=out) == 0
    assert "closed; lines sum 9.70 EUR" in out.getvalue()
    out = io.StringIO()
    assert cli.main(["report", "--day", "2026-03-02"], out=out, now=NOW) == 0
    assert "unexplained amount: 0" in out.getvalue()
    assert "matched or self-explaining 2 (100.00 %)" in out.getvalue()


FIXTURES = Path(__file__).resolve().parents[2] / "fixtures" / "settlement"
CKO_BREAKDOWN = "checkout_settlement-breakdown_ent_acme_20260302.csv"
CKO_PAYOUTS = "checkout_payouts_ent_acme_20260302.csv"
CKO_PAYOUT = "po_3bq5k7x2ld2ezbwhjgkq4u7vsy"


@pytest.mark.parametrize("order", [(CKO_BREAKDOWN, CKO_PAYOUTS), (CKO_PAYOUTS, CKO_BREAKDOWN)])
def test_checkout_payout_closes_whichever_file_comes_first(gcp: Gcp, rec: Reconciler, order: tuple[str, str]) -> None:
    """Checkout's payout amount is in its own file and its 8-decimal nets round: the rounding line is added
    once both are in, in either order, and a redelivered file changes nothing."""
    bucket = clients.storage().create_bucket(f"{gcp.project}-settlement")
    results = []
    for name in (*order, order[0]):
        blob = bucket.blob(f"settlement/checkout/default/{name}")
        if not blob.exists():
            blob.upload_from_string((FIXTURES / name).read_bytes())
        blob.reload()
        results.append(rec.intake_object(bucket.name, blob.name, str(blob.generation)))
    assert [r["payouts_closed"] for r in results] == [[], [CKO_PAYOUT], []]
    view = payout_view(rec.db, "checkout", "default", CKO_PAYOUT)
    assert view["payout"]["status"] == "closed"
    assert view["lines_sum"] == view["payout"]["amount"] == 7619
    # the same rounding line as a pull of both files together (close_payouts) would add
    pulled = checkout.parse_files([(n, (FIXTURES / n).read_bytes()) for n in order], account="default")
    assert {ln.line_id: ln.net for ln in view["lines"]} == {ln.line_id: ln.net for ln in pulled.lines}
    assert any(ln.line_id == f"{CKO_PAYOUT}:rounding" for ln in view["lines"])
    entries = len(list(ledger.entries(rec.db)))
    blob = bucket.blob(f"settlement/checkout/default/{order[1]}")
    blob.upload_from_string((FIXTURES / order[1]).read_bytes())  # a re-upload: a new generation, same lines
    blob.reload()
    rec.intake_object(bucket.name, blob.name, str(blob.generation))
    assert len(list(ledger.entries(rec.db))) == entries
    balances = assert_balanced(rec)
    assert balances[(j.bank_in_transit("checkout", "default"), "EUR")] == 7619


def test_the_tick_pulls_stripe_through_the_registry_lookup(gcp: Gcp, monkeypatch: pytest.MonkeyPatch) -> None:
    """The tick asks the registry for the puller AND its SDK client: the pull reaches the (stub) API."""
    day = synthetic_day(11, payments=8, psps=("stripe",))
    (batch,) = day.batches
    stub = SettlementStub()
    stub.publish(batch.payouts, batch.lines)
    monkeypatch.setenv("STRIPE_API_KEY", "sk_test_recon_not_a_secret")
    monkeypatch.setenv("STRIPE_SETTLEMENT_API_BASE", stub.url)
    gcp.topic("reconciliation-events")
    rec = Reconciler(db=clients.firestore(), settings=settings(pull_sources=(("stripe", "default"),)),
                     clock=lambda: LATER, workers=4)  # fmt: skip
    for f in day.facts:
        rec.record_fact(f)
    first = rec.tick(LATER)
    assert first == {"pulled_lines": len(batch.lines), "failed_sources": 0, "aged_groups": 0}
    assert any(r.startswith("/v1/balance_transactions?payout=") for r in stub.requests)
    assert payout_view(rec.db, "stripe", "default", batch.payouts[0].payout_id)["payout"]["status"] == "closed"
    assert open_exceptions(rec.db) == []
    entries = len(list(ledger.entries(rec.db)))
    rec.db.collection(CURSORS).document("stripe:default").delete()  # the same pages read again
    assert rec.tick(LATER + dt.timedelta(hours=1))["pulled_lines"] == len(batch.lines)
    assert len(list(ledger.entries(rec.db))) == entries
    assert_balanced(rec)


def _fact(pay: str, amount: int, *, attempt: str | None = None, invoice: str | None = None) -> PaymentSucceeded:
    refs = OurRefs(customer_id="c1", attempt_id=attempt, invoice_id=invoice)
    return PaymentSucceeded(psp="paypal", psp_payment_id=pay, livemode=False, amount=Money(amount, "EUR"),
                            refs=refs, psp_created_at=NOW - dt.timedelta(hours=5))  # fmt: skip


def _unreferenced(n: int, amount: int, *, ours: str | None = None, invoice: str | None = None) -> SettlementLine:
    """A payment line naming no payment at the PSP, only our references."""
    return SettlementLine(psp="paypal", line_id=f"T{n}", type=LineType.CAPTURE, our_reference=ours,
                          our_invoice_id=invoice, currency="EUR", gross=amount, net=amount, booked_at=NOW)  # fmt: skip


def test_lines_without_psp_reference_match_on_our_references_in_either_order(rec: Reconciler) -> None:
    rec.record_fact(_fact("P1", 1000, attempt="att-1", invoice="inv-1"))
    rec.record_fact(_fact("P2", 2000, invoice="inv-2"))
    rec.intake_batch(
        SettlementBatch(lines=(_unreferenced(1, 1000, ours="att-1"), _unreferenced(2, 1990, invoice="inv-2")))
    )
    # exact on amount and currency still: the 10 cents short one is an amount mismatch of the payment P2
    assert {(x["payment_ref"], x["kind"], x["impact"]["EUR"]) for x in open_exceptions(rec.db)} == {
        ("P2", "amount_mismatch", 10)
    }
    # the line before its fact: it waits under our reference, is reported after the delay, then joins the fact
    rec.intake_batch(SettlementBatch(lines=(_unreferenced(3, 500, ours="att-3"),)))
    rec.tick(NOW + dt.timedelta(hours=2))
    assert ("ref:att-3", "missing_on_our_side") in {(x["payment_ref"], x["kind"]) for x in open_exceptions(rec.db)}
    rec.record_fact(_fact("P3", 500, attempt="att-3"))
    rec.record_fact(_fact("P3", 500, attempt="att-3"))  # redelivered
    assert {x["payment_ref"] for x in open_exceptions(rec.db)} == {"P2"}
    report = daily_report(rec.db, NOW.date(), NOW + dt.timedelta(hours=2), dt.timedelta(days=3), dt.timedelta(hours=1))
    assert (report.lines, report.matched, report.unexplained) == (3, 2, {})
    assert_balanced(rec)


def test_an_our_reference_naming_several_payments_is_an_exception_never_a_guess(rec: Reconciler) -> None:
    def ambiguous(ref: str) -> list[tuple[str, dict[str, int], str]]:
        return sorted((x["kind"], x["impact"], x["detail"]) for x in open_exceptions(rec.db) if x["payment_ref"] == ref)

    # line, fact, line, second fact of the same invoice (same amount): the joined line is taken back
    rec.intake_batch(SettlementBatch(lines=(_unreferenced(1, 700, invoice="inv-9"),)))
    rec.record_fact(_fact("P8", 700, invoice="inv-9"))
    assert open_exceptions(rec.db) == []  # one payment names it: matched
    rec.record_fact(_fact("P9", 700, invoice="inv-9"))
    rec.intake_batch(SettlementBatch(lines=(_unreferenced(2, 700, invoice="inv-9"),)))
    # facts first, then the lines: the same verdict
    rec.record_fact(_fact("P10", 700, invoice="inv-10"))
    rec.record_fact(_fact("P11", 700, invoice="inv-10"))
    rec.intake_batch(SettlementBatch(lines=(_unreferenced(3, 700, invoice="inv-10"),)))
    rec.intake_batch(SettlementBatch(lines=(_unreferenced(4, 700, invoice="inv-10"),)))
    want = [("ambiguous_reference", {"EUR": -700}, "our reference names 2 payments: {}")] * 2
    assert ambiguous("ref:inv-9") == [(k, i, d.format("P8, P9")) for k, i, d in want]
    assert ambiguous("ref:inv-10") == [(k, i, d.format("P10, P11")) for k, i, d in want]
    assert {x["payment_ref"] for x in open_exceptions(rec.db)} == {"ref:inv-9", "ref:inv-10"}
    report = daily_report(rec.db, NOW.date(), NOW, dt.timedelta(days=3), dt.timedelta(hours=1))
    assert (report.matched, report.unexplained) == (0, {})
    assert_balanced(rec)
