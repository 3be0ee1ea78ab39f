"""Pending proration lines: what a plan change owes while the period is unpaid, and that every line is
billed exactly once (next renewal or final invoice), never lost, never twice, whatever the sequence."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field, replace

from hypothesis import given, settings
from hypothesis import strategies as st

from shared.domain.calendar import Anchor, Cadence, Schedule, Unit, plan_change
from shared.domain.money import Money, Rounding
from shared.domain.subscriptions import (
    DunningPolicy,
    Outcome,
    SubState,
    apply_payment,
    cancel_at_period_end,
    cancel_now,
    decide_renewal,
    due_at,
    new_subscription,
    proration_period,
)

UTC = dt.UTC
T0 = dt.datetime(2026, 1, 31, 9, 0, tzinfo=UTC)
POLICY = DunningPolicy((1, 3), "unpaid")


def fresh(trial_days: int = 0) -> SubState:
    trial_end = T0 + dt.timedelta(days=trial_days) if trial_days else None
    sched = Schedule(Anchor.at(trial_end or T0, "Europe/Berlin"), Cadence(Unit.MONTH))
    return new_subscription(id="s", customer_id="c", schedule=sched, now=T0, trial_end=trial_end).state


def billed(s: SubState, now: dt.datetime) -> SubState:
    p = decide_renewal(s, now, republish_s=600)
    assert p.kind == "bill"
    return p.change.state


def ok(k: int, at: dt.datetime, cause: str = "ok") -> Outcome:
    return Outcome("succeeded", f"inv_{k}", 1, k, at, f"{cause}:{k}")


def ko(k: int, at: dt.datetime, attempt: int = 1) -> Outcome:
    return Outcome("failed", f"inv_{k}", attempt, k, at, f"ko:{k}:{attempt}")


def test_change_prorates_against_the_invoiced_period_paid_or_not() -> None:
    s = billed(fresh(), T0)
    at = T0 + dt.timedelta(days=10)
    assert proration_period(s, at) == s.schedule.period(0)  # invoiced, payment pending
    dunned = apply_payment(s, ko(0, T0), POLICY).state
    assert dunned.status == "past_due"
    assert proration_period(dunned, at) == s.schedule.period(0)
    paid = apply_payment(s, ok(0, T0), POLICY).state
    assert proration_period(paid, at) == s.schedule.period(0)
    assert proration_period(paid, s.schedule.boundary(1)) is None  # period 1 is not invoiced yet


def test_nothing_to_prorate_before_anything_is_invoiced() -> None:
    assert proration_period(fresh(), T0 + dt.timedelta(days=1)) is None
    assert proration_period(fresh(trial_days=14), T0 + dt.timedelta(days=1)) is None
    assert proration_period(cancel_now(billed(fresh(), T0), T0, "x").state, T0) is None


def test_cancel_at_period_end_with_pending_lines_bills_a_final_invoice() -> None:
    s = apply_payment(billed(fresh(), T0), ok(0, T0), POLICY).state
    s = replace(cancel_at_period_end(s).state, has_pending=True)
    end = s.schedule.boundary(1)
    p = decide_renewal(s, end, republish_s=600)
    assert (p.kind, p.final) == ("bill", True)
    assert p.period == s.schedule.period(0)  # the period the prorations belong to
    assert p.change.transition is not None
    assert p.change.transition.reason == "canceled_at_period_end"
    f = p.change.state
    assert f.billing is not None
    assert (f.status, f.canceled_at, f.has_pending) == ("canceled", end, False)
    assert (f.billing.index, f.billing.final, f.billing.request_id) == (1, True, "s:2026-02-28T09:00:00Z:final")
    # Unpaid, it is re-sent after the deadline (same request id); paid, it is done and nothing revives.
    assert due_at(f) == end + dt.timedelta(seconds=600)
    again = decide_renewal(f, end + dt.timedelta(seconds=600), republish_s=600)
    assert (again.kind, again.final) == ("republish", True)
    assert again.change.state.billing is not None
    assert again.change.state.billing.request_id == f.billing.request_id
    assert apply_payment(f, ko(1, end), POLICY).state == f  # a failed final charge duns nothing
    done = apply_payment(f, ok(1, end), POLICY)
    assert done.transition is None
    assert (done.state.status, done.state.paid_index, due_at(done.state)) == ("canceled", 1, None)
    assert done.state.last_cause == f.last_cause
    assert decide_renewal(done.state, end + dt.timedelta(days=400), republish_s=600).kind == "none"


def test_cancel_at_period_end_without_pending_lines_just_cancels() -> None:
    s = apply_payment(billed(fresh(), T0), ok(0, T0), POLICY).state
    p = decide_renewal(cancel_at_period_end(s).state, s.schedule.boundary(1), republish_s=600)
    assert (p.kind, p.final) == ("cancel", False)


def test_canceled_now_with_pending_lines_is_due_at_once_for_its_final_invoice() -> None:
    s = apply_payment(billed(fresh(), T0), ko(0, T0), POLICY).state  # past due
    at = T0 + dt.timedelta(days=2)
    c = replace(cancel_now(s, at, "req").state, has_pending=True)
    assert due_at(c) == at
    p = decide_renewal(c, at, republish_s=600)
    assert (p.kind, p.final, p.change.transition) == ("bill", True, None)
    assert p.change.state.billing is not None
    assert p.change.state.billing.request_id == "s:2026-02-02T09:00:00Z:final"
    assert due_at(replace(cancel_now(s, at, "req").state)) is None  # nothing pending: nothing due


@dataclass
class Ledger:
    """The subscription document as the planner, outcomes and API see it, reduced to what matters here."""

    state: SubState
    stored_due: dt.datetime | None
    pending: list[tuple[int, int]] = field(default_factory=list)  # (line id, amount)
    invoices: dict[str, list[int]] = field(default_factory=dict)  # request id -> line ids
    next_id: int = 0

    def sync(self, write_due: bool = True) -> None:
        self.state = replace(self.state, has_pending=bool(self.pending))
        if write_due:
            self.stored_due = due_at(self.state)

    def change(self, now: dt.datetime, old: int, new: int) -> None:
        if self.state.status == "canceled":
            return  # the API refuses it
        period = proration_period(self.state, now)
        if period is not None:
            p = plan_change(Money(old, "EUR"), Money(new, "EUR"), period, now, rounding=Rounding.HALF_UP)
            for m in (p.credit, p.charge):
                self.pending.append((self.next_id, m.amount))
                self.next_id += 1
        self.sync(write_due=False)  # change-plan writes the plan and the lines, not due_at

    def tick(self, now: dt.datetime) -> None:
        if self.stored_due is None or self.stored_due > now:
            return  # not in the planner's query
        p = decide_renewal(self.state, now, republish_s=600)
        if p.kind == "bill":
            b = p.change.state.billing
            assert b is not None
            assert b.request_id not in self.invoices  # a new request: never the same lines billed twice
            self.invoices[b.request_id] = [i for i, _ in self.pending]
            self.pending = []
        elif p.kind == "republish":
            b = p.change.state.billing
            assert b is not None
            assert b.request_id in self.invoices  # the same request, deduplicated downstream
        self.state = p.change.state
        self.sync()

    def pay(self, now: dt.datetime, ok_: bool) -> None:
        b = self.state.billing
        if b is None or not self.state.in_flight:
            return
        d = self.state.dunning
        attempt = d.failed_attempt + 1 if d is not None and d.period_index == b.index else 1
        o = ok(b.index, now) if ok_ else ko(b.index, now, attempt)
        self.state = apply_payment(self.state, o, POLICY).state
        self.sync()


OPS = st.lists(
    st.tuples(
        st.sampled_from(["change", "tick", "tick", "pay", "fail", "cancel_end", "cancel_now"]),
        st.integers(0, 24 * 20),  # hours to move the clock forward first
        st.integers(1, 100_000),  # the new plan price
    ),
    max_size=40,
)


@settings(max_examples=300, deadline=None)
@given(OPS, st.booleans())
def test_pending_lines_are_billed_exactly_once_and_never_lost(ops: list[tuple[str, int, int]], trial: bool) -> None:
    s = fresh(trial_days=14 if trial else 0)
    ledger = Ledger(s, due_at(s))
    now, price = T0, 1000
    for op, hours, new_price in ops:
        now += dt.timedelta(hours=hours)
        if op == "change":
            ledger.change(now, price, new_price)
            price = new_price
        elif op == "tick":
            ledger.tick(now)
        elif op in ("pay", "fail"):
            ledger.pay(now, op == "pay")
        elif op == "cancel_end":
            ledger.state = cancel_at_period_end(ledger.state).state
            ledger.sync()
        else:
            ledger.state = cancel_now(ledger.state, now, f"cancel:{now.isoformat()}").state
            ledger.sync()
        invoiced = [i for ids in ledger.invoices.values() for i in ids]
        assert len(invoiced) == len(set(invoiced))  # never billed twice
        assert sorted(invoiced + [i for i, _ in ledger.pending]) == list(range(ledger.next_id))  # never lost
    # However it went, ending the subscription and letting the planner run bills whatever is pending.
    ledger.state = cancel_now(ledger.state, now, "end").state
    ledger.sync()
    for _ in range(3):
        now += dt.timedelta(days=1)
        ledger.tick(now)
    assert ledger.pending == []
    assert sorted(i for ids in ledger.invoices.values() for i in ids) == list(range(ledger.next_id))
