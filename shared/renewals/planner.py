"""The planner: a billing tick -> one RenewalDue per due (subscription, period), exactly claimed.

Fan-out: a tick without a shard publishes one tick per planner task (``RENEWALS_SHARDS``, same "now");
task ``i`` owns the fixed virtual shards ``v`` (0..255, stored on each document) with ``v % n == i`` and
queries ``shard == v AND due_at <= now ORDER BY due_at`` page by page with cursors, and after
``max_per_invocation`` documents hands the rest to a continuation tick, so a million due subscriptions
spread over many short invocations and no query ever scans the collection.

Exactly once per period: each due document is claimed by a write conditioned on the update time the
query read (the period goes into ``billing`` and ``due_at`` moves to the republish deadline) BEFORE the
RenewalDue is published. A
concurrent or repeated tick finds the claim and does nothing. If the process dies between the claim and
the publish, the document becomes due again at ``billing.republish_at`` and the next tick publishes the
SAME RenewalDue (same request_id, same event id), which the invoices function deduplicates: nothing is
lost and nothing is billed twice.

Never re-sent while in flight: a RenewalDue whose publish was acknowledged is durable (Pub/Sub delivers it
until the invoices function acknowledges it, then dead-letters it), so re-sending it only because the
downstream is slow doubles the work. Each invocation that claims records its publish in
``renewal_publishes/{id}`` (``publishing`` under a wall-clock lease, then ``acked``, or ``failed``; two
writes per invocation, not per renewal) and every claim points at it (``publish_batch``). When a claim's
``republish_at`` passes, the planner looks at that record (one read per invocation and record):

* ``acked``: the message is queued or being processed: no re-send; ``republish_at`` moves one in-flight
  window on (``RENEWALS_REPUBLISH_S`` x 6, doubling with each re-send) and the pointer is dropped, so if
  the period is still unpaid then (a dead-lettered delivery, a lost announcement) it is re-sent;
* ``publishing`` with its lease running: another invocation is still publishing it: nothing now;
* ``failed``, lease run out, or no record (the process died between the claim and the publish): re-sent.
"""

from __future__ import annotations

import concurrent.futures
import contextvars
import datetime as dt
import functools
import json
import threading
import uuid
from typing import TYPE_CHECKING, Any

from shared.domain.subscriptions import RenewalDecision, decide_renewal, invoice_due_at
from shared.events.envelope import Event
from shared.events.publisher import RawMessage
from shared.log import bind, get_logger
from shared.metering import billing as usage_billing
from shared.once import once
from shared.renewals.config import RenewalSettings
from shared.renewals.deps import DEFAULT, Deps
from shared.renewals.messages import ChargeRetryDue, Tick, tick_attributes
from shared.renewals.repository import VIRTUAL_SHARDS, publishes, state_fields, state_of, subs

# A tick of the coordinator fans out, a shard with nothing due queries and stops: the billing contracts, pricing and
# the lifecycle's events load with the first claim or invoice request (written-out imports; README, cold start).
if TYPE_CHECKING:
    from shared.domain.pricing import ChargeLine
    from shared.events.billing import BillingReason, RenewalDue

log = get_logger(__name__)


def _contended() -> tuple[type[Exception], ...]:
    from google.api_core.exceptions import Aborted, Conflict, FailedPrecondition, NotFound

    return (Aborted, Conflict, FailedPrecondition, NotFound)


CONTENDED = _contended()

# An invocation claims and publishes within the function's timeout (300 s in the topology): past this
# lease its ``publishing`` record can only belong to a dead process.
PUBLISH_LEASE_S = 360
INFLIGHT_WINDOWS = 6  # an acknowledged RenewalDue is re-checked after this many RENEWALS_REPUBLISH_S
PUBLISH_RECORD_TTL = dt.timedelta(days=30)


