"""Where the risk step meets the payment flow: before a renewal charge, and on every incoming payment fact.

Charge: the invoices function reads the customer's profile for ``invoice.finalized`` (:func:`snapshot_for`);
the collector starts the step (:func:`start_charge`: from that profile, else the profile read) before claiming
the attempt, asks :func:`decide_charge` after the claim and before the PSP call, stores the decision on the
attempt with :func:`charge_fields` and the profile entry with :func:`record_charge`, both in the commit that
completes it.
``block``: no PSP call; the attempt fails with the canonical ``blocked_by_risk`` decline (hard: no retry),
published like any failure. ``review``: the charge proceeds (a renewal the customer already agreed to is
not held for a human; the review can still refund or cancel) and ``risk.review_requested`` is published.

Fact: the renewals outcome handler asks :func:`assess_fact` for every payment fact it receives (succeeded,
authorized, failed, pending), whoever produced it. Why there and not in a new consumer: that handler
already receives every payment fact on ``payment-events`` in the renewals function (no new subscription,
topic or deployment). The webhook's report of a charge the collector recorded finds the charge's entry in
the customer's profile and answers the charge's decision (same event id); any other fact is decided and
recorded once. It publishes ``risk.review_requested`` for review and block (a block
after the fact cannot stop money that moved; it flags it for a human).
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from shared.charging.base import ChargeRequest, ChargeResult
from shared.domain.declines import blocked_by_risk
from shared.events.envelope import Event
from shared.events.payments import (
    OurRefs,
    PaymentAuthorized,
    PaymentEvent,
    PaymentFailed,
    PaymentPending,
    PaymentSucceeded,
    RiskReviewRequested,
)
from shared.log import get_logger
from shared.risk.base import Subject, method_key
from shared.risk.config import risk_settings
from shared.risk.step import Assessment, Pending, keep_decision, risk_step, write_charge

log = get_logger(__name__)
Item = tuple[Event, str, dt.datetime]


def start_charge(req: ChargeRequest, now: dt.datetime, carried: dict[str, Any] | None = None) -> Pending | None:
    """Start deciding about charge ``req`` (None when the account's risk step is off).

    ``carried``: the profile snapshot the message brought (``InvoiceFinalized.risk``). Fresh (read at most
    ``RISK_CARRIED_MAX_AGE_S`` before ``now``) and with the rules scorer, the decision needs no read: pure CPU.
    Else (an older message without it, a late redelivery, a remote model) the profile read starts now and runs
    while the collector claims the attempt. Why the model keeps the read: its answer may differ between a
    failed try and its replay, so the replay must find the decision the failed try kept in the profile; the
    rules over one fixed snapshot can only get milder as time passes (windows empty), never stricter.
    """
    step = risk_step(req.method.account)
    if step is None:
        return None
    subject = Subject(
        stage="charge",
        key=req.attempt_id,
        psp=req.method.psp,
        account=req.method.account,
        customer_id=req.customer_id,
        method=method_key(req.method.psp, req.method.account, req.method.method_ref),
        amount_minor=req.amount.amount,
        currency=req.amount.currency,
        at=now,
        ref=req.attempt_id,
    )
    if carried is not None:
        return step.carried(subject, carried, risk_settings(req.method.account).carried_max_age_s)
    return step.begin(subject)


def snapshot_for(
    customer_id: str, method: dict[str, Any] | None, amount_due: int, now: dt.datetime
) -> dict[str, Any] | None:
    """The risk profile an auto-collect invoice's ``invoice.finalized`` carries to the collector (one read,
    here instead of on the charge path); None when nothing will be charged or the account's step is off."""
    if not method or amount_due <= 0:
        return None
    step = risk_step(method.get("account") or "default")
    if step is None or not getattr(step.scorer, "inline", False):  # a model decides after its own read
        return None
    key = method_key(method["psp"], method.get("account") or "default", method["method_ref"])
    return step.snapshot(customer_id, key, now)


