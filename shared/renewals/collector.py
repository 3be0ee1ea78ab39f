"""The collector: a finalized auto-collect invoice (or a dunning retry) -> one PSP charge -> a fact.

Exactly one charge per (invoice, attempt), in three layers:

1. ``charge_attempts/{invoice_id}:{attempt}`` is created (atomic ``create()``) BEFORE the PSP call; a
   concurrent delivery finds it in progress and is nacked, a later one finds the result recorded on the
   subscription (``charges``, written with the outcome in one transaction) and re-announces it;
2. an attempt left "charging" by a crashed process is taken over only after its lease, with an
   update-time precondition, so two takers cannot both proceed;
3. the PSP call carries the idempotency key ``renewal-{invoice_id}-{attempt}``: even the taken-over
   call gets the PSP's first answer instead of a second charge.

A synchronous answer is applied to the subscription at once and published as the canonical payment
fact with ``idempotency_key = fact_key()``: when the webhooks function later reports the same fact it
has the same event id, and consumers deduplicate it. A pending answer publishes ``payment.pending``
and waits for the webhook.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from shared import clients
from shared.charging import ChargeRequest, ChargeResult, ChargeUnavailable, charger_for
from shared.domain.money import Money
from shared.domain.subscriptions import Outcome
from shared.events import Received
from shared.events.billing import InvoiceFinalized, PaymentMethodRef, SubscriptionTransitioned
from shared.events.envelope import Event
from shared.events.payments import OurRefs, PaymentEvent, PaymentFailed, PaymentPending, PaymentSucceeded
from shared.idempotency import IdempotencyAlreadyInProgressError
from shared.log import bind, get_logger
from shared.renewals import lifecycle, usage
from shared.renewals.config import RenewalSettings, renewal_settings
from shared.renewals.messages import ChargeRetryDue
from shared.renewals.repository import attempt_id, attempts, publish_all, subs

log = get_logger(__name__)

FINAL = ("succeeded", "failed")


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def on_invoice_finalized(msg: Received[InvoiceFinalized]) -> dict[str, Any]:
    inv = msg.event
    with bind(invoice_id=inv.invoice_id, subscription_id=inv.subscription_id):
        if inv.collection != "charge_automatically" or inv.payment_method is None:
            log.info("invoice is not collected automatically; nothing to charge")
            return {"skipped": "not_auto_collect"}
        if inv.amount_due.amount <= 0:
            from shared.renewals.outcomes import settle_zero_invoice

            log.info("nothing due on the invoice; the period is settled without a charge")
            return settle_zero_invoice(inv)
        spec = {
            "invoice_id": inv.invoice_id,
            "subscription_id": inv.subscription_id,
            "customer_id": inv.customer_id,
            "number": inv.number,
            "amount": inv.amount_due.as_dict(),
            "payment_method": inv.payment_method.model_dump(mode="json"),
            "period_start": inv.period_start,
            "period_end": inv.period_end,
        }
        return charge(spec, attempt=1)


def on_retry_due(msg: Received[ChargeRetryDue]) -> dict[str, Any]:
    ev = msg.event
    with bind(invoice_id=ev.invoice_id, subscription_id=ev.subscription_id):
        first = attempts().document(attempt_id(ev.invoice_id, 1)).get()
        usage.read()
        if not first.exists:
            raise LookupError(f"no first attempt recorded for invoice {ev.invoice_id}")
        spec = {k: v for k, v in (first.to_dict() or {}).items() if k in _SPEC_FIELDS}
        return charge(spec, attempt=ev.attempt)


_SPEC_FIELDS = (
    "invoice_id",
    "subscription_id",
    "customer_id",
    "number",
    "amount",
    "payment_method",
    "period_start",
    "period_end",
)


def charge(spec: dict[str, Any], *, attempt: int, settings: RenewalSettings | None = None) -> dict[str, Any]:
    """Charge attempt ``attempt`` of the invoice described by ``spec``; see the module doc."""
    from google.api_core.exceptions import AlreadyExists, Conflict, FailedPrecondition, NotFound

    cfg = settings or renewal_settings()
    method = PaymentMethodRef.model_validate(spec["payment_method"])
    req = ChargeRequest(
        invoice_id=spec["invoice_id"],
        attempt=attempt,
        amount=Money(int(spec["amount"]["amount"]), spec["amount"]["currency"]),
        method=method,
        customer_id=spec["customer_id"],
        subscription_id=spec.get("subscription_id"),
        description=f"Invoice {spec['number']}" if spec.get("number") else None,
    )
    ref = attempts().document(req.attempt_id)
    now = _now()
    lease = now + dt.timedelta(seconds=cfg.charge_lease_s)
    record = {
        **spec,
        "attempt": attempt,
        "status": "claimed",
        "psp": method.psp,
        "idempotency_key": req.idempotency_key,
        "lease_until": lease,
        "created_at": now,
    }
    try:
        wr = ref.create(record)
        usage.write()
        version = wr.update_time
    except (AlreadyExists, Conflict):
        snap = ref.get()
        usage.read()
        stored = snap.to_dict() or {}
        done, sub_doc = _recorded_result(stored, req.attempt_id)
        if done is not None:
            log.info("attempt already charged; re-announcing its result", extra={"attempt": attempt})
            if done["status"] in FINAL:
                publish_all(_reannouncement({**stored, **done}, sub_doc, now))
            return {"attempt_id": req.attempt_id, "status": done["status"], "duplicate": True}
        if stored.get("lease_until") and stored["lease_until"] > now:
            raise IdempotencyAlreadyInProgressError(f"charge {req.attempt_id} in progress") from None
        try:  # the charging process died: take over, the PSP key keeps it at most once
            precondition = clients.firestore().write_option(last_update_time=snap.update_time)
            wr = ref.update({"lease_until": lease}, option=precondition)
            usage.write()
            version = wr.update_time
        except (FailedPrecondition, NotFound):
            raise IdempotencyAlreadyInProgressError(f"charge {req.attempt_id} taken over concurrently") from None
    with bind(psp=method.psp):
        try:
            result = charger_for(method.psp, method.account).charge(req)
            items = _complete(req, spec, record, result, ref)
        except Exception as exc:
            # Release the attempt so the redelivery calls the PSP again with the same key (a replay).
            try:
                ref.delete(option=clients.firestore().write_option(last_update_time=version))
                usage.write()
            except (FailedPrecondition, NotFound):
                pass
            level = log.warning if isinstance(exc, ChargeUnavailable) else log.error
            level("charge not completed; will be retried", extra={"attempt": attempt, "error": str(exc)})
            raise
        log.info(
            "charged",
            extra={"attempt": attempt, "status": result.status, "psp_payment_id": result.psp_payment_id},
        )
        publish_all(items)
    return {"attempt_id": req.attempt_id, "status": result.status, "psp_payment_id": result.psp_payment_id}


def _complete(
    req: ChargeRequest, spec: dict[str, Any], record: dict[str, Any], result: ChargeResult, ref: Any
) -> list[tuple[Event, str, dt.datetime]]:
    """Record the PSP's answer (applied to the subscription in the same write) and return what to publish."""
    data = {
        "status": result.status,
        "psp": result.psp,
        "account": result.account,
        "psp_payment_id": result.psp_payment_id,
        "livemode": result.livemode,
        "psp_created_at": result.created_at,
    }
    if result.status == "failed":
        data |= {
            "decline_code": result.decline_code,
            "failure_message": result.failure_message,
            "retryable": result.retryable,
        }
    fact = fact_of({**record, **data})
    items: list[tuple[Event, str, dt.datetime]] = [(fact, fact.fact_key(), fact.psp_created_at)]
    if req.subscription_id:
        # The outcome is applied right here (one write with the attempt's result); the fact's
        # push coming back later finds it applied.
        from shared.renewals.outcomes import apply

        outcome = None
        if result.status in FINAL:
            outcome = Outcome(
                kind="succeeded" if result.status == "succeeded" else "failed",
                invoice_id=req.invoice_id,
                attempt=req.attempt,
                period_index=0,
                at=result.created_at,
                cause=fact.fact_key(),
                retryable=result.retryable,
            )
        applied = apply(
            req.subscription_id,
            outcome,
            spec.get("period_start"),
            charge=(req.attempt_id, data),
            publish=False,
        )
        if applied.get("event"):
            t = SubscriptionTransitioned.model_validate(applied["event"])
            items.append(lifecycle.outbox_item(t, _now()))
    else:
        ref.update(data)  # a one-off invoice: its result lives on the attempt
        usage.write()
    return items


