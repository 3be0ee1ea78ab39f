"""Matching (pure): on synthetic days every injected anomaly is reported, nothing else, in any order."""

from __future__ import annotations

import datetime as dt
from collections import defaultdict

from hypothesis import given, settings
from hypothesis import strategies as st

from shared.domain.money import Money
from shared.events.payments import PaymentEvent, PaymentRefunded, PaymentSucceeded
from shared.reconciliation import matching as m
from shared.reconciliation.synthetic import SyntheticDay, replace_line, synthetic_day
from shared.settlement.lines import Fee, LineType, SettlementLine
from tests.helpers import T0

DELAY = dt.timedelta(days=3)
LATER = dt.datetime(2026, 4, 1, tzinfo=dt.UTC)


def run(facts: list[PaymentEvent], lines: list[SettlementLine], now: dt.datetime) -> dict[str, m.Evaluation]:
    fs: dict[str, list[m.FactView]] = defaultdict(list)
    ls: dict[str, list[m.LineView]] = defaultdict(list)
    for f in facts:
        v = m.view_fact(f)
        if v is not None:
            fs[m.group_id(f.psp, f.account, f.psp_payment_id)].append(v)
    for ln in lines:
        ref = m.payment_ref(ln)
        if ref is not None:
            ls[m.group_id(ln.psp, ln.account, ref)].append(m.view_line(ln))
    return {g: m.evaluate(fs[g], ls[g], now, DELAY) for g in set(fs) | set(ls)}


def reported(day_evals: dict[str, m.Evaluation]) -> set[tuple[str, m.Kind]]:
    return {(g, f.kind) for g, ev in day_evals.items() for f in ev.findings}


def test_a_clean_day_of_thousands_matches_every_line() -> None:
    day = synthetic_day(7, payments=2000)
    evals = run(day.facts, day.lines, LATER)
    assert reported(evals) == set()
    payment_lines = [ln for ln in day.lines if ln.type in m.CATEGORIES]
    assert sum(len(ev.matched) for ev in evals.values()) == len(payment_lines)
    kinds = {ln.type for ln in payment_lines}
    assert kinds == set(m.CATEGORIES), "the day has captures, refunds, chargebacks and reversals"
    assert any(ln.presentment_currency for ln in payment_lines), "and FX"


@settings(max_examples=25, deadline=None)
@given(st.integers(0, 10**6), st.integers(0, 40), st.randoms(use_true_random=False))
def test_every_injected_anomaly_is_reported_and_nothing_else(seed: int, anomalies: int, rnd: object) -> None:
    day: SyntheticDay = synthetic_day(seed, payments=300, anomalies=anomalies)
    facts, lines = list(day.facts), list(day.lines)
    rnd.shuffle(facts)  # type: ignore[attr-defined]
    rnd.shuffle(lines)  # type: ignore[attr-defined]
    assert reported(run(facts, lines, LATER)) == day.expected
    assert len(day.expected) == min(anomalies, 300)


def test_missing_on_psp_side_waits_for_the_delay() -> None:
    day = synthetic_day(11, payments=50, anomalies=2)  # kinds: missing ours, missing psp
    (gid,) = [g for g, k in day.expected if k is m.Kind.MISSING_PSP]
    early = run(day.facts, day.lines, T0.replace(year=2026, month=3, day=3))[gid]
    assert early.state == "awaiting"
    assert early.due_at is not None
    assert early.findings == ()
    late = run(day.facts, day.lines, early.due_at)[gid]
    assert [f.kind for f in late.findings] == [m.Kind.MISSING_PSP]


def _line(ref: str, gross: int, **kw: object) -> SettlementLine:
    return SettlementLine.model_validate({
        "psp": "adyen", "line_id": kw.pop("line_id", ref), "type": kw.pop("type", LineType.CAPTURE),
        "psp_reference": ref, "psp_payment_id": "P1", "currency": "EUR", "gross": gross,
        "fees": [Fee(kind="processing", amount=10)], "net": gross - 10, "booked_at": T0, **kw,
    })  # fmt: skip


def test_partial_captures_refund_by_id_and_impacts() -> None:
    pay = PaymentSucceeded(
        psp="adyen", psp_payment_id="P1", livemode=False, amount=Money(1000, "EUR"), psp_created_at=T0
    )
    ref = PaymentRefunded(psp="adyen", psp_payment_id="P1", livemode=False, refund_id="R1", refunded=Money(300, "EUR"),
                          full=False, psp_created_at=T0)  # fmt: skip
    lines = [_line("C1", 400), _line("C2", 600), _line("R1", -300, type=LineType.REFUND)]
    (ev,) = run([pay, ref], lines, LATER).values()
    assert ev.state == "matched"
    assert len(ev.matched) == 3
    # the second capture short by 5: an amount mismatch of +5 left in the clearing account
    (ev,) = run([pay, ref], [_line("C1", 400), _line("C2", 595), lines[2]], LATER).values()
    (f,) = ev.findings
    assert (f.kind, f.impact) == (m.Kind.AMOUNT_MISMATCH, {"EUR": 5})
    # the same capture reported twice under another line id: a duplicate, the rest still matches
    (ev,) = run([pay, ref], [*lines, replace_line(lines[0], line_id="C1-again")], LATER).values()
    (f,) = ev.findings
    assert (f.kind, f.impact) == (m.Kind.DUPLICATE, {"EUR": -400})
    assert len(ev.matched) == 3


def test_a_line_whose_our_reference_names_several_payments_is_never_matched() -> None:
    fact = m.FactView("f1", LineType.CAPTURE, None, "EUR", 700, T0)
    line = m.LineView("k1", LineType.CAPTURE, None, "EUR", 700, "T1", T0, candidates=("P8", "P9"))
    ev = m.evaluate([fact], [line], T0, DELAY)
    assert ev.matched == frozenset()
    assert [(f.kind, f.line_keys, f.impact) for f in ev.findings] == [(m.Kind.AMBIGUOUS, ("k1",), {"EUR": -700})]
    assert m.evaluate([fact], [m.LineView.from_doc("k1", line.to_doc())], T0, DELAY).findings == ev.findings


def test_our_references_are_a_fallback_only_for_lines_naming_no_payment() -> None:
    base: dict[str, object] = {"psp": "paypal", "line_id": "T1", "type": LineType.CAPTURE, "currency": "EUR"}
    base |= {"gross": 5, "net": 5, "booked_at": T0, "our_reference": "att-1", "our_invoice_id": "inv-1"}
    line = SettlementLine.model_validate
    assert m.line_our_refs(line(base)) == ("att-1", "inv-1")
    assert m.line_our_refs(line({**base, "psp_reference": "PAYID-1"})) == ()
    assert m.line_our_refs(line({**base, "type": LineType.FEE, "gross": 0, "net": 0})) == ()
