"""Lifecycle rules: planner decisions, dunning, and that late or duplicate facts never regress."""

from __future__ import annotations

import datetime as dt
from dataclasses import replace

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from shared.domain.calendar import Anchor, Cadence, Schedule, Unit
from shared.domain.subscriptions import (
    DunningPolicy,
    Outcome,
    SubState,
    TransitionError,
    apply_payment,
    cancel_at_period_end,
    cancel_now,
    decide_renewal,
    due_at,
    new_subscription,
    request_id,
    transition,
)
from tests.helpers import T0

UTC = dt.UTC
POLICY = DunningPolicy((1, 3, 5, 7), "unpaid")
SCHED = Schedule(Anchor.at(T0, "Europe/Berlin"), Cadence(Unit.MONTH))


def fresh(trial_days: int = 0) -> SubState:
    trial_end = T0 + dt.timedelta(days=trial_days) if trial_days else None
    sched = Schedule(Anchor.at(trial_end or T0, "Europe/Berlin"), Cadence(Unit.MONTH))
    return new_subscription(id="sub_1", customer_id="cus_1", schedule=sched, now=T0, trial_end=trial_end).state


def bill(s: SubState, now: dt.datetime) -> SubState:
    p = decide_renewal(s, now, republish_s=600)
    assert p.kind == "bill", p
    return p.change.state


def ok(s: SubState, k: int, at: dt.datetime, attempt: int = 1) -> Outcome:
    return Outcome("succeeded", f"inv_{k}", attempt, k, at, f"ok:{k}:{attempt}")


def ko(s: SubState, k: int, at: dt.datetime, attempt: int = 1, retryable: bool = True) -> Outcome:
    return Outcome("failed", f"inv_{k}", attempt, k, at, f"ko:{k}:{attempt}", retryable)


def test_bills_each_period_once_and_advances_on_success() -> None:
    s = fresh()
    assert s.status == "active"
    assert due_at(s) == T0
    s = bill(s, T0)
    assert s.billing is not None
    assert s.billing.request_id == "sub_1:2026-01-31T09:00:00Z"
    assert decide_renewal(s, T0, republish_s=600).kind == "none"  # an overlapping tick
    ch = apply_payment(s, ok(s, 0, T0), POLICY)
    s = ch.state
    assert ch.transition is not None
    assert ch.transition.reason == "renewed"
    assert s.paid_index == 0
    assert due_at(s) == dt.datetime(2026, 2, 28, 9, 0, tzinfo=UTC)  # clamped, Berlin 10:00
    assert decide_renewal(s, dt.datetime(2026, 2, 28, 8, 59, tzinfo=UTC), republish_s=600).kind == "none"
    s = bill(s, dt.datetime(2026, 2, 28, 9, 0, tzinfo=UTC))
    s = apply_payment(s, ok(s, 1, T0), POLICY).state
    assert due_at(s) == dt.datetime(2026, 3, 31, 8, 0, tzinfo=UTC)  # back on the 31st, summer time
    # The same success again changes nothing.
    assert apply_payment(s, ok(s, 1, T0), POLICY).state == s


def test_lost_renewal_due_is_republished_after_the_lease() -> None:
    s = bill(fresh(), T0)
    assert due_at(s) == T0 + dt.timedelta(seconds=600)
    p = decide_renewal(s, T0 + dt.timedelta(seconds=600), republish_s=600)
    assert p.kind == "republish"
    assert p.period is not None
    assert p.change.state.billing is not None
    assert p.change.state.billing.request_id == s.billing.request_id  # type: ignore[union-attr]
    assert due_at(p.change.state) > T0 + dt.timedelta(seconds=600)  # type: ignore[operator]


def test_dunning_schedule_then_unpaid() -> None:
    s = bill(fresh(), T0)
    ch = apply_payment(s, ko(s, 0, T0), POLICY)
    assert ch.transition is not None
    assert (ch.transition.from_status, ch.transition.to_status) == ("active", "past_due")
    s = ch.state
    assert due_at(s) == T0 + dt.timedelta(days=1)
    assert decide_renewal(s, T0 + dt.timedelta(hours=23), republish_s=600).kind == "none"
    for attempt, day in ((2, 1), (3, 3), (4, 5), (5, 7)):
        now = T0 + dt.timedelta(days=day)
        p = decide_renewal(s, now, republish_s=600)
        assert p.kind == "retry"
        assert p.attempt == attempt
        assert p.invoice_id == "inv_0"
        s = p.change.state
        ch = apply_payment(s, ko(s, 0, now, attempt), POLICY)
        s = ch.state
    assert s.status == "unpaid"
    assert ch.transition is not None
    assert ch.transition.reason == "dunning_exhausted"
    assert due_at(s) is None


def test_hard_decline_skips_retries_and_final_status_is_configurable() -> None:
    s = bill(fresh(), T0)
    ch = apply_payment(s, ko(s, 0, T0, retryable=False), DunningPolicy((1, 3), "canceled"))
    assert ch.state.status == "canceled"
    assert ch.transition is not None
    assert ch.transition.reason == "hard_decline"


