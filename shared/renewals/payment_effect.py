"""What a payment does to a subscription: the one home of what the collector and the outcome handler share.

Two paths see the same payment: the collector (the PSP's synchronous answer to our charge) and the outcome
handler (the fact the webhooks function normalised, or the collector's own fact coming back). Their results
must be identical, since the same fact key is what makes the second a duplicate, so they are built here once:

* :func:`fact_of` / :func:`fact_item`: the canonical payment fact of an attempt and its outbox item;
* :func:`kind_of` / :func:`outcome_of`: what a fact is for the subscription, the domain :class:`Outcome`
  (None while pending; the period is resolved later, against the stored schedule);
* :func:`settled_without_charge`: an invoice paid without a charge of ours (the customer paid a
  ``send_invoice`` invoice, an operator marked it paid, nothing was due);
* :func:`charge_data`: what the subscription keeps about one attempt's result (``charges``);
* :func:`action_item`: ``payment.action_required`` for a decline only the customer can unblock.

The transition a payment causes is announced through :func:`shared.renewals.lifecycle.announcement`.

The rules that move the subscription are pure (:func:`shared.domain.subscriptions.apply_payment`);
:func:`shared.renewals.outcomes.apply` runs them in one Firestore transaction.
"""

from __future__ import annotations

import datetime as dt
from typing import Any, Literal

from shared.domain.declines import Category
from shared.domain.money import Money
from shared.domain.subscriptions import Outcome
from shared.events.envelope import Event
from shared.events.payments import (
    OurRefs,
    PaymentActionRequired,
    PaymentAuthorized,
    PaymentEvent,
    PaymentFailed,
    PaymentPending,
    PaymentSucceeded,
)
from shared.renewals.repository import attempt_id


def fact_of(stored: dict[str, Any]) -> PaymentEvent:
    """The canonical payment fact of a completed attempt document."""
    refs = OurRefs(
        customer_id=stored.get("customer_id"),
        subscription_id=stored.get("subscription_id"),
        invoice_id=stored["invoice_id"],
        attempt_id=attempt_id(stored["invoice_id"], int(stored["attempt"])),
    )
    common: dict[str, Any] = {
        "psp": stored["psp"],
        "account": stored.get("account") or "default",
        "psp_payment_id": stored["psp_payment_id"],
        "livemode": bool(stored.get("livemode")),
        "amount": Money(int(stored["amount"]["amount"]), stored["amount"]["currency"]),
        "refs": refs,
        "psp_created_at": stored["psp_created_at"],
    }
    status = stored["status"]
    if status == "succeeded":
        return PaymentSucceeded(**common)
    if status == "failed":
        return PaymentFailed(
            **common,
            decline_code=stored.get("decline_code"),
            failure_message=stored.get("failure_message"),
            retryable=bool(stored.get("retryable", True)),
            category=stored.get("category"),
            retry_at=stored.get("retry_at"),
        )
    return PaymentPending(**common)


def fact_item(fact: PaymentEvent) -> tuple[Event, str, dt.datetime]:
    """Idempotency key ``fact_key()``: the webhook's report of the same fact has the same event id."""
    return fact, fact.fact_key(), fact.psp_created_at


Kind = Literal["succeeded", "failed", "pending"]


def kind_of(ev: PaymentEvent) -> Kind | None:
    """The result a fact reports about a charge; None for facts that are not one (refunds, disputes ...)."""
    if isinstance(ev, PaymentSucceeded | PaymentAuthorized):
        return "succeeded"
    if isinstance(ev, PaymentFailed):
        return "failed"
    if isinstance(ev, PaymentPending):
        return "pending"
    return None


def outcome_of(ev: PaymentEvent, invoice_id: str, attempt: int) -> Outcome | None:
    """The final result of charge attempt ``attempt`` of ``invoice_id``; None while pending (nothing changes)."""
    kind = kind_of(ev)
    if kind is None or kind == "pending":
        return None
    return Outcome(
        kind=kind,
        invoice_id=invoice_id,
        attempt=attempt,
        period_index=0,  # resolved against the subscription's schedule inside the transaction
        at=ev.psp_created_at,
        cause=ev.fact_key(),
        retryable=ev.retryable if isinstance(ev, PaymentFailed) else True,
        retry_at=ev.retry_at if isinstance(ev, PaymentFailed) else None,
        action_required=isinstance(ev, PaymentFailed) and ev.category == Category.AUTHENTICATION_REQUIRED,
        category=ev.category if isinstance(ev, PaymentFailed) else None,
    )


def settled_without_charge(invoice_id: str, at: dt.datetime, cause: str) -> Outcome:
    """An invoice paid without an attempt of ours; its period is the one the invoice was issued for."""
    return Outcome("succeeded", invoice_id, 0, 0, at, cause)


def charge_data(ev: PaymentEvent, status: str) -> dict[str, Any]:
    """What the subscription keeps about one attempt's result."""
    data: dict[str, Any] = {
        "status": status,
        "psp": ev.psp,
        "account": ev.account,
        "psp_payment_id": ev.psp_payment_id,
        "livemode": ev.livemode,
        "psp_created_at": ev.psp_created_at,
    }
    if isinstance(ev, PaymentFailed):
        data |= {"decline_code": ev.decline_code, "failure_message": ev.failure_message, "retryable": ev.retryable}
        data |= {k: v for k, v in (("category", ev.category), ("retry_at", ev.retry_at)) if v is not None}
    return data


def action_item(fact: PaymentEvent) -> tuple[Event, str, dt.datetime] | None:
    """``payment.action_required`` when the fact is a decline only the customer can unblock, else None."""
    if not isinstance(fact, PaymentFailed) or fact.category != Category.AUTHENTICATION_REQUIRED:
        return None
    keep = ("psp", "account", "psp_payment_id", "livemode", "amount", "refs", "psp_created_at")
    ev = PaymentActionRequired(**{k: getattr(fact, k) for k in keep}, decline_code=fact.decline_code)
    return ev, ev.fact_key(), ev.psp_created_at
