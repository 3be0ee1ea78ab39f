"""Outcomes: canonical payment facts about our charges drive the subscription.

Facts come from two producers (the collector's synchronous answer and the webhooks function's PSP
notification), in any order, any number of times. The rules live in
:func:`shared.domain.subscriptions.apply_payment` and are monotonic, so this layer only has to:

* find which period the charge was for (the attempt document written by the collector);
* apply the fact to the subscription inside one transaction;
* publish the resulting ``subscription.transitioned`` after the commit; a redelivery that finds the
  fact already applied (its cause is the last one recorded) publishes the stored event again, so a
  crash between commit and publish loses nothing (same idempotency key, same event id downstream).

Pending facts change nothing: the subscription waits for the final fact.
"""

from __future__ import annotations

import datetime as dt
from typing import Any, Literal

from shared import clients
from shared.domain.subscriptions import Outcome, apply_payment
from shared.events import Received
from shared.events.billing import InvoiceFinalized, SubscriptionTransitioned
from shared.events.payments import PaymentAuthorized, PaymentEvent, PaymentFailed, PaymentPending, PaymentSucceeded
from shared.log import bind, get_logger
from shared.renewals import lifecycle, usage
from shared.renewals.config import RenewalSettings, renewal_settings
from shared.renewals.repository import attempt_id, attempts, publish_all, state_fields, state_of, subs

log = get_logger(__name__)


def on_payment_fact(msg: Received[PaymentEvent]) -> dict[str, Any]:
    ev = msg.event
    refs = ev.refs
    if not refs.subscription_id or not refs.invoice_id:
        return {"skipped": "not_a_subscription_charge"}
    with bind(subscription_id=refs.subscription_id, invoice_id=refs.invoice_id, psp=ev.psp):
        kind: Literal["succeeded", "failed"]
        if isinstance(ev, PaymentSucceeded | PaymentAuthorized):
            kind = "succeeded"
        elif isinstance(ev, PaymentFailed):
            kind = "failed"
        elif isinstance(ev, PaymentPending):
            log.info("payment pending; the subscription waits for the final fact")
            return {"skipped": "pending"}
        else:
            return {"skipped": ev.EVENT_TYPE}
        attempt_doc = _attempt_for(refs.invoice_id, refs.attempt_id)
        if attempt_doc is None:
            log.warning("payment fact for an invoice this service never charged; ignored")
            return {"skipped": "unknown_attempt"}
        _record_final(attempt_doc, ev, kind)
        outcome = Outcome(
            kind=kind,
            invoice_id=refs.invoice_id,
            attempt=int(attempt_doc["attempt"]),
            period_index=0,  # resolved against the subscription's schedule inside the transaction
            at=ev.psp_created_at,
            cause=ev.fact_key(),
            retryable=ev.retryable if isinstance(ev, PaymentFailed) else True,
        )
        return apply(refs.subscription_id, outcome, attempt_doc.get("period_start"))


def settle_zero_invoice(inv: InvoiceFinalized) -> dict[str, Any]:
    """An invoice with nothing to pay (credits cover it) settles its period like a payment."""
    if not inv.subscription_id:
        return {"skipped": "no_subscription"}
    o = Outcome("succeeded", inv.invoice_id, 0, 0, inv.finalized_at, f"{inv.invoice_id}:zero_due")
    return apply(inv.subscription_id, o, inv.period_start)


def _attempt_for(invoice_id: str, attempt_ref: str | None) -> dict[str, Any] | None:
    if attempt_ref:
        snap = attempts().document(attempt_ref).get()
        usage.read()
        return (snap.to_dict() or None) if snap.exists else None
    from google.cloud.firestore_v1.base_query import FieldFilter

    # No attempt id in the PSP metadata: the latest attempt of the invoice.
    q = attempts().where(filter=FieldFilter("invoice_id", "==", invoice_id))
    docs = [s.to_dict() or {} for s in q.stream()]
    usage.read(max(1, len(docs)))
    return max(docs, key=lambda d: int(d.get("attempt", 0))) if docs else None


def _record_final(doc: dict[str, Any], ev: PaymentEvent, kind: str) -> None:
    """An asynchronous result (pending -> final) is written onto the attempt for operators."""
    if doc.get("status") in ("succeeded", "failed"):
        return
    update: dict[str, Any] = {"status": kind, "psp_payment_id": ev.psp_payment_id, "psp_created_at": ev.psp_created_at}
    if isinstance(ev, PaymentFailed):
        update |= {"decline_code": ev.decline_code, "failure_message": ev.failure_message, "retryable": ev.retryable}
    attempts().document(attempt_id(doc["invoice_id"], int(doc["attempt"]))).update(update)
    usage.write()


def apply(
    subscription_id: str,
    o: Outcome,
    period_start: dt.datetime | None,
    settings: RenewalSettings | None = None,
) -> dict[str, Any]:
    """Apply ``o`` to the subscription in a transaction; publish the transition after the commit."""
    from dataclasses import replace

    from google.cloud import firestore

    cfg = settings or renewal_settings()
    ref = subs().document(subscription_id)

    @firestore.transactional
    def txn(transaction: Any) -> tuple[str, dict[str, Any] | None]:
        snap = ref.get(transaction=transaction)
        usage.read()
        doc = snap.to_dict()
        if not doc:
            return "unknown_subscription", None
        state = state_of(doc)
        outcome = o
        if period_start is not None:
            outcome = replace(o, period_index=state.period_index_of(period_start))
        elif state.billing is not None:
            outcome = replace(o, period_index=state.billing.index)
        ch = apply_payment(state, outcome, cfg.dunning)
        if ch.state == state:
            if state.last_cause == o.cause and doc.get("last_transition"):
                return "duplicate", doc["last_transition"]  # re-announce: the first publish may be lost
            return "no_change", None
        update = state_fields(ch.state)
        event = None
        if ch.transition is not None:
            event = lifecycle.stored(lifecycle.transition_event(ch.state, ch.transition))
            update["last_transition"] = event
        transaction.update(ref, update)
        usage.write()
        return ("transitioned" if event else "updated"), event

    result, event = txn(clients.firestore().transaction())
    if event is not None:
        t = SubscriptionTransitioned.model_validate(event)
        publish_all([lifecycle.outbox_item(t, dt.datetime.now(dt.UTC))])
        log.info(
            "subscription transitioned",
            extra={"from": t.from_status, "to": t.to_status, "reason": t.reason, "version": t.version},
        )
    elif result == "unknown_subscription":
        log.warning("payment fact for an unknown subscription; ignored")
    return {"result": result, "version": event["version"] if event else None}
