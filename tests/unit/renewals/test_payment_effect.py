"""What a payment does to a subscription, built once: the collector's fact and the webhook's report of the
same payment are the same fact and the same outcome (so the second is a duplicate, never a second change)."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest

from shared.domain.money import Money
from shared.domain.subscriptions import Outcome
from shared.events.payments import OurRefs, PaymentFailed, PaymentPending, PaymentRefunded, PaymentSucceeded
from shared.renewals.payment_effect import (
    charge_data,
    fact_item,
    fact_of,
    kind_of,
    outcome_of,
    settled_without_charge,
)
from tests.helpers import T0

REFS = OurRefs(customer_id="cus-1", subscription_id="sub_1", invoice_id="inv_1", attempt_id="inv_1:2")


def attempt(status: str, **extra: Any) -> dict[str, Any]:
    """A completed attempt document as the collector stores it (spec + the PSP's answer)."""
    return {
        "invoice_id": "inv_1",
        "subscription_id": "sub_1",
        "customer_id": "cus-1",
        "attempt": 2,
        "amount": {"amount": 1500, "currency": "EUR"},
        "status": status,
        "psp": "stripe",
        "account": "default",
        "psp_payment_id": "pi_1",
        "livemode": False,
        "psp_created_at": T0,
        **extra,
    }


def test_the_collectors_success_and_the_webhooks_report_are_one_outcome() -> None:
    ours = fact_of(attempt("succeeded"))
    webhook = PaymentSucceeded(
        psp="stripe", psp_event_id="evt_9", psp_payment_id="pi_1", livemode=False, refs=REFS, psp_created_at=T0
    )
    assert ours.fact_key() == webhook.fact_key()
    assert ours.amount == Money(1500, "EUR")
    expected = Outcome("succeeded", "inv_1", 2, 0, T0, ours.fact_key())
    assert outcome_of(ours, "inv_1", 2) == outcome_of(webhook, "inv_1", 2) == expected
    event, key, occurred = fact_item(ours)
    assert (event, key, occurred) == (ours, ours.fact_key(), T0)


def test_a_hard_decline_stops_dunning_from_either_path() -> None:
    ours = fact_of(attempt("failed", decline_code="stolen_card", failure_message="declined", retryable=False))
    assert isinstance(ours, PaymentFailed)
    o = outcome_of(ours, "inv_1", 2)
    assert o is not None
    assert (o.kind, o.retryable, o.cause) == ("failed", False, ours.fact_key())
    assert charge_data(ours, "failed") == {
        "status": "failed",
        "psp": "stripe",
        "account": "default",
        "psp_payment_id": "pi_1",
        "livemode": False,
        "psp_created_at": T0,
        "decline_code": "stolen_card",
        "failure_message": "declined",
        "retryable": False,
    }


def test_pending_changes_nothing_and_other_facts_are_not_charge_results() -> None:
    pending = fact_of(attempt("pending"))
    assert isinstance(pending, PaymentPending)
    assert (kind_of(pending), outcome_of(pending, "inv_1", 2)) == ("pending", None)
    refund = PaymentRefunded(
        psp="stripe",
        psp_payment_id="pi_1",
        livemode=False,
        refs=REFS,
        psp_created_at=T0,
        refund_id="re_1",
        refunded=Money(1500, "EUR"),
        full=True,
    )
    assert (kind_of(refund), outcome_of(refund, "inv_1", 2)) == (None, None)


@pytest.mark.parametrize("cause", ["inv_1:paid", "inv_1:zero_due", "stripe:default:pi_1:payment.succeeded"])
def test_an_invoice_settled_without_a_charge_is_a_success_of_no_attempt(cause: str) -> None:
    at = T0 + dt.timedelta(days=3)
    assert settled_without_charge("inv_1", at, cause) == Outcome("succeeded", "inv_1", 0, 0, at, cause)
