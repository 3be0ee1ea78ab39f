"""Outcomes: canonical payment facts about our charges drive the subscription.

Facts come from two producers (the collector's synchronous answer and the webhooks function's PSP
notification), in any order, any number of times. The rules live in
:func:`shared.domain.subscriptions.apply_payment` and are monotonic, so this layer only has to:

* apply the fact to the subscription inside one transaction, together with the attempt's result in the
  subscription's ``charges`` map (one write for both; the charge attempt document is never rewritten):
  that map is the result's only copy, so the oldest results move, a dozen at a time, to one document of
  ``subscriptions/{id}/charge_results`` in the same commit instead of being dropped;
* find which period the charge was for (the attempt document written by the collector), read only when
  the fact is not already applied;
* publish the resulting ``subscription.transitioned`` after the commit; a redelivery that finds the
  fact already applied (its cause is the last one recorded) publishes the stored event again, so a
  crash between commit and publish loses nothing (same idempotency key, same event id downstream).

Pending facts change nothing: the subscription waits for the final fact.

An invoice can also be paid without a charge of ours: a ``send_invoice`` subscription's invoice paid by
the customer (a payment fact carrying the invoice reference but no attempt), or any invoice marked paid
by an operator (``invoice.paid`` without a PSP payment). Both settle the period the invoice was issued
for, found by matching the invoice id with the one derived from the subscription's claimed request
(``billing.request_id``). A fact and ``invoice.paid`` for the same invoice, duplicated, in any order,
advance it once: the second finds the period already paid.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from collections.abc import Callable
from dataclasses import replace
from typing import Any

from shared import clients
from shared.config import get_settings
from shared.domain.subscriptions import Outcome, SubState, apply_payment, request_id
from shared.events import Received
from shared.events.billing import InvoiceFinalized, InvoicePaid, SubscriptionTransitioned
from shared.events.payments import PaymentEvent
from shared.invoicing.repository import invoice_id_for
from shared.log import bind, get_logger
from shared.renewals import lifecycle
from shared.renewals.config import RenewalSettings
from shared.renewals.deps import DEFAULT, Deps
from shared.renewals.payment_effect import action_item, charge_data, kind_of, outcome_of, settled_without_charge
from shared.renewals.repository import (
    FINAL_RESULTS,
    attempt_id,
    attempts,
    charge_results,
    state_fields,
    state_of,
    subs,
)
from shared.risk.gate import assess_fact, review_items

log = get_logger(__name__)


PeriodSource = dt.datetime | None | Callable[[], dt.datetime | None]
MAX_CHARGES_KEPT = 12  # latest results always on the subscription (12 to 24 kept there; older ones archived)
ARCHIVE_BATCH = 12  # results moved to the subscription's archive together (one document write per batch)


def on_payment_fact(msg: Received[PaymentEvent], deps: Deps = DEFAULT) -> dict[str, Any]:
    ev = msg.event
    refs = ev.refs
    # -- risk step on every incoming payment fact (shared.risk.gate): recorded once, review/block published
    with bind(psp=ev.psp):
        flagged = review_items(assess_fact(ev), refs=refs, psp_payment_id=ev.psp_payment_id, now=deps.clock())
    if flagged:
        deps.publisher.publish_all(flagged)
    # -- end of the risk step
    if not refs.subscription_id or not refs.invoice_id:
        return {"skipped": "not_a_subscription_charge"}
    invoice_id = refs.invoice_id
    with bind(subscription_id=refs.subscription_id, invoice_id=invoice_id, psp=ev.psp):
        kind = kind_of(ev)
        if kind is None:
            return {"skipped": ev.EVENT_TYPE}
        attempt_ref = refs.attempt_id
        if not attempt_ref:  # no attempt id in the PSP metadata: the latest attempt of the invoice
            latest = _latest_attempt(invoice_id)
            if latest is None:
                return _invoice_level_fact(ev, kind, refs.subscription_id, invoice_id, deps)
            attempt_ref = attempt_id(invoice_id, int(latest["attempt"]))
        attempt_no = int(attempt_ref.rsplit(":", 1)[1]) if ":" in attempt_ref else 1

        def period_start() -> dt.datetime | None:
            snap = attempts().document(attempt_ref).get()
            if not snap.exists:
                raise LookupError(attempt_ref)
            ps: dt.datetime | None = (snap.to_dict() or {}).get("period_start")
            return ps

        outcome = outcome_of(ev, invoice_id, attempt_no)
        # Our own synchronous facts were applied, and their transition announced, by the collector
        # (which re-announces both if it is redelivered): no second announcement when they come back.
        ours = msg.envelope.producer == get_settings().function_name
        applied = apply(
            refs.subscription_id,
            outcome,
            period_start,
            charge=(attempt_ref, charge_data(ev, kind)),
            reannounce=not ours,
            deps=deps,
        )
        if not ours and (ask := action_item(ev)) is not None:  # the collector asked for its own declines
            deps.publisher.publish_all([ask])
        return applied


def _invoice_level_fact(
    ev: PaymentEvent, kind: str, subscription_id: str, invoice_id: str, deps: Deps = DEFAULT
) -> dict[str, Any]:
    """A payment of an invoice we never charged (``send_invoice``, paid by the customer).

    Only a success settles it; a failed or pending customer payment starts no dunning (there is no
    attempt of ours to retry), and the invoice stays open.
    """
    if kind != "succeeded":
        log.info("customer payment of an uncharged invoice not final; nothing to apply", extra={"kind": kind})
        return {"skipped": f"invoice_level_{kind}"}
    o = settled_without_charge(invoice_id, ev.psp_created_at, ev.fact_key())
    return apply(subscription_id, o, _only_current_invoice, deps=deps)


def on_invoice_paid(msg: Received[InvoicePaid], deps: Deps = DEFAULT) -> dict[str, Any]:
    """An invoice paid without a charge of ours (send_invoice, operator mark-paid) settles its period.

    An auto-collected invoice paid by our own charge is skipped: the payment fact already drove it, and
    skipping saves a read per renewal.
    """
    inv = msg.event
    if not inv.subscription_id:
        return {"skipped": "no_subscription"}
    if inv.collection == "charge_automatically" and inv.psp_payment_id is not None:
        return {"skipped": "paid_by_charge"}
    with bind(subscription_id=inv.subscription_id, invoice_id=inv.invoice_id):
        o = settled_without_charge(inv.invoice_id, inv.paid_at, f"{inv.invoice_id}:paid")
        return apply(inv.subscription_id, o, _only_current_invoice, deps=deps)


def _only_current_invoice() -> dt.datetime | None:
    """Period source of an invoice-level payment: only the current invoice (matched by id) is known."""
    raise LookupError("not the subscription's current invoice")


def settle_zero_invoice(inv: InvoiceFinalized, deps: Deps = DEFAULT) -> dict[str, Any]:
    """An invoice with nothing to pay (credits cover it) settles its period like a payment."""
    if not inv.subscription_id:
        return {"skipped": "no_subscription"}
    o = settled_without_charge(inv.invoice_id, inv.finalized_at, f"{inv.invoice_id}:zero_due")
    return apply(inv.subscription_id, o, inv.period_start, deps=deps)


def _latest_attempt(invoice_id: str) -> dict[str, Any] | None:
    from google.cloud.firestore_v1.base_query import FieldFilter

    q = attempts().where(filter=FieldFilter("invoice_id", "==", invoice_id))
    docs = [s.to_dict() or {} for s in q.stream()]
    return max(docs, key=lambda d: int(d.get("attempt", 0))) if docs else None


def merge_charge(
    charges: dict[str, Any], key: str, data: dict[str, Any]
) -> tuple[dict[str, Any], dict[str, Any]] | None:
    """The new ``charges`` map and the results that move off it into one archive document (empty when none
    do), or None when it already holds this result (final beats pending).

    The map holds each attempt's only copy of its result (the attempt document is written once, by its
    claim), so nothing is dropped: past ``MAX_CHARGES_KEPT + ARCHIVE_BATCH`` results the oldest
    ``ARCHIVE_BATCH + 1`` move together, one archive write per dozen renewals instead of one per renewal.
    The risk step's record (``risk``) stays when a later fact makes a pending result final.
    """
    old = charges.get(key) or {}
    if old.get("status") == data["status"] or old.get("status") in FINAL_RESULTS:
        return None
    merged = {**charges, key: {**({"risk": old["risk"]} if old.get("risk") else {}), **data}}
    moved: dict[str, Any] = {}
    if len(merged) > MAX_CHARGES_KEPT + ARCHIVE_BATCH:
        order = sorted(merged, key=lambda k: str(merged[k].get("psp_created_at")))
        moved = {k: merged[k] for k in order[: len(order) - MAX_CHARGES_KEPT]}
        merged = {k: merged[k] for k in order[len(order) - MAX_CHARGES_KEPT :]}
    return merged, moved


def archive_id(moved: dict[str, Any]) -> str:
    """The archive document of a batch: derived from its keys, so a retried transaction rewrites the same one."""
    return hashlib.sha256("\n".join(sorted(moved)).encode()).hexdigest()[:24]


def _resolve_period(state: SubState, o: Outcome, period_start: PeriodSource) -> Outcome:
    """``o`` with the index of the period it pays; raises LookupError when that cannot be known.

    The invoice of the subscription's claimed request is recognised by its derived id (no lookup);
    otherwise the period comes from ``period_start`` (the charge attempt's), else the claimed one.
    """
    b = state.billing
    if b is not None and o.invoice_id == invoice_id_for(b.request_id):
        return replace(o, period_index=b.index)
    for k, _ in state.open_due:  # an older send_invoice invoice still open (renewals went on)
        if o.invoice_id == invoice_id_for(request_id(state.id, state.schedule.period(k).start)):
            return replace(o, period_index=k)
    ps = period_start() if callable(period_start) else period_start
    if ps is not None:
        return replace(o, period_index=state.period_index_of(ps))
    if b is not None:
        return replace(o, period_index=b.index)
    return o


def apply(
    subscription_id: str,
    o: Outcome | None,
    period_start: PeriodSource,
    *,
    charge: tuple[str, dict[str, Any]] | None = None,
    publish: bool = True,
    reannounce: bool = True,
    settings: RenewalSettings | None = None,
    also: Callable[[Any, bool], None] | None = None,
    deps: Deps = DEFAULT,
) -> dict[str, Any]:
    """Apply ``o`` (and record ``charge``) in one transaction; publish the transition after the commit.
    ``also(transaction, recorded)`` adds the caller's own writes to that commit; ``recorded``: the
    subscription exists, so ``charge`` is stored on it (else the collector completes its attempt document).

    With ``publish=False`` the caller publishes ``result["event"]`` itself (together with its own
    messages).
    """
    from google.cloud import firestore

    cfg = settings or deps.settings()
    ref = subs().document(subscription_id)

    @firestore.transactional
    def txn(transaction: Any) -> tuple[str, dict[str, Any] | None]:
        snap = ref.get(transaction=transaction)
        doc = snap.to_dict()
        if also is not None:
            also(transaction, bool(doc))
        if not doc:
            return "unknown_subscription", None
        state = state_of(doc)
        update: dict[str, Any] = {}
        if charge is not None and (merged := merge_charge(dict(doc.get("charges") or {}), *charge)) is not None:
            update["charges"], moved = merged
            if moved:  # the same commit: a result is never only in flight between the two documents
                transaction.set(charge_results(subscription_id).document(archive_id(moved)), {"results": moved})
                update["charges_archived"] = int(doc.get("charges_archived") or 0) + len(moved)
        event = None
        duplicate = o is not None and state.last_cause == o.cause
        if o is not None and not duplicate:
            try:
                outcome = _resolve_period(state, o, period_start)
            except LookupError:
                return "unknown_attempt", None
            ch = apply_payment(state, outcome, cfg.dunning_for((doc.get("payment_method") or {}).get("account")))
            if ch.state != state:
                update |= state_fields(ch.state)
                if ch.transition is not None:
                    event = lifecycle.stored(lifecycle.transition_event(ch.state, ch.transition))
                    update |= lifecycle.recorded(event)
        if update:
            transaction.update(ref, update)
        if event is not None:
            return "transitioned", event
        if duplicate and reannounce and doc.get("last_transition"):
            return "duplicate", doc["last_transition"]  # re-announce: the first publish may be lost
        return ("updated" if update else "no_change"), None

    result, event = txn(clients.firestore().transaction())
    if event is not None:
        t = SubscriptionTransitioned.model_validate(event)
        if publish:
            deps.publisher.publish_all([lifecycle.announcement(event, deps.clock())])
        if result == "transitioned":
            log.info(
                "subscription transitioned",
                extra={"from": t.from_status, "to": t.to_status, "reason": t.reason, "version": t.version},
            )
    elif result in ("unknown_subscription", "unknown_attempt"):
        log.warning(f"payment ignored: {result.replace('_', ' ')} (or not the subscription's current invoice)")
    return {"result": result, "version": event["version"] if event else None, "event": event}
