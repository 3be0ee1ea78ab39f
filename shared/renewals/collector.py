"""The collector: a finalized auto-collect invoice (or a dunning retry) -> one PSP charge -> a fact.

Exactly one charge per (invoice, attempt), in three layers:

1. ``charge_attempts/{invoice_id}:{attempt}`` is a claim (:mod:`shared.idempotency.claims`) created
   BEFORE the PSP call with the attempt's spec; a concurrent delivery finds it in progress and no result
   stored, and is nacked. The PSP's answer is stored on the subscription (``charges``, then its archive,
   never dropped) by the write that applies the outcome: Firestore bills per document written, so the
   answer costs no write of its own and the attempt document is written once, by its claim. A later
   duplicate, however late (PSPs forget idempotency keys after about a day), finds that answer (the
   claim still leased, or taken over after its lease) and never calls the PSP again: it re-announces the
   stored fact (and the transition it caused). A one-off invoice (no subscription) completes the attempt
   document itself (``result``, ``claim = charged``);
2. an attempt left "charging" by a crashed process with no answer stored is taken over only after its
   lease, with an update-time precondition, so two takers cannot both proceed; an answer that reached
   the subscription meanwhile (the PSP's webhook) is adopted (and then stored on the attempt) instead of
   calling the PSP;
3. the PSP call carries the idempotency key ``renewal-{invoice_id}-{attempt}``: even the taken-over
   call gets the PSP's first answer instead of a second charge.

Before the PSP call the risk step decides (:mod:`shared.risk.gate`): ``block`` fails the attempt with the
canonical ``blocked_by_risk`` decline without calling the PSP; ``review`` charges and asks for a review. Its
one read is made by the invoices function (the profile rides on ``invoice.finalized``); without it (an older
message, a stale one, a retry, a model scorer) the read overlaps the claim. Its decision rides on the
answer stored on the subscription, its profile entry on the same commit (3 writes per renewal charge:
claim, subscription, risk profile).

:func:`shared.renewals.repository.attempt_record` reads an attempt whole (``claim``, ``status`` mirroring a
final answer, ``result``, ``risk``); a pending answer leaves it ``claimed``: its final fact comes later
through the webhooks function and lands on the subscription.

A synchronous answer is applied to the subscription at once and published as the canonical payment
fact with ``idempotency_key = fact_key()``: when the webhooks function later reports the same fact it
has the same event id, and consumers deduplicate it. A pending answer publishes ``payment.pending``
and waits for the webhook.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from shared.charging import ChargeRequest, ChargeResult, ChargeUnavailable, charger_for
from shared.domain.money import Money
from shared.events import Received
from shared.events.billing import InvoiceFinalized, PaymentMethodRef
from shared.events.envelope import Event
from shared.idempotency import Claim, Claims, IdempotencyAlreadyInProgressError, Schema
from shared.idempotency import Outcome as ClaimOutcome
from shared.log import bind, get_logger
from shared.renewals import lifecycle
from shared.renewals.config import RenewalSettings
from shared.renewals.deps import DEFAULT, Deps
from shared.renewals.messages import ChargeRetryDue
from shared.renewals.payment_effect import action_item, fact_item, fact_of, outcome_of
from shared.renewals.repository import attempt_id, attempts, result_on_subscription, subs
from shared.risk.gate import (
    blocked_result,
    charge_fields,
    decide_charge,
    keep_charge_decision,
    record_charge,
    review_items,
    start_charge,
)
from shared.risk.step import Assessment

log = get_logger(__name__)

FINAL = ("succeeded", "failed")


def on_invoice_finalized(msg: Received[InvoiceFinalized], deps: Deps = DEFAULT) -> dict[str, Any]:
    inv = msg.event
    with bind(invoice_id=inv.invoice_id, subscription_id=inv.subscription_id):
        if inv.amount_due.amount <= 0:  # whatever the collection method: nobody will ever pay it
            from shared.renewals.outcomes import settle_zero_invoice

            log.info("nothing due on the invoice; the period is settled without a charge")
            return settle_zero_invoice(inv, deps)
        if inv.collection != "charge_automatically" or inv.payment_method is None:
            log.info("invoice is not collected automatically; nothing to charge")
            return {"skipped": "not_auto_collect"}
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
        carried = inv.risk.model_dump() if inv.risk is not None else None  # the risk profile, read upstream
        return charge(spec, attempt=1, deps=deps, carried_risk=carried)


def on_retry_due(msg: Received[ChargeRetryDue], deps: Deps = DEFAULT) -> dict[str, Any]:
    ev = msg.event
    with bind(invoice_id=ev.invoice_id, subscription_id=ev.subscription_id):
        first = attempts().document(attempt_id(ev.invoice_id, 1)).get()
        if not first.exists:
            raise LookupError(f"no first attempt recorded for invoice {ev.invoice_id}")
        spec = {k: v for k, v in (first.to_dict() or {}).items() if k in _SPEC_FIELDS}
        return charge(spec, attempt=ev.attempt, deps=deps)


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


ATTEMPT = Schema(state_attr="claim", in_progress="charging", completed="charged")


def charge(
    spec: dict[str, Any],
    *,
    attempt: int,
    settings: RenewalSettings | None = None,
    deps: Deps = DEFAULT,
    carried_risk: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Charge attempt ``attempt`` of the invoice described by ``spec``; see the module doc."""
    cfg = settings or deps.settings()
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
    claims = Claims(ATTEMPT, lease_s=cfg.charge_lease_s)
    now = deps.clock()
    record = {
        **spec,
        "attempt": attempt,
        "status": "claimed",
        "psp": method.psp,
        "idempotency_key": req.idempotency_key,
        "created_at": now,
    }
    pending_risk = start_charge(req, now, carried_risk)  # carried: no read; else the read overlaps the claim
    claimed = claims.claim(attempts().document(req.attempt_id), now, fields=record)
    if claimed.outcome is not ClaimOutcome.OWNED or claimed.taken_over:
        # A subscription's attempt keeps "charging" on its document: its answer is on the subscription.
        stored = claimed.record or {}
        done, sub_doc = _recorded_result(stored, req.attempt_id)
        if done is None and claimed.outcome is ClaimOutcome.BUSY:
            raise IdempotencyAlreadyInProgressError(f"charge {req.attempt_id} in progress")
        if done is not None:
            if claimed.outcome is ClaimOutcome.OWNED:  # taken over: adopt the result found on the subscription
                kept = {"risk": done["risk"]} if done.get("risk") else {}
                result_only = {k: v for k, v in done.items() if k != "risk"}
                claims.complete(claimed, result=result_only, fields=_final_status(done) | kept)
            log.info("attempt already charged; re-announcing its result", extra={"attempt": attempt})
            if done["status"] in FINAL:
                deps.publisher.publish_all(_reannouncement({**stored, **done}, sub_doc, now))
            return {"attempt_id": req.attempt_id, "status": done["status"], "duplicate": True}
    with bind(psp=method.psp, account=method.account):
        risk: Assessment | None = None
        try:
            # -- risk step: before the PSP call (recorded with the attempt's completion; a replay reuses it)
            risk = decide_charge(pending_risk, taken_over=claimed.taken_over)
            if risk is not None and risk.blocked:
                result = blocked_result(req, risk, now)  # no PSP call
            else:
                result = charger_for(method.psp, method.account).charge(req)
            items = _complete(req, spec, record, result, claims=claims, claimed=claimed, risk=risk, deps=deps)
            refs = fact_of({**record, **_result_fields(result)}).refs
            items += review_items(risk, refs=refs, psp_payment_id=result.psp_payment_id, now=now)
            # -- end of the risk step
        except Exception as exc:
            # Release the attempt so the redelivery calls the PSP again with the same key (a replay), once
            # the risk decision is kept for it (else the lease runs out and the takeover is cautious).
            if keep_charge_decision(risk):
                claims.release(claimed)
            level = log.warning if isinstance(exc, ChargeUnavailable) else log.error
            level("charge not completed; will be retried", extra={"attempt": attempt, "error": str(exc)})
            raise
        start = spec.get("period_start")
        # The charge outcome line (log contract of the monitoring module): failure rate per psp and
        # decline code, and how late the first attempt charged the period (the "billed on time" SLO).
        log.info(
            "charged",
            extra={
                "event": "renewal.charge",
                "attempt": attempt,
                "status": result.status,
                "psp_payment_id": result.psp_payment_id,
                "decline_code": result.decline_code,
                "retryable": result.retryable,
                "lateness_s": round((now - start).total_seconds()) if isinstance(start, dt.datetime) else None,
            },
        )
        deps.publisher.publish_all(items)
    return {"attempt_id": req.attempt_id, "status": result.status, "psp_payment_id": result.psp_payment_id}


