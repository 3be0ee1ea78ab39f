"""Subscription commands (create, cancel now / at period end, change plan) on Firestore.

Each command is one Firestore transaction (or an atomic ``create()``) followed by the publish of the
resulting ``subscription.transitioned``. Errors are :class:`ServiceError` with the HTTP status and a
machine-readable code, so the HTTP layer answers precisely without knowing the rules. Collaborators (db,
publisher, clock) are injected (:class:`shared.renewals.deps.Deps`), like the webhooks and invoicing services.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import uuid
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel

from shared.domain.calendar import Anchor, Cadence, Schedule, Unit, plan_change
from shared.domain.money import Rounding
from shared.domain.subscriptions import cancel_at_period_end, cancel_now, new_subscription, proration_period
from shared.events.billing import LineIn, SubscriptionTransitioned
from shared.log import get_logger
from shared.renewals import lifecycle
from shared.renewals.deps import DEFAULT, Deps
from shared.renewals.repository import attempts, shard_of, state_fields, state_of, subs
from shared.subscriptions.commands import CancelSubscription, ChangePlan, CreateSubscription, PlanIn

log = get_logger(__name__)


class ServiceError(Exception):
    def __init__(self, status: int, code: str, detail: Any) -> None:
        super().__init__(f"{status} {code}: {detail}")
        self.status, self.code, self.detail = status, code, detail


def check_references(body: CreateSubscription) -> None:
    """Every reference must resolve now, not at the first renewal (which would dead-letter each period)."""
    from shared.charging.registry import known_psps
    from shared.invoicing.entities import UnknownSeller, seller

    try:
        seller(body.seller_entity)
    except UnknownSeller:
        raise ServiceError(422, "unknown_seller_entity", f"no legal entity {body.seller_entity!r}") from None
    if body.payment_method is not None and body.payment_method.psp not in known_psps():
        raise ServiceError(422, "unknown_psp", f"no charging adapter for PSP {body.payment_method.psp!r}")


def proration_rounding() -> Rounding:
    """Business rule, documented: proration lines round half-up per line unless configured."""
    from shared.renewals.config import proration_rounding as configured

    return configured()


def _hash(body: BaseModel) -> str:
    return hashlib.sha256(json.dumps(body.model_dump(mode="json"), sort_keys=True).encode()).hexdigest()


def _iso(v: Any) -> Any:
    """RFC 3339 for every timestamp in an answer (JSON has no datetime)."""
    if isinstance(v, dt.datetime):
        return v.astimezone(dt.UTC).isoformat().replace("+00:00", "Z")
    if isinstance(v, dict):
        return {k: _iso(x) for k, x in v.items()}
    if isinstance(v, list | tuple):
        return [_iso(x) for x in v]
    return v


def view(doc: dict[str, Any]) -> dict[str, Any]:
    return dict(_iso(_view(doc)))


def _view(doc: dict[str, Any]) -> dict[str, Any]:
    state = state_of(doc)
    period = state.current_period
    return {
        "id": doc["id"],
        "customer_id": doc["customer_id"],
        "status": state.status,
        "version": state.version,
        "plan": doc["plan"],
        "anchor": {"local": doc["anchor_local"], "zone": doc["anchor_zone"]},
        "trial_end": state.trial_end,
        "current_period": {"start": period[0], "end": period[1]} if period else None,
        "paid_index": state.paid_index,
        "billing": doc.get("billing"),
        "dunning": doc.get("dunning"),
        "cancel_at_period_end": state.cancel_at_period_end,
        "canceled_at": state.canceled_at,
        "due_at": doc.get("due_at"),
        "pending_lines": doc.get("pending_lines") or [],
    }


def new_document(body: CreateSubscription, now: dt.datetime) -> tuple[dict[str, Any], SubscriptionTransitioned]:
    """The Firestore document of a new subscription and its ``created`` event (pure; no I/O)."""
    sub_id = body.subscription_id or f"sub_{uuid.uuid4().hex[:20]}"
    trial_end = now + dt.timedelta(days=body.trial_days) if body.trial_days else None
    start = trial_end or now
    schedule = Schedule(Anchor.at(start, body.anchor_zone), Cadence(Unit(body.plan.interval), body.plan.interval_count))
    ch = new_subscription(id=sub_id, customer_id=body.customer.id, schedule=schedule, now=now, trial_end=trial_end)
    assert ch.transition is not None
    event = lifecycle.transition_event(ch.state, ch.transition)
    doc: dict[str, Any] = {
        "id": sub_id,
        "customer": body.customer.model_dump(mode="json"),
        "customer_id": body.customer.id,
        "seller_entity": body.seller_entity,
        "plan": body.plan.model_dump(mode="json"),
        "anchor_local": schedule.anchor.local.isoformat(),
        "anchor_zone": body.anchor_zone,
        "collection": body.collection,
        "payment_method": body.payment_method.model_dump(mode="json") if body.payment_method else None,
        "shard": shard_of(sub_id),
        "pending_lines": [],
        "created_at": now,
        "request_hash": _hash(body),
        **state_fields(ch.state),
        "last_transition": lifecycle.stored(event),
    }
    return doc, event


@dataclass(frozen=True, slots=True)
class SubscriptionService:
    """The commands of the subscriptions API over injected collaborators (tests replace them)."""

    deps: Deps = DEFAULT

    def _now(self, explicit: dt.datetime | None) -> dt.datetime:
        if explicit is None:
            return self.deps.clock()
        if not self.deps.settings().allow_test_clock:
            raise ServiceError(400, "test_clock_disabled", "explicit times need RENEWALS_ALLOW_TEST_CLOCK")
        if explicit.tzinfo is None:
            raise ServiceError(400, "invalid_time", "times need a time zone")
        return explicit.astimezone(dt.UTC)

    def create(self, body: CreateSubscription) -> tuple[int, dict[str, Any]]:
        from google.api_core.exceptions import AlreadyExists, Conflict

        check_references(body)
        now = self._now(body.start_at)
        doc, event = new_document(body, now)
        sub_id = doc["id"]
        ref = subs(self.deps.db()).document(sub_id)
        try:
            ref.create(doc)
        except (AlreadyExists, Conflict):
            existing = ref.get().to_dict() or {}
            if existing.get("request_hash") != doc["request_hash"]:
                raise ServiceError(409, "subscription_exists", f"{sub_id} exists with different terms") from None
            return 200, view(existing)
        self.deps.publisher.publish_all([lifecycle.outbox_item(event, now)])
        log.info("subscription created", extra={"subscription_id": sub_id, "status": doc["status"]})
        return 201, view(doc)

    def get(self, sub_id: str, *, with_attempts: bool = False) -> dict[str, Any]:
        db = self.deps.db()
        snap = subs(db).document(sub_id).get()
        if not snap.exists:
            raise ServiceError(404, "subscription_not_found", sub_id)
        doc = snap.to_dict() or {}
        out = view(doc)
        if with_attempts:
            from google.cloud.firestore_v1.base_query import FieldFilter

            # The attempt documents are the claims; their results live on the subscription (``charges``).
            results = doc.get("charges") or {}
            q = attempts(db).where(filter=FieldFilter("subscription_id", "==", sub_id))
            rows = []
            for s in q.stream():
                a = {k: v for k, v in (s.to_dict() or {}).items() if k != "payment_method"}
                rows.append({**a, **results.get(s.id, {})})
            out["attempts"] = _iso(sorted(rows, key=lambda a: (str(a.get("created_at")), int(a.get("attempt", 0)))))
        return out

    def _mutate(self, sub_id: str, fn: Any) -> dict[str, Any]:
        """Run ``fn(doc, state) -> (update, event|None)`` in a transaction; publish the event afterwards."""
        from google.cloud import firestore

        db = self.deps.db()
        ref = subs(db).document(sub_id)

        @firestore.transactional
        def txn(transaction: Any) -> tuple[dict[str, Any], dict[str, Any] | None]:
            snap = ref.get(transaction=transaction)
            if not snap.exists:
                raise ServiceError(404, "subscription_not_found", sub_id)
            doc = snap.to_dict() or {}
            update, event = fn(doc, state_of(doc))
            if update:
                transaction.update(ref, update)
            return {**doc, **update}, event

        doc, event = txn(db.transaction())
        if event is not None:
            self.deps.publisher.publish_all([lifecycle.announcement(event, self.deps.clock())])
        return view(doc)

    def cancel(self, sub_id: str, body: CancelSubscription) -> dict[str, Any]:
        now = self._now(body.at)

        def fn(doc: dict[str, Any], state: Any) -> tuple[dict[str, Any], dict[str, Any] | None]:
            if state.status == "canceled":
                return {}, None
            if body.at_period_end:
                ch = cancel_at_period_end(state)
            else:
                ch = cancel_now(state, now, f"cancel:{now.isoformat()}")
            update = state_fields(ch.state)
            event = None
            if ch.transition is not None:
                event = lifecycle.stored(lifecycle.transition_event(ch.state, ch.transition))
                update["last_transition"] = event
            return update, event

        return self._mutate(sub_id, fn)

    def change_plan(self, sub_id: str, body: ChangePlan) -> dict[str, Any]:
        """Switch plans now; the unused old time is credited and the new time charged on the next invoice."""
        now = self._now(body.at)
        rounding = proration_rounding()

        def fn(doc: dict[str, Any], state: Any) -> tuple[dict[str, Any], dict[str, Any] | None]:
            old = PlanIn.model_validate(doc["plan"])
            new = body.plan
            if state.status == "canceled":
                raise ServiceError(409, "subscription_canceled", "a canceled subscription cannot change plans")
            if (old.currency, old.interval, old.interval_count) != (new.currency, new.interval, new.interval_count):
                raise ServiceError(422, "incompatible_plan", "a plan change keeps the currency and the interval")
            lines = list(doc.get("pending_lines") or [])
            # The invoiced period containing ``now``, paid or not (past due, pending debit): see the rule in
            # shared.domain.subscriptions. The lines wait for the next invoice the subscription emits.
            period = proration_period(state, now)
            if period is not None:
                p = plan_change(old.total(), new.total(), period, now, rounding=rounding)
                for amount, text in ((p.credit, f"Unused time on {old.id}"), (p.charge, f"Remaining time on {new.id}")):
                    if amount.amount:
                        line = LineIn(
                            description=text,
                            quantity=1,
                            unit_amount=amount,
                            kind="proration",
                            period_start=now,
                            period_end=period.end,
                        )
                        lines.append(line.model_dump(mode="json"))
            return {"plan": new.model_dump(mode="json"), "pending_lines": lines}, None

        return self._mutate(sub_id, fn)