class PublishRecord:
    """This invocation's publish record (created on the first claim) and the records of earlier claims.

    Leases run on the wall clock ``deps.clock`` (the planner's ``now`` may be a test clock). Thread-safe:
    claims of a page run concurrently and look records up through one cache.
    """

    def __init__(self, deps: Deps = DEFAULT) -> None:
        self.deps = deps
        self.id = uuid.uuid4().hex
        self.opened = False
        self.failed = False  # a claim of this invocation raised: close "failed" so later ticks re-send
        self._known: dict[str, str] = {}
        self._lock = threading.Lock()

    def open(self) -> None:
        """Write ``publishing`` under a lease BEFORE any claim points at it (main thread, once)."""
        if self.opened:
            return
        wall = self.deps.clock()
        publishes(self.deps.db()).document(self.id).set(
            {
                "state": "publishing",
                "lease_until": wall + dt.timedelta(seconds=PUBLISH_LEASE_S),
                "created_at": wall,
                "expire_at": wall + PUBLISH_RECORD_TTL,
            }
        )
        self.opened = True

    def close(self, state: str) -> None:
        if self.opened:
            publishes(self.deps.db()).document(self.id).update({"state": state, f"{state}_at": self.deps.clock()})

    def status(self, record_id: str | None) -> str:
        """``acked``, ``publishing`` (lease running) or ``lost`` (failed, lease run out, or no record)."""
        if not record_id:
            return "lost"
        if record_id == self.id:
            return "publishing"
        with self._lock:
            if record_id not in self._known:
                doc = publishes(self.deps.db()).document(record_id).get().to_dict() or {}
                state = doc.get("state")
                wall = self.deps.clock()
                if state == "publishing" and (doc.get("lease_until") or wall) <= wall:
                    state = "lost"
                self._known[record_id] = state if state in ("acked", "publishing") else "lost"
            return self._known[record_id]


def handle_tick(tick: Tick, settings: RenewalSettings | None = None, deps: Deps = DEFAULT) -> dict[str, int]:
    """Entry of the planner for one tick (fan-out tick or shard tick)."""
    cfg = settings or deps.settings()
    if tick.shard is None:
        return fan_out(tick, cfg, deps)
    return run_shard(tick.shard, tick.now, cfg, deps)


def _tick_message(now: dt.datetime, shard: int) -> RawMessage:
    return RawMessage("billing-ticks", json.dumps(Tick(now=now, shard=shard).body()).encode(), tick_attributes())


def fan_out(tick: Tick, cfg: RenewalSettings, deps: Deps = DEFAULT) -> dict[str, int]:
    deps.publisher.publish_raw([_tick_message(tick.now, shard) for shard in range(cfg.shards)])
    log.info("tick fanned out", extra={"shards": cfg.shards, "now": tick.now.isoformat()})
    return {"shards": cfg.shards}


def _query(db: Any, virtual: int, now: dt.datetime, limit: int) -> Any:
    from google.cloud.firestore_v1.base_query import FieldFilter

    return (
        subs(db)
        .where(filter=FieldFilter("shard", "==", virtual))
        .where(filter=FieldFilter("due_at", "<=", now))
        .order_by("due_at")
        .limit(limit)
    )


def run_shard(shard: int, now: dt.datetime, cfg: RenewalSettings, deps: Deps = DEFAULT) -> dict[str, int]:
    """Planner task ``shard``: every virtual shard it owns, page by page, up to the invocation budget."""
    counts = {"seen": 0, "bill": 0, "republish": 0, "retry": 0, "cancel": 0, "none": 0}
    record = PublishRecord(deps)
    try:
        for virtual in range(shard, VIRTUAL_SHARDS, cfg.shards):
            if not _run_virtual(virtual, now, cfg, counts, record):
                continue_later(shard, now, deps)
                counts["continued"] = 1
                break
    except BaseException:
        # Whatever this invocation claimed may not be published: later ticks re-send it once due.
        try:
            record.close("failed")
        except Exception:  # the lease runs out anyway
            log.warning("publish record left to its lease", extra={"record": record.id})
        raise
    record.close("failed" if record.failed else "acked")
    log.info("shard planned", extra={"shard": shard, "now": now.isoformat(), **counts})
    return counts


