"""send_invoice with due dates, pure: overdue -> past_due -> the policy's final status; renewals go on."""

from __future__ import annotations

import datetime as dt
from dataclasses import replace

from hypothesis import given
from hypothesis import strategies as st

from shared.domain.calendar import Anchor, Cadence, Schedule, Unit
from shared.domain.subscriptions import (
    Outcome,
    SubState,
    apply_payment,
    decide_renewal,
    due_at,
    new_subscription,
)
from tests.helpers import T0
from tests.unit.renewals.test_subscriptions_domain import POLICY

SCHED = Schedule(Anchor.at(T0, "Etc/UTC"), Cadence(Unit.MONTH))
GRACE = dt.timedelta(days=7)


def fresh(days: int) -> SubState:
    s = new_subscription(id="s", customer_id="c", schedule=SCHED, now=T0).state
    return replace(s, collection="send_invoice", days_until_due=days)


def tick(s: SubState, now: dt.datetime) -> tuple[str, SubState]:
    d = decide_renewal(s, now, republish_s=60, overdue_grace=GRACE)
    return d.kind, d.change.state


def paid(k: int, at: dt.datetime) -> Outcome:
    return Outcome("succeeded", f"inv{k}", 0, k, at, f"inv{k}:paid")


def test_overdue_then_final_status_while_periods_keep_being_billed() -> None:
    kind, s = tick(fresh(10), T0)
    assert (kind, s.open_due) == ("bill", ((0, T0 + dt.timedelta(days=10)),))
    assert s.billing is not None
    assert due_at(s) == s.billing.republish_at  # the earliest of republish, due date and next boundary
    kind, s2 = tick(replace(s, billing=replace(s.billing, republish_at=T0 + dt.timedelta(days=40))), T0)
    assert kind == "none"
    kind, s3 = tick(s2, T0 + dt.timedelta(days=10))
    assert (kind, s3.status, s3.overdue_until) == ("overdue", "past_due", T0 + dt.timedelta(days=17))
    kind, _ = tick(s3, T0 + dt.timedelta(days=16))
    assert kind == "none"
    kind, s5 = tick(s3, T0 + dt.timedelta(days=17))
    assert (kind, s5.status) == ("overdue", "unpaid")


def test_an_open_invoice_does_not_hold_the_next_period_back() -> None:
    _, s = tick(fresh(60), T0)
    nxt = SCHED.period(1).start
    kind, s2 = tick(s, nxt)
    assert kind == "bill"
    assert [k for k, _ in s2.open_due] == [0, 1]
    assert s2.billing is not None
    assert s2.billing.index == 1


def test_paying_the_overdue_invoice_recovers_unless_another_is_overdue() -> None:
    _, s = tick(fresh(3), T0)
    s = replace(s, open_due=((0, T0 + dt.timedelta(days=3)), (1, T0 + dt.timedelta(days=33))), status="past_due")
    ch = apply_payment(s, paid(0, T0 + dt.timedelta(days=20)), POLICY)
    assert ch.state.status == "active"
    assert ch.transition is not None
    assert ch.transition.reason == "recovered"
    ch2 = apply_payment(s, paid(1, T0 + dt.timedelta(days=40)), POLICY)
    assert ch2.state.status == "past_due"  # invoice 0 is still overdue
    assert [k for k, _ in ch2.state.open_due] == [0]
    again = apply_payment(ch.state, paid(0, T0 + dt.timedelta(days=21)), POLICY)
    assert again.transition is None  # a duplicate payment changes nothing


@given(st.integers(min_value=0, max_value=365), st.integers(min_value=0, max_value=400))
def test_never_past_due_before_the_due_date(days: int, after: int) -> None:
    _, s = tick(fresh(days), T0)
    assert s.billing is not None
    s = replace(s, billing=replace(s.billing, republish_at=T0 + dt.timedelta(days=999)))
    at = min(T0 + dt.timedelta(days=after), SCHED.period(1).start - dt.timedelta(seconds=1))
    _, s2 = tick(s, at)
    assert (s2.status == "past_due") == (at >= T0 + dt.timedelta(days=days))


def test_overdue_at_a_boundary_is_past_due_and_billed_in_one_decision() -> None:
    _, s = tick(fresh(5), T0)
    assert s.billing is not None
    s = replace(s, billing=replace(s.billing, republish_at=T0 + dt.timedelta(days=90)))
    d = decide_renewal(s, SCHED.period(1).start, republish_s=60, overdue_grace=dt.timedelta(days=30))
    assert d.kind == "bill"
    assert d.change.transition is not None
    assert (d.change.transition.to_status, d.change.transition.reason) == ("past_due", "invoice_overdue")
    assert [k for k, _ in d.change.state.open_due] == [0, 1]