def test_late_failure_after_success_never_regresses() -> None:
    s = bill(fresh(), T0)
    s = apply_payment(s, ok(s, 0, T0), POLICY).state
    v = s.version
    late = apply_payment(s, ko(s, 0, T0 - dt.timedelta(minutes=1)), POLICY)
    assert late.transition is None
    assert late.state.status == "active"
    assert late.state.version == v


def test_reordered_retry_failures_apply_once() -> None:
    s = apply_payment(bill(fresh(), T0), ko(fresh(), 0, T0), POLICY).state
    s = decide_renewal(s, T0 + dt.timedelta(days=1), republish_s=600).change.state
    s2 = apply_payment(s, ko(s, 0, T0 + dt.timedelta(days=1), attempt=2), POLICY).state
    assert s2.dunning is not None
    assert s2.dunning.failed_attempt == 2
    assert apply_payment(s2, ko(s2, 0, T0, attempt=1), POLICY).state == s2  # the older failure, late


def test_success_during_dunning_recovers() -> None:
    s = apply_payment(bill(fresh(), T0), ko(fresh(), 0, T0), POLICY).state
    ch = apply_payment(s, ok(s, 0, T0 + dt.timedelta(days=1), attempt=2), POLICY)
    assert ch.state.status == "active"
    assert ch.state.dunning is None
    assert ch.transition is not None
    assert ch.transition.reason == "recovered"


def test_trial_ends_into_first_invoice() -> None:
    s = fresh(trial_days=14)
    assert s.status == "trialing"
    trial_end = T0 + dt.timedelta(days=14)
    assert due_at(s) == trial_end
    assert decide_renewal(s, trial_end - dt.timedelta(seconds=1), republish_s=60).kind == "none"
    p = decide_renewal(s, trial_end, republish_s=60)
    assert p.kind == "bill"
    assert p.period is not None
    assert p.period.start == trial_end
    ch = apply_payment(p.change.state, ok(s, 0, trial_end), POLICY)
    assert ch.transition is not None
    assert (ch.transition.from_status, ch.transition.reason) == ("trialing", "trial_converted")


def test_cancel_at_period_end_stops_renewal() -> None:
    s = apply_payment(bill(fresh(), T0), ok(fresh(), 0, T0), POLICY).state
    s = cancel_at_period_end(s).state
    end = SCHED.boundary(1)
    assert due_at(s) == end
    p = decide_renewal(s, end, republish_s=600)
    assert p.kind == "cancel"
    assert p.change.state.status == "canceled"
    assert p.change.state.billing == s.billing  # nothing billed
    assert due_at(p.change.state) is None
    # A late success for anything cannot resurrect it.
    assert apply_payment(p.change.state, ok(s, 1, end), POLICY).state.status == "canceled"


def test_cancel_now_and_illegal_transitions() -> None:
    s = fresh()
    c = cancel_now(s, T0, "req-1")
    assert c.state.status == "canceled"
    assert cancel_now(c.state, T0, "req-2").transition is None
    with pytest.raises(TransitionError):
        transition(c.state, "active", "x", "y")


def test_request_id_is_utc_iso() -> None:
    t = dt.datetime(2026, 3, 1, 1, 0, tzinfo=dt.timezone(dt.timedelta(hours=1)))
    assert request_id("s", t) == "s:2026-03-01T00:00:00Z"


def test_policy_parse() -> None:
    assert DunningPolicy.parse("1, 3,5,7", "canceled") == DunningPolicy((1, 3, 5, 7), "canceled")
    with pytest.raises(ValueError):  # noqa: PT011
        DunningPolicy.parse("3,1", "unpaid")


events = st.lists(
    st.tuples(st.sampled_from(["ok", "ko", "hard"]), st.integers(0, 2), st.integers(1, 5)), min_size=1, max_size=12
)


@settings(max_examples=150, deadline=None)
@given(events)
def test_versions_increase_and_paid_period_never_goes_back(evs) -> None:
    s = bill(fresh(), T0)
    s = replace(s, billing=replace(s.billing, index=2))  # type: ignore[type-var]
    seen = [s]
    for kind, k, attempt in evs:
        o = ok(s, k, T0, attempt) if kind == "ok" else ko(s, k, T0, attempt, retryable=kind == "ko")
        ch = apply_payment(s, o, POLICY)
        if ch.transition is not None:
            assert ch.state.version == s.version + 1
        else:
            assert ch.state.version == s.version
        if s.paid_index is not None:
            assert ch.state.paid_index is not None
            assert ch.state.paid_index >= s.paid_index
        if s.status == "canceled":
            assert ch.state == s
        s = ch.state
        seen.append(s)
        # The same fact delivered again is a no-op.
        assert apply_payment(s, o, POLICY).state == s