def _run_virtual(
    virtual: int, now: dt.datetime, cfg: RenewalSettings, counts: dict[str, int], record: PublishRecord
) -> bool:
    """Run one virtual shard; False when the invocation's budget ran out (a continuation follows)."""
    cursor = None
    deps = record.deps
    while True:
        q = _query(deps.db(), virtual, now, cfg.page_size)
        page = list((q.start_after(cursor) if cursor is not None else q).stream())
        if page:
            record.open()
        outbox: list[tuple[Event, str, dt.datetime]] = []
        # Claims are independent documents: run a page's claims concurrently (each in a copy of this
        # context, so log labels and usage counting follow), publish the page's messages together.
        pool = _pool()
        futures = [pool.submit(contextvars.copy_context().run, _claim_one, snap, now, cfg, record) for snap in page]
        for f in futures:
            kind, items = f.result()
            counts["seen"] += 1
            counts[kind] = counts.get(kind, 0) + 1
            outbox += items
        if outbox:
            deps.publisher.publish_all(outbox)
        if len(page) < cfg.page_size:
            return True
        cursor = page[-1]
        if counts["seen"] >= cfg.max_per_invocation:
            return False


def _claim_one(
    snap: Any, now: dt.datetime, cfg: RenewalSettings, record: PublishRecord
) -> tuple[str, list[tuple[Event, str, dt.datetime]]]:
    try:
        return claim(snap, now, cfg, record)
    except CONTENDED as exc:
        # Another planner (an overlapping tick) changed this document since our query read it: it
        # wins, and if it failed too the document is still due for the next tick.
        log.warning("claim contended; left to the concurrent tick", extra={"doc": snap.id, "error": str(exc)})
        return "contended", []
    except Exception as exc:
        # One subscription the planner cannot price or claim (a usage total beyond what a line prices, a
        # document an older release wrote, an outage of a dependency) must not stop the billing of every
        # other one behind it in the shard: it stays due and is tried again at each tick, the error is
        # logged for the on-call (an ERROR line with the subscription and the cause's class), and the
        # invocation's record closes "failed", so anything it claimed but did not publish is re-sent.
        record.failed = True
        log.error(
            "renewal planning failed; the subscription stays due",
            extra={"event": "billing.blocked", "stage": "renewal", "doc": snap.id, "error_class": type(exc).__name__},
        )
        return "failed", []


@once
def _pool() -> concurrent.futures.ThreadPoolExecutor:
    return concurrent.futures.ThreadPoolExecutor(max_workers=8, thread_name_prefix="planner-claim")


def continue_later(shard: int, now: dt.datetime, deps: Deps = DEFAULT) -> None:
    """Hand the rest of the shard to another invocation (claimed documents left the query's range)."""
    deps.publisher.publish_raw([_tick_message(now, shard)])


