"""Dunning driven by the decline taxonomy: hard stops, soft waits for the advice within the window,
authentication is asked for and never retried blindly, and every merchant account has its own schedule."""

from __future__ import annotations

import datetime as dt

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from shared.domain.declines import Category, Decline
from shared.domain.subscriptions import (
    DunningPolicy,
    Outcome,
    SubState,
    apply_payment,
    decide_renewal,
    due_at,
)
from shared.renewals.config import renewal_settings
from tests.helpers import T0
from tests.unit.renewals.test_subscriptions_domain import bill, fresh

policies = st.lists(st.integers(1, 30), min_size=1, max_size=6, unique=True).map(
    lambda days: DunningPolicy(tuple(sorted(days)), "unpaid")
) | st.lists(st.integers(1, 30), min_size=1, max_size=6, unique=True).map(
    lambda days: DunningPolicy(tuple(sorted(days)), "canceled")
)
categories = st.sampled_from(list(Category))
offsets = st.integers(0, 40 * 24 * 3600).map(lambda s: dt.timedelta(seconds=s))


def failed(s: SubState, attempt: int, at: dt.datetime, category: Category) -> Outcome:
    d = Decline(category, "stripe", "x")
    return Outcome(
        "failed",
        "inv_0",
        attempt,
        0,
        at,
        f"ko:{attempt}",
        retryable=d.retryable,
        retry_at=d.retry_at(at),
        action_required=d.action_required,
        category=category.value,
    )


def run_dunning(policy: DunningPolicy, decline_at: list[Category]) -> list[tuple[str, dt.datetime | None]]:
    """Charge, fail with each category in turn at the scheduled time, let the planner act; return
    (decision kind, when) for every planner decision that did something."""
    s = bill(fresh(), T0)
    now = T0
    seen: list[tuple[str, dt.datetime | None]] = []
    for attempt, category in enumerate(decline_at, start=1):
        s = apply_payment(s, failed(s, attempt, now, category), policy).state
        nxt = due_at(s)
        if s.status != "past_due" or nxt is None:
            seen.append(("stopped", None))
            return seen
        p = decide_renewal(s, nxt, republish_s=600, final_status=policy.final_status)
        seen.append((p.kind, nxt))
        if p.kind != "retry":
            return seen
        s, now = p.change.state, nxt
    return seen


@settings(max_examples=200, deadline=None)
@given(policies, st.lists(categories, min_size=1, max_size=8))
def test_dunning_schedule_properties(policy: DunningPolicy, declines: list[Category]) -> None:
    seen = run_dunning(policy, declines)
    window_end = policy.window_end(T0)
    kinds = [k for k, _ in seen]
    assert kinds.count("retry") <= len(policy.retry_days)  # never more attempts than configured
    times = [t for k, t in seen if k == "retry" and t is not None]
    assert all(T0 < t <= window_end for t in times)  # soft retries stay within the window
    assert times == sorted(set(times))  # each attempt after the one before
    for i, (kind, _) in enumerate(seen):
        advice = Decline(declines[i], "stripe").advice.retry
        if advice == "hard":
            assert kind == "stopped"  # hard: never retried
        if advice == "customer":  # the customer is asked (until the deadline, if any is left): never a retry
            assert kind == "expire" or (kind == "stopped" and seen[i - 1][1] == window_end)


@given(policies, categories, offsets)
def test_a_soft_retry_is_never_before_its_slot_nor_before_the_advice_unless_capped(
    policy: DunningPolicy, category: Category, after: dt.timedelta
) -> None:
    d = Decline(category, "stripe")
    failed_at = T0 + after
    for attempt in range(1, policy.max_attempts):
        at = policy.retry_at(T0, attempt, d.retry_at(failed_at), failed_at)
        if at is None:
            continue
        slot = T0 + dt.timedelta(days=policy.retry_days[attempt - 1])
        advised = d.retry_at(failed_at)
        assert slot <= at <= max(slot, policy.window_end(T0))
        assert at > failed_at
        if advised is not None and advised > slot:
            assert at == min(advised, policy.window_end(T0))


def test_hard_decline_stops_at_once() -> None:
    s = bill(fresh(), T0)
    ch = apply_payment(s, failed(s, 1, T0, Category.LOST_OR_STOLEN), DunningPolicy((1, 3), "canceled"))
    assert ch.state.status == "canceled"
    assert ch.transition is not None
    assert ch.transition.reason == "hard_decline"
    assert due_at(ch.state) is None