def decide_charge(pending: Pending | None, *, taken_over: bool = False) -> Assessment | None:
    """The decision about the charge (pure CPU once the profile is in; the budget bounds a remote model)."""
    if pending is None:
        return None
    a = pending.decide(taken_over=taken_over)
    if a.decision.verdict != "allow" or a.failure:
        log.info(
            "risk decision",
            extra={"verdict": a.decision.verdict, "reasons": list(a.decision.reasons), "failure": a.failure},
        )
    return a


def assess_charge(req: ChargeRequest, now: dt.datetime) -> Assessment | None:
    """The decision about charge ``req``, read and scored at once (nothing written: see :func:`record_charge`)."""
    return decide_charge(start_charge(req, now))


def charge_fields(a: Assessment | None) -> dict[str, Any]:
    """The fields the attempt's completing write stores: the decision with the features it used."""
    return {} if a is None or a.record is None else {"risk": a.record}


def record_charge(a: Assessment | None, status: str, writer: Any = None) -> None:
    """Add the charge to the customer's risk profile in ``writer`` (the commit completing the attempt)."""
    if a is not None and (step := risk_step(a.subject.account)) is not None:
        write_charge(step, a, "blocked" if a.blocked else status, writer)


def keep_charge_decision(a: Assessment | None) -> bool:
    """Before an attempt is released after a failure: keep its decision for the replay (False: not kept)."""
    if a is None or (step := risk_step(a.subject.account)) is None:
        return True
    return keep_decision(step, a)


def blocked_result(req: ChargeRequest, a: Assessment, now: dt.datetime) -> ChargeResult:
    """The failed result of a charge the risk step blocked: no PSP call was made (nor any PSP id)."""
    decline = blocked_by_risk(req.method.psp)
    return ChargeResult(
        "failed",
        psp=req.method.psp,
        account=req.method.account,
        psp_payment_id=f"risk:{req.attempt_id}",
        livemode=False,
        created_at=now,
        decline_code=decline.code,
        failure_message="blocked by risk: " + ", ".join(a.decision.reasons),
        retryable=False,
        category=decline.category.value,
    )


_FACTS = {PaymentSucceeded: "succeeded", PaymentAuthorized: "succeeded", PaymentFailed: "failed"}


def assess_fact(ev: PaymentEvent) -> Assessment | None:
    """The decision about an incoming payment fact (None when the account's risk step is off)."""
    step = risk_step(ev.account)
    if step is None:
        return None
    outcome = _FACTS.get(type(ev), "pending" if isinstance(ev, PaymentPending) else None)
    if outcome is None:
        return None
    subject = Subject(
        stage="fact",
        key=ev.fact_key(),
        psp=ev.psp,
        account=ev.account,
        customer_id=ev.refs.customer_id,
        method=None,
        amount_minor=ev.amount.amount if ev.amount else None,
        currency=ev.amount.currency if ev.amount else None,
        at=ev.psp_created_at,
        outcome=outcome,  # type: ignore[arg-type]
        ref=ev.refs.attempt_id or ev.fact_key(),
    )
    return step.assess(subject)


def review_items(a: Assessment | None, *, refs: OurRefs, psp_payment_id: str | None, now: dt.datetime) -> list[Item]:
    """``risk.review_requested`` for a review or block (again on redelivery: the same event id)."""
    if a is None or a.decision.verdict == "allow":
        return []
    s = a.subject
    ev = RiskReviewRequested(
        decision_id=a.decision_id,
        decision=a.decision.verdict,
        stage=s.stage,
        reasons=a.decision.reasons,
        scorer=a.decision.scorer,
        score=a.decision.score,
        psp=s.psp,
        account=s.account,
        psp_payment_id=psp_payment_id,
        refs=refs,
        decided_at=s.at,
    )
    return [(ev, a.decision_id, now)]