def _reannouncement(
    result: dict[str, Any], sub_doc: dict[str, Any], now: dt.datetime
) -> list[tuple[Event, str, dt.datetime]]:
    """The fact of a completed attempt, and the transition it caused if it was the last one."""
    item = _fact_item(result)
    items = [item]
    last = sub_doc.get("last_transition")
    if last and sub_doc.get("last_cause") == item[1]:
        items.append(lifecycle.outbox_item(SubscriptionTransitioned.model_validate(last), now))
    return items


def _recorded_result(stored: dict[str, Any], key: str) -> tuple[dict[str, Any] | None, dict[str, Any]]:
    """The result of an attempt already completed (on its subscription, or on the attempt for one-offs),
    and the subscription document it was read from."""
    if stored.get("status") in (*FINAL, "pending"):
        return stored, {}
    sub_id = stored.get("subscription_id")
    if not sub_id:
        return None, {}
    snap = subs().document(sub_id).get()
    usage.read()
    doc = snap.to_dict() or {}
    done: dict[str, Any] | None = (doc.get("charges") or {}).get(key)
    return done, doc


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
        )
    return PaymentPending(**common)


def _fact_item(stored: dict[str, Any]) -> tuple[Event, str, dt.datetime]:
    fact = fact_of(stored)
    return fact, fact.fact_key(), fact.psp_created_at