def test_insufficient_funds_waits_for_pay_day() -> None:
    # T0 is Saturday 31 January 09:00 UTC: the next pay day a day away is 15 February, so 3 days.
    s = bill(fresh(), T0)
    ch = apply_payment(s, failed(s, 1, T0, Category.INSUFFICIENT_FUNDS), DunningPolicy((1, 3, 5, 7)))
    assert ch.state.dunning is not None
    assert ch.state.dunning.next_retry_at == T0 + dt.timedelta(days=3)
    # A processing error keeps the configured slot (its 2 hours are sooner than the 1-day slot).
    ch = apply_payment(s, failed(s, 1, T0, Category.PROCESSING_ERROR), DunningPolicy((1, 3, 5, 7)))
    assert ch.state.dunning is not None
    assert ch.state.dunning.next_retry_at == T0 + dt.timedelta(days=1)


def test_advice_past_the_window_takes_the_last_chance_then_stops() -> None:
    s = bill(fresh(), T0)
    policy = DunningPolicy((1, 2))
    ch = apply_payment(s, failed(s, 1, T0, Category.INSUFFICIENT_FUNDS), policy)  # advised +3 days, window 2
    assert ch.state.dunning is not None
    assert ch.state.dunning.next_retry_at == T0 + dt.timedelta(days=2)
    end = T0 + dt.timedelta(days=2)
    retry = decide_renewal(ch.state, end, republish_s=600)  # the planner claims attempt 2 at the window's end
    assert retry.kind == "retry"
    ch2 = apply_payment(retry.change.state, failed(ch.state, 2, end, Category.INSUFFICIENT_FUNDS), policy)
    assert (ch2.state.status, ch2.transition and ch2.transition.reason) == ("unpaid", "dunning_exhausted")


def test_authentication_required_asks_the_customer_and_expires_without_a_retry() -> None:
    s = bill(fresh(), T0)
    policy = DunningPolicy((1, 3, 5, 7), "canceled")
    ch = apply_payment(s, failed(s, 1, T0, Category.AUTHENTICATION_REQUIRED), policy)
    assert (ch.state.status, ch.transition and ch.transition.reason) == ("past_due", "action_required")
    d = ch.state.dunning
    assert d is not None
    assert d.action_required
    assert due_at(ch.state) == T0 + dt.timedelta(days=7)  # the deadline, not a retry
    for hours in (1, 24, 24 * 6):
        p = decide_renewal(ch.state, T0 + dt.timedelta(hours=hours), republish_s=600, final_status="canceled")
        assert p.kind == "none"
    p = decide_renewal(ch.state, T0 + dt.timedelta(days=7), republish_s=600, final_status="canceled")
    assert p.kind == "expire"
    assert p.change.transition is not None
    assert (p.change.state.status, p.change.transition.reason) == ("canceled", "action_not_taken")
    assert due_at(p.change.state) is None
    # The customer authenticated and paid in time instead: the subscription recovers.
    paid = Outcome("succeeded", "inv_0", 1, 0, T0 + dt.timedelta(days=2), "ok:1")
    assert apply_payment(ch.state, paid, policy).state.status == "active"


def test_the_advice_is_a_delay_from_our_clock_not_the_psps() -> None:
    """A PSP (or a stub) whose clock is far from ours: the advice still lands inside our window."""
    s = bill(fresh(), T0)
    psp_clock = T0 + dt.timedelta(days=300)
    ch = apply_payment(s, failed(s, 1, psp_clock, Category.INSUFFICIENT_FUNDS), DunningPolicy((1, 3, 5, 7)))
    assert ch.state.dunning is not None
    advice = Decline(Category.INSUFFICIENT_FUNDS, "stripe").retry_at(psp_clock)
    assert advice is not None
    assert ch.state.dunning.next_retry_at == T0 + (advice - psp_clock)


def test_every_account_has_its_own_schedule(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DUNNING_RETRY_DAYS", "1,3,5,7")
    monkeypatch.setenv("DUNNING_RETRY_DAYS__EU_2", "2,4")
    monkeypatch.setenv("DUNNING_FINAL_STATUS__EU_2", "canceled")
    cfg = renewal_settings()
    assert cfg.dunning_for(None) == cfg.dunning_for("default") == DunningPolicy((1, 3, 5, 7), "unpaid")
    assert cfg.dunning_for("eu-2") == DunningPolicy((2, 4), "canceled")
    assert cfg.dunning_for("us") == DunningPolicy((1, 3, 5, 7), "unpaid")  # unset: the default account's
    s = bill(fresh(), T0)
    for account, first_retry in (("default", 1), ("eu-2", 2)):
        ch = apply_payment(s, failed(s, 1, T0, Category.DO_NOT_HONOR), cfg.dunning_for(account))
        assert ch.state.dunning is not None
        assert ch.state.dunning.next_retry_at == T0 + dt.timedelta(days=first_retry)