def _result_fields(result: ChargeResult) -> dict[str, Any]:
    return {"status": result.status, "psp_payment_id": result.psp_payment_id, "psp_created_at": result.created_at}


def _final_status(result: dict[str, Any]) -> dict[str, Any]:
    return {"status": result["status"]} if result["status"] in FINAL else {}


def _complete(
    req: ChargeRequest,
    spec: dict[str, Any],
    record: dict[str, Any],
    result: ChargeResult,
    *,
    claims: Claims,
    claimed: Claim,
    risk: Assessment | None = None,
    deps: Deps = DEFAULT,
) -> list[tuple[Event, str, dt.datetime]]:
    """Store the PSP's answer on the attempt (and apply it to the subscription in the same transaction);
    return what to publish."""
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
            "category": result.category,
            "retry_at": result.retry_at,
        }
    fact = fact_of({**record, **data})
    items: list[tuple[Event, str, dt.datetime]] = [fact_item(fact)]
    if (ask := action_item(fact)) is not None:  # authentication required: the customer is asked
        items.append(ask)

    def complete_attempt(writer: Any = None, on_subscription: bool = False) -> None:
        if on_subscription:
            # The answer (with the risk decision) is stored on the subscription by the outcome's own write:
            # one document write fewer per charge; the attempt document stays the claim, written once.
            record_charge(risk, result.status, writer)
            return
        # Conditioned on our claim: if our lease ran out and another delivery took the attempt over,
        # this write (and with it the whole commit) fails; the taker records the same replayed answer.
        if claims.complete(claimed, result=data, fields=_final_status(data) | charge_fields(risk), writer=writer):
            record_charge(risk, result.status, writer)  # the risk profile entry: same commit when there is one

    if req.subscription_id:
        # The outcome is applied right here, in one transaction with the attempt's result; the fact's
        # push coming back later finds it applied.
        from shared.renewals.outcomes import apply

        applied = apply(
            req.subscription_id,
            outcome_of(fact, req.invoice_id, req.attempt),
            spec.get("period_start"),
            charge=(req.attempt_id, data | charge_fields(risk)),
            publish=False,
            also=lambda tx, recorded: complete_attempt(tx, on_subscription=recorded),
            deps=deps,
        )
        if applied.get("event"):
            items.append(lifecycle.announcement(applied["event"], deps.clock()))
    else:
        complete_attempt()  # a one-off invoice: its result lives on the attempt only
    return items


def _reannouncement(
    result: dict[str, Any], sub_doc: dict[str, Any], now: dt.datetime
) -> list[tuple[Event, str, dt.datetime]]:
    """The fact of a completed attempt, and the transition it caused if it was the last one."""
    item = fact_item(fact_of(result))
    items = [item]
    last = sub_doc.get("last_transition")
    if last and sub_doc.get("last_cause") == item[1]:
        items.append(lifecycle.announcement(last, now))
    return items


def _recorded_result(stored: dict[str, Any], key: str) -> tuple[dict[str, Any] | None, dict[str, Any]]:
    """The result of an attempt (on its subscription: ``charges`` or their archive; or on the attempt: a
    one-off invoice's, or one adopted after a takeover), and the subscription document it was read from."""
    done: dict[str, Any] | None = stored.get(ATTEMPT.result_attr)
    sub_id = stored.get("subscription_id")
    if not sub_id:
        return done, {}
    snap = subs().document(sub_id).get()
    doc = snap.to_dict() or {}
    on_sub = result_on_subscription(doc, key)
    if on_sub is not None and (done is None or (done["status"] not in FINAL and on_sub.get("status") in FINAL)):
        done = on_sub
    return done, doc