def claim(
    snap: Any, now: dt.datetime, cfg: RenewalSettings, record: PublishRecord | None = None
) -> tuple[str, list[tuple[Event, str, dt.datetime]]]:
    """Decide on the queried snapshot and claim with an update-time precondition; return what to publish.

    The precondition makes the read of the query and the write one atomic step (optimistic concurrency,
    no second read inside a transaction): if anyone changed the document since the query read it, the
    write fails and the document is left to whoever changed it (or to the next tick). A claim that
    publishes points at ``record`` (see the module doc).
    """
    from dataclasses import replace

    from google.cloud.firestore import DELETE_FIELD

    from shared.renewals import lifecycle

    doc = snap.to_dict() or {}
    if not doc:
        return "none", []
    record = record or PublishRecord()  # unopened: a lone claim is re-sent after the window, as if lost
    state = state_of(doc)
    p, due, usage_fields = _priced(doc, state, _decide(doc, state, now, cfg), now)
    if p.kind == "republish" and state.billing is not None:
        status = record.status(doc.get("publish_batch"))
        if status == "publishing":
            return "in_flight", []  # its publisher is still at work: nothing to do, nothing to write
        if status == "acked":
            b = state.billing
            window = cfg.republish_s * INFLIGHT_WINDOWS * 2 ** min(b.republishes, 8)
            held = replace(state, billing=replace(b, republish_at=now + dt.timedelta(seconds=window)))
            hold = {**state_fields(held), "publish_batch": DELETE_FIELD}
            snap.reference.update(hold, option=record.deps.db().write_option(last_update_time=snap.update_time))
            return "in_flight", []
    fields = state_fields(p.change.state)
    update: dict[str, Any] = {}
    if p.kind in ("bill", "republish", "retry"):
        update["publish_batch"] = record.id
    if p.kind == "none":
        if doc.get("due_at") != fields["due_at"]:
            update["due_at"] = fields["due_at"]
    else:
        update |= fields | usage_fields
        if due is not None:  # a bill
            update["renewal_due"] = due.model_dump(mode="json")
            update["pending_lines"] = []
            update["pending_charges"] = []
        if p.change.transition is not None:
            update |= lifecycle.recorded(
                lifecycle.stored(lifecycle.transition_event(p.change.state, p.change.transition))
            )
    if update:
        snap.reference.update(update, option=record.deps.db().write_option(last_update_time=snap.update_time))
    doc = {**doc, **update}
    if p.kind == "none":
        return "none", []
    with bind(subscription_id=doc.get("id")):
        return p.kind, _messages(doc, p, now)


def _messages(doc: dict[str, Any], p: RenewalDecision, now: dt.datetime) -> list[tuple[Event, str, dt.datetime]]:
    """What a claim publishes: the invoice request (also when re-sent) or the dunning retry, and the transition."""
    from shared.events.billing import RenewalDue
    from shared.renewals import lifecycle

    items: list[tuple[Event, str, dt.datetime]] = []
    if p.kind in ("bill", "republish"):
        event = RenewalDue.model_validate(doc["renewal_due"])
        items.append((event, event.request_id, now))
        log.info(f"renewal {p.kind}", extra={"request_id": event.request_id})
    elif p.kind == "retry":
        assert p.invoice_id is not None
        assert p.attempt is not None
        retry = ChargeRetryDue(subscription_id=doc["id"], invoice_id=p.invoice_id, attempt=p.attempt)
        items.append((retry, f"{p.invoice_id}:{p.attempt}", now))
        log.info("dunning retry due", extra={"invoice_id": p.invoice_id, "attempt": p.attempt})
    if p.change.transition is not None:
        items.append(lifecycle.outbox_item(lifecycle.transition_event(p.change.state, p.change.transition), now))
    return items


def _priced(
    doc: dict[str, Any], state: Any, p: RenewalDecision, now: dt.datetime
) -> tuple[RenewalDecision, RenewalDue | None, dict[str, Any]]:
    """A ``bill`` with its request, through the usage hook (which may turn a final invoice with nothing to bill
    into a plain end), and the fields the hook writes with the claim."""
    if p.kind != "bill":
        return p, None, {}
    return usage_billing.with_usage(doc, state, p, functools.partial(renewal_due, doc), now)


def _decide(doc: dict[str, Any], state: Any, now: dt.datetime, cfg: RenewalSettings) -> RenewalDecision:
    """The account's dunning policy decides the final status and how long an invoice may stay overdue."""
    policy = cfg.dunning_for((doc.get("payment_method") or {}).get("account"))
    decision = decide_renewal(
        state,
        now,
        republish_s=cfg.republish_s,
        final_status=policy.final_status,
        overdue_grace=dt.timedelta(days=policy.retry_days[-1] if policy.retry_days else 0),
    )
    return usage_billing.deferred(doc, state, decision, now)  # usage grace: still due, a later tick bills it


