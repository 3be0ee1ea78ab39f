"""The pure journal: every entry balances per currency, the same cause posts once, balances are a fold."""

from __future__ import annotations

import datetime as dt

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from shared.domain.money import Money
from shared.events.billing import CreditNoteIssued, InvoiceFinalized
from shared.events.payments import OurRefs, PaymentRefunded, PaymentSucceeded
from shared.ledger import journal as j
from shared.ledger import postings
from shared.ledger.journal import ConflictingEntry, Entry, Journal, Posting, UnbalancedEntry
from shared.reconciliation.synthetic import synthetic_day
from tests.helpers import T0

ACCOUNTS = ["receivable:c1", "psp_balance:stripe:default", "psp_fees:stripe:processing", "revenue", "fx"]
CURRENCIES = ["EUR", "JPY", "KWD"]


@st.composite
def entries(draw: st.DrawFn) -> Entry:
    """A balanced entry: random postings per currency plus the one that brings each currency to zero."""
    ps = []
    for cur in draw(st.lists(st.sampled_from(CURRENCIES), min_size=1, max_size=3, unique=True)):
        amounts = draw(st.lists(st.integers(-(10**12), 10**12), min_size=1, max_size=4))
        ps += [Posting(draw(st.sampled_from(ACCOUNTS)), cur, a) for a in amounts]
        ps.append(Posting("suspense", cur, -sum(amounts)))
    return Entry(f"cause-{draw(st.integers(0, 30))}", T0, tuple(ps))


def test_an_unbalanced_entry_is_refused() -> None:
    with pytest.raises(UnbalancedEntry):
        Entry("x", T0, (Posting("a", "EUR", 100), Posting("b", "EUR", -99)))
    with pytest.raises(UnbalancedEntry):  # balanced in total but not per currency
        Entry("x", T0, (Posting("a", "EUR", 100), Posting("b", "USD", -100)))
    with pytest.raises(TypeError):
        Posting("a", "EUR", 1.5)  # type: ignore[arg-type]


@settings(max_examples=200)
@given(st.lists(entries(), max_size=30), st.randoms(use_true_random=False))
def test_balances_sum_to_zero_after_every_step_and_under_redelivery(batch: list[Entry], rnd: object) -> None:
    journal, seen = Journal(), dict[str, Entry]()
    deliveries = batch + batch[: len(batch) // 2]  # redelivery of half
    rnd.shuffle(deliveries)  # type: ignore[attr-defined]
    for e in deliveries:
        if e.empty:  # every posting cancelled out: nothing to append
            assert not journal.post(e)
            continue
        if e.id in seen and seen[e.id].postings != e.postings:
            with pytest.raises(ConflictingEntry):
                journal.post(e)
            continue
        seen.setdefault(e.id, e)
        journal.post(e)
        assert j.trial_balance(journal.balances()) == {}
    assert journal.balances() == j.fold(seen.values())
    assert {e.id for e in journal.entries} == set(seen)


@settings(max_examples=50, deadline=None)
@given(st.integers(0, 10_000), st.integers(0, 10), st.permutations(range(6)))
def test_a_synthetic_day_books_balanced_and_order_independent(seed: int, anomalies: int, order: list[int]) -> None:
    day = synthetic_day(seed, payments=40, anomalies=anomalies)
    built = [postings.fact_entry(f) for f in day.facts] + [postings.line_entry(ln) for ln in day.lines]
    all_entries = [e for e in built if e is not None]
    chunks = [all_entries[i::6] for i in range(6)]
    journal = Journal()
    for i in order:
        for e in chunks[i] + chunks[i][:3]:  # every chunk partly redelivered
            journal.post(e)
        assert j.trial_balance(journal.balances()) == {}
    assert journal.balances() == j.fold(all_entries)


def test_receivable_ties_out_with_invoice_payment_and_credit_note() -> None:
    inv = InvoiceFinalized(
        invoice_id="inv1", number="F-1", customer_id="c1", request_id="r1", subtotal=Money(1000, "EUR"),
        tax=Money(200, "EUR"), total=Money(1200, "EUR"), amount_due=Money(1200, "EUR"),
        collection="charge_automatically", finalized_at=T0,
    )  # fmt: skip
    refs = OurRefs(customer_id="c1", invoice_id="inv1")
    pay = PaymentSucceeded(psp="stripe", psp_payment_id="pi_1", livemode=False, amount=Money(1200, "EUR"), refs=refs,
                           psp_created_at=T0)  # fmt: skip
    cn = CreditNoteIssued(invoice_id="inv1", number="F-1", customer_id="c1", credit_note_id="cn1",
                          credit_note_number="A-1", amount=Money(300, "EUR"))  # fmt: skip
    refund = PaymentRefunded(psp="stripe", psp_payment_id="pi_1", livemode=False, refs=refs, refund_id="re_1",
                             refunded=Money(300, "EUR"), full=False, psp_created_at=T0)  # fmt: skip
    journal = Journal()
    for e in (postings.invoice_entry(inv, T0), postings.fact_entry(pay), postings.invoice_entry(cn, T0),
              postings.fact_entry(refund)):  # fmt: skip
        assert e is not None
        assert journal.post(e)
        assert not journal.post(e)  # redelivered
    b = journal.balances()
    assert b.get(("receivable:c1", "EUR"), 0) == 0
    assert b[("revenue", "EUR")] == -1000
    assert b[("tax_payable", "EUR")] == -200
    assert b[("credit_notes", "EUR")] == 300
    assert b[(j.psp_pending("stripe", "default"), "EUR")] == 900


def test_fx_line_books_both_legs_and_the_fee_accounts() -> None:
    day = synthetic_day(3, payments=60)
    fx = next(ln for ln in day.lines if ln.presentment_currency)
    e = postings.line_entry(fx)
    by = {(p.account, p.currency): p.amount for p in e.postings}
    assert fx.presentment_currency is not None
    assert fx.presentment_amount is not None
    assert by[(j.psp_pending(fx.psp, "default"), fx.presentment_currency)] == -fx.presentment_amount
    assert by[(j.FX, "EUR")] == -fx.gross
    assert by[(j.psp_balance(fx.psp, "default"), "EUR")] == fx.net
    assert sum(v for (a, _), v in by.items() if a.startswith("psp_fees:")) == sum(f.amount for f in fx.fees)
    assert e.occurred_at.tzinfo is dt.UTC
