"""The credit ledger: balance = sum of entries, never negative, one application per invoice, reversals."""

from __future__ import annotations

import datetime as dt

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from shared.domain.credit import (
    CreditEntry,
    CreditError,
    EntryKind,
    application,
    application_id,
    balance,
    check_ledger,
    from_credit_note,
    grant,
    reversal,
)
from shared.domain.money import CurrencyError, Money
from tests.unit.billing.factories import T0

CUS = "cus_1"


def _apply(entries: list[CreditEntry], invoice: str, due: int) -> int:
    d = application(entries, customer_id=CUS, invoice_id=invoice, amount_due=Money(due, "EUR"), at=T0)
    if d.entry is not None:
        entries.append(d.entry)
    return d.amount.amount


def test_applied_up_to_the_amount_due_and_once_per_invoice() -> None:
    entries = [grant(CUS, "g1", Money(5000, "EUR"), T0)]
    assert _apply(entries, "in_1", 3000) == 3000
    assert _apply(entries, "in_1", 3000) == 3000  # the same decision, nothing written
    assert len(entries) == 2
    assert entries[1].id == application_id("in_1")
    assert _apply(entries, "in_2", 4000) == 2000  # capped at the balance
    assert _apply(entries, "in_3", 4000) == 0  # nothing left: no entry
    assert _apply(entries, "in_4", 0) == 0
    assert balance(entries, "EUR") == Money(0, "EUR")
    check_ledger(entries, "EUR")


def test_a_voided_invoice_gives_its_credit_back_once() -> None:
    entries = [grant(CUS, "g1", Money(5000, "EUR"), T0)]
    _apply(entries, "in_1", 3000)
    r = reversal(entries, application_id("in_1"), T0, reason="invoice voided")
    assert r is not None
    assert r.amount == Money(3000, "EUR")
    assert r.kind is EntryKind.REVERSAL
    entries.append(r)
    assert reversal(entries, application_id("in_1"), T0) is None  # already reversed
    assert balance(entries, "EUR").amount == 5000
    assert _apply(entries, "in_1", 3000) == 0  # a void is final: never paid from the balance again
    check_ledger(entries, "EUR")


def test_spent_credit_cannot_be_taken_back() -> None:
    entries = [grant(CUS, "g1", Money(5000, "EUR"), T0)]
    _apply(entries, "in_1", 3000)
    with pytest.raises(CreditError, match="already used"):
        reversal(entries, "g1", T0)
    with pytest.raises(CreditError):
        reversal(entries, "missing", T0)


def test_entries_are_signed_by_kind() -> None:
    eur = Money(100, "EUR")
    bad = [
        {"kind": "grant", "amount": -eur},
        {"kind": "credit_note", "amount": -eur},
        {"kind": "application", "amount": eur, "invoice_id": "in_1"},
        {"kind": "application", "amount": -eur},  # no invoice
        {"kind": "reversal", "amount": eur},  # reverses nothing
        {"kind": "grant", "amount": Money(0, "EUR")},
    ]
    for kw in bad:
        with pytest.raises(ValidationError):
            CreditEntry.model_validate({"id": "e", "customer_id": CUS, "at": T0, **kw})
    assert from_credit_note(CUS, "cn_1", eur, T0).id == "credit_note:cn_1"


def test_the_ledger_check_catches_what_the_decisions_never_write() -> None:
    g = grant(CUS, "g1", Money(100, "EUR"), T0)
    spend = CreditEntry(
        id="application:in_1",
        customer_id=CUS,
        kind=EntryKind.APPLICATION,
        amount=Money(-200, "EUR"),
        at=T0,
        invoice_id="in_1",
    )
    with pytest.raises(CreditError, match="negative"):
        check_ledger([g, spend], "EUR")
    with pytest.raises(CreditError, match="duplicate"):
        check_ledger([g, g], "EUR")
    with pytest.raises(CreditError, match="keyed"):
        check_ledger([g, spend.model_copy(update={"id": "x", "amount": Money(-50, "EUR")})], "EUR")
    with pytest.raises(CreditError):
        check_ledger([grant(CUS, "g2", Money(1, "USD"), T0)], "EUR")
    with pytest.raises(CurrencyError):
        balance([grant(CUS, "g2", Money(1, "USD"), T0)], "EUR")


ops = st.lists(
    st.one_of(
        st.tuples(st.just("grant"), st.integers(1, 10**6)),
        st.tuples(st.just("credit_note"), st.integers(1, 10**6)),
        st.tuples(st.just("apply"), st.integers(0, 9), st.integers(-1000, 10**6)),
        st.tuples(st.just("void"), st.integers(0, 9)),
        st.tuples(st.just("take_back"), st.integers(0, 20)),
    ),
    max_size=40,
)


@settings(deadline=None)
@given(ops)
def test_any_sequence_of_decisions_keeps_every_invariant(steps: list[tuple[object, ...]]) -> None:
    entries: list[CreditEntry] = []
    applied: dict[str, int] = {}
    dues: dict[str, int] = {}  # an invoice's amount due is fixed once composed
    for n, step in enumerate(steps):
        at = T0 + dt.timedelta(minutes=n)
        before = balance(entries, "EUR").amount
        if step[0] == "grant":
            entries.append(grant(CUS, f"g{n}", Money(int(step[1]), "EUR"), at))  # type: ignore[call-overload]
        elif step[0] == "credit_note":
            entries.append(from_credit_note(CUS, f"cn{n}", Money(int(step[1]), "EUR"), at))  # type: ignore[call-overload]
        elif step[0] == "apply":
            invoice = f"in_{step[1]}"
            due = dues.setdefault(invoice, int(step[2]))  # type: ignore[call-overload]
            got = _apply(entries, invoice, due)
            assert 0 <= got <= max(due, 0)
            if invoice in applied:
                assert got == applied[invoice] or got == 0  # the first decision, or 0 once voided
                assert balance(entries, "EUR").amount == before  # applying twice writes nothing
            else:
                assert got == min(before, max(due, 0))
                if got:  # a decision of 0 writes nothing (see credit.application)
                    applied[invoice] = got
        elif step[0] == "void":
            key = application_id(f"in_{step[1]}")
            if any(e.id == key for e in entries):
                r = reversal(entries, key, at)
                if r is not None:
                    entries.append(r)
        else:
            positives = [e for e in entries if e.kind in (EntryKind.GRANT, EntryKind.CREDIT_NOTE)]
            if positives:
                target = positives[int(step[1]) % len(positives)]  # type: ignore[call-overload]
                try:
                    r = reversal(entries, target.id, at)
                except CreditError:
                    assert before < target.amount.amount
                else:
                    if r is not None:
                        entries.append(r)
        bal = balance(entries, "EUR").amount
        assert bal == sum(e.amount.amount for e in entries)
        assert bal >= 0
        check_ledger(entries, "EUR")
        assert all(CreditEntry.model_validate(e.model_dump(mode="json")) == e for e in entries[-1:])