def billing_reason(p: RenewalDecision) -> BillingReason:
    """Stripe's vocabulary: the first period's invoice, a period's, or the final one of an ended subscription."""
    b = p.change.state.billing
    if p.final:
        return "subscription_final"
    return "subscription_create" if b is not None and b.index == 0 else "subscription_cycle"


def renewal_due(doc: dict[str, Any], p: RenewalDecision, usage: tuple[ChargeLine, ...] = ()) -> RenewalDue:
    """The invoice request for the claimed period: plan lines plus pending proration lines (plus ``usage``, the
    lines of :mod:`shared.metering.billing`, for a subscription with items)."""
    from shared.events.billing import LineIn, Party, PaymentMethodRef, RenewalDue

    if doc.get("items"):
        return items_renewal_due(doc, p, usage)
    assert p.period is not None
    state = p.change.state
    assert state.billing is not None
    plan_doc = doc["plan"]
    lines = [
        LineIn(
            description=line["description"],
            quantity=int(line["quantity"]),
            unit_amount=line["unit_amount"],
            kind="plan",
            period_start=p.period.start,
            period_end=p.period.end,
            tax_category=line.get("tax_category", "standard"),
        )
        for line in ([] if p.final else plan_doc["lines"])  # a final invoice bills the pending lines only
    ]
    lines += [LineIn.model_validate(x) for x in doc.get("pending_lines") or []]
    pm = doc.get("payment_method")
    return RenewalDue(
        request_id=state.billing.request_id,
        subscription_id=doc["id"],
        period_start=p.period.start,
        period_end=p.period.end,
        seller_entity=doc["seller_entity"],
        customer=Party.model_validate(doc["customer"]),
        currency=plan_doc["currency"],
        lines=tuple(lines),
        collection=doc.get("collection", "charge_automatically"),
        payment_method=PaymentMethodRef.model_validate(pm) if pm else None,
        billing_reason=billing_reason(p),
    )


def items_renewal_due(doc: dict[str, Any], p: RenewalDecision, usage: tuple[ChargeLine, ...] = ()) -> RenewalDue:
    """The request of a subscription with items: each item's price snapshot and quantity, the waiting proration
        charges, and the discounts in force for the period's index (a repeating coupon drops out after N periods).

        The items are priced here from their snapshots (:func:`shared.domain.pricing.item_lines`); the invoices function
    composes them (:func:`shared.domain.composition.compose`); the preview
        builds the very same request (:func:`shared.subscriptions.service.SubscriptionService.preview`).
    """
    from shared.domain.catalog import Price
    from shared.domain.discounts import AppliedDiscount
    from shared.domain.pricing import ChargeLine, Item, item_lines
    from shared.events.billing import Party, PaymentMethodRef, RenewalDue

    assert p.period is not None
    state = p.change.state
    b = state.billing
    assert b is not None
    discounts = [AppliedDiscount.model_validate(d) for d in doc.get("discounts") or []]
    items = [Item(price=Price.model_validate(i["price"]), quantity=int(i["quantity"])) for i in doc["items"]]
    pm = doc.get("payment_method")
    days = doc.get("days_until_due")
    return RenewalDue(
        request_id=b.request_id,
        subscription_id=doc["id"],
        period_start=p.period.start,
        period_end=p.period.end,
        seller_entity=doc["seller_entity"],
        customer=Party.model_validate(doc["customer"]),
        currency=doc["currency"],
        items=() if p.final else item_lines(items, p.period),
        charges=(*(ChargeLine.model_validate(c) for c in doc.get("pending_charges") or []), *usage),
        discounts=tuple(d for d in discounts if d.active_for(b.index)),
        period_index=b.index,
        due_at=invoice_due_at(b.start, int(days)) if days is not None else None,
        apply_credit=True,
        collection=doc.get("collection", "charge_automatically"),
        payment_method=PaymentMethodRef.model_validate(pm) if pm else None,
        billing_reason=billing_reason(p),
    )
