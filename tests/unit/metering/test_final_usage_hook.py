"""The usage hook's rules for an ending metered subscription, pure: the grace defers the final invoice but not the
cancellation, an end without a recorded instant gets one (a stable request id), and the billing reason of every
kind of request, derived for older messages that lack it."""

from __future__ import annotations

import datetime as dt
from dataclasses import replace

import pytest

from shared.domain.calendar import Anchor, Cadence, Schedule, Unit
from shared.domain.subscriptions import (
    DunningPolicy,
    Outcome,
    SubState,
    apply_payment,
    cancel_at_period_end,
    decide_renewal,
    due_at,
    new_subscription,
    transition,
)
from shared.events.billing import InvoiceFinalized, RenewalDue, billing_reason_of
from shared.metering import billing
from shared.metering.store import threshold_credit

T0 = dt.datetime(2026, 1, 31, 9, 0, tzinfo=dt.UTC)
SCHED = Schedule(Anchor.at(T0, "UTC"), Cadence(Unit.MONTH))
P1 = SCHED.boundary(1)
HOUR = dt.timedelta(hours=1)
METERED = {"metered": {"customer": "c"}, "items": [{"price": {}, "quantity": 1}]}


def paid_period0() -> SubState:
    s = new_subscription(id="s", customer_id="c", schedule=SCHED, now=T0).state
    p = decide_renewal(s, T0, republish_s=600)
    assert p.kind == "bill"
    s = p.change.state
    assert s.billing is not None
    ok = Outcome(kind="succeeded", invoice_id="in_0", period_index=0, attempt=1, at=T0, cause="in_0:paid")
    return apply_payment(s, ok, DunningPolicy((1, 3), "canceled")).state


def owing(s: SubState) -> SubState:
    return replace(s, has_pending=billing.owes_usage(METERED))  # what the repository reads for this document


def test_a_metered_subscription_owes_its_usage_until_the_final_close_is_claimed() -> None:
    assert billing.owes_usage(METERED)
    assert not billing.owes_usage({**METERED, "usage_final": {"request_id": "s:x:final"}})
    assert not billing.owes_usage({"items": [{}]})  # not metered
    assert not billing.owes_usage({"metered": {"customer": "c"}, "plan": {}})  # a plan subscription: no usage lines


def test_cancel_at_period_end_happens_at_the_boundary_and_its_final_invoice_after_the_grace() -> None:
    s = owing(cancel_at_period_end(paid_period0()).state)
    p = decide_renewal(s, P1, republish_s=600)
    assert (p.kind, p.final) == ("bill", True)
    d = billing.deferred(METERED, s, p, P1)
    assert d.kind == "cancel"
    assert d.change.transition is not None
    assert (d.change.state.status, d.change.state.canceled_at, d.change.state.billing) == ("canceled", P1, s.billing)
    assert due_at(d.change.state) == P1  # still due: the first tick past the grace bills the final invoice
    later = decide_renewal(d.change.state, P1 + HOUR, republish_s=600)
    assert billing.deferred(METERED, d.change.state, later, P1 + HOUR) is later  # the grace has passed
    assert later.change.state.billing is not None
    assert later.change.state.billing.request_id == f"s:{P1.isoformat().replace('+00:00', 'Z')}:final"
    assert billing.deferred({**METERED, "usage_final": {"amount": 0}}, s, p, P1) is p  # nothing owed: as decided


def test_an_end_without_a_recorded_instant_records_it_so_the_final_request_id_is_stable() -> None:
    s = owing(transition(paid_period0(), "canceled", "payment_failed", "dunning:x").state)  # ended by dunning
    assert s.canceled_at is None
    now = T0 + dt.timedelta(days=20)
    p = decide_renewal(s, now, republish_s=600)
    d = billing.deferred(METERED, s, p, now)
    assert (d.kind, d.change.state.canceled_at, d.change.transition) == ("cancel", now, None)
    again = decide_renewal(d.change.state, now + 2 * HOUR, republish_s=600)
    assert again.final
    assert again.change.state.billing is not None
    assert again.change.state.billing.start == now  # the recorded end: the same request id on every tick


def test_a_renewal_waits_for_the_grace_and_a_subscription_without_usage_never_does() -> None:
    s = owing(paid_period0())
    p = decide_renewal(s, P1, republish_s=600)
    assert billing.deferred(METERED, s, p, P1).kind == "none"
    assert billing.deferred(METERED, s, p, P1 + HOUR) is p
    assert billing.deferred({"items": [{}]}, s, p, P1) is p


@pytest.mark.parametrize(
    ("request_id", "subscription_id", "index", "reason"),
    [
        ("s:2026-01-31T09:00:00Z", "s", 0, "subscription_create"),
        ("s:2026-02-28T09:00:00Z", "s", 1, "subscription_cycle"),
        ("s:2026-02-28T09:00:00Z", "s", None, "subscription_cycle"),  # a plan subscription's request
        ("s:2026-02-28T09:00:00Z:final", "s", 2, "subscription_final"),
        ("threshold:s:20260131T090000000000Z:2", None, None, "subscription_threshold"),
        ("ops:fix-1", None, None, "manual"),
    ],
)
def test_the_billing_reason_derived_from_the_request_id(
    request_id: str, subscription_id: str | None, index: int | None, reason: str
) -> None:
    assert billing_reason_of(request_id, subscription_id, index) == reason


def test_the_billing_reason_is_an_optional_field_older_messages_parse_without() -> None:
    body = {
        "request_id": "threshold:s:p:1",
        "seller_entity": "acme-de",
        "customer": {"id": "c", "name": "C", "country": "DE"},
        "currency": "EUR",
        "lines": [{"description": "x", "quantity": 1, "unit_amount": {"amount": 100, "currency": "EUR"}}],
    }
    old = RenewalDue.model_validate(body)
    assert (old.billing_reason, old.reason) == (None, "subscription_threshold")
    new = RenewalDue.model_validate(body | {"billing_reason": "manual"})
    assert new.reason == "manual"
    assert "billing_reason" in InvoiceFinalized.model_fields
    assert not InvoiceFinalized.model_fields["billing_reason"].is_required()


@pytest.mark.parametrize(("early", "full", "credit"), [(2500, 3500, 2500), (2500, 1000, 1000), (500, 0, 0), (0, 9, 0)])
def test_the_threshold_credit_is_capped_at_the_final_amount(early: int, full: int, credit: int) -> None:
    assert threshold_credit(early, full) == credit
