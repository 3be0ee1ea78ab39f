"""Subscription commands (create, cancel now / at period end, change plan) on Firestore.

Each command is one Firestore transaction (or an atomic ``create()``) followed by the publish of the
resulting ``subscription.transitioned``. Errors are :class:`ServiceError` with the HTTP status and a
machine-readable code, so the HTTP layer answers precisely without knowing the rules.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import uuid
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, StringConstraints, field_validator, model_validator

from shared import clients
from shared.domain.calendar import Anchor, Cadence, CalendarError, Schedule, Unit, plan_change, zone
from shared.domain.money import CurrencyError, Money, Rounding, exponent, max_minor
from shared.domain.subscriptions import cancel_at_period_end, cancel_now, new_subscription, proration_period
from shared.edge import (
    BoundedDatetime,
    Code,
    FirestoreId,
    Name,
    Text,
    firestore_id_problem,
)
from shared.events.billing import CollectionMethod, LineIn, Party, PaymentMethodRef, SubscriptionTransitioned
from shared.log import get_logger
from shared.renewals import lifecycle
from shared.renewals.config import renewal_settings
from shared.renewals.deps import DEFAULT
from shared.renewals.repository import attempts, shard_of, state_fields, state_of, subs

log = get_logger(__name__)

# Path segments of the API: an id equal to one of them could never be addressed (GET /subscriptions/subscriptions).
RESERVED_IDS = frozenset({"subscriptions", "cancel", "change-plan"})
# The longest period a plan may have: 10 years. Beyond it period arithmetic soon runs past year 9999.
MAX_INTERVAL_COUNT = {"day": 3660, "week": 522, "month": 120, "year": 10}


def subscription_id_problem(value: str) -> str | None:
    """Why ``value`` cannot be a subscription id (Firestore rules and the API's routes), or None."""
    problem = firestore_id_problem(value)
    if problem:
        return f"id {problem}"
    if value.lower() in RESERVED_IDS:
        return f"id {value!r} collides with a route of the API"
    return None


def _subscription_id(value: str) -> str:
    problem = subscription_id_problem(value)
    if problem:
        raise ValueError(problem)
    return value


SubscriptionId = Annotated[FirestoreId, AfterValidator(_subscription_id)]
AccountName = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$")]
ZoneName = Annotated[str, StringConstraints(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_+/-]+$")]
Ref = Annotated[str, StringConstraints(min_length=1, max_length=255)]


class ServiceError(Exception):
    def __init__(self, status: int, code: str, detail: Any) -> None:
        super().__init__(f"{status} {code}: {detail}")
        self.status, self.code, self.detail = status, code, detail


class _In(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class PlanLine(_In):
    description: Text = Field(min_length=1)
    quantity: int = Field(default=1, ge=1, le=1_000_000)
    unit_amount: Money
    tax_category: Code = "standard"


class PlanIn(_In):
    id: FirestoreId
    currency: str = Field(pattern=r"^[A-Z]{3}$")
    interval: Literal["day", "week", "month", "year"]
    interval_count: int = Field(default=1, ge=1, le=max(MAX_INTERVAL_COUNT.values()))
    lines: tuple[PlanLine, ...] = Field(min_length=1, max_length=100)

    @model_validator(mode="after")
    def _one_currency(self) -> PlanIn:
        try:
            exponent(self.currency)
        except CurrencyError as exc:
            raise ValueError(str(exc)) from exc
        if self.interval_count > MAX_INTERVAL_COUNT[self.interval]:
            raise ValueError(f"a period is at most {MAX_INTERVAL_COUNT[self.interval]} {self.interval}s (10 years)")
        bound, total = max_minor(self.currency), 0
        for line in self.lines:
            if line.unit_amount.currency != self.currency:
                raise ValueError(f"line {line.description!r} is not in the plan currency {self.currency}")
            if line.unit_amount.amount < 0:
                raise ValueError("plan prices cannot be negative")
            total += line.unit_amount.amount * line.quantity
            if total > bound:  # line x quantity and the sum: consumers add them up (int64 in Firestore)
                raise ValueError(f"the plan total must be at most {bound} minor units of {self.currency}")
        return self

    def total(self) -> Money:
        acc = Money.zero(self.currency)
        for line in self.lines:
            acc = acc + line.unit_amount.times(line.quantity)
        return acc


class CustomerIn(Party):
    """The buyer with every field bounded (the stored subscription must stay far below 1 MiB)."""

    id: FirestoreId
    name: Name
    vat_id: Annotated[str, StringConstraints(min_length=1, max_length=32)] | None = None
    email: Annotated[str, StringConstraints(min_length=3, max_length=254)] | None = None
    address_lines: tuple[Name, ...] = Field(default=(), max_length=10)


class PaymentMethodIn(PaymentMethodRef):
    """A stored payment method; ``psp`` must name a charging adapter (checked at creation)."""

    psp: Code
    account: AccountName = "default"
    customer_ref: Ref | None = Field(default=None, description="PSP customer id / shopperReference")
    method_ref: Ref = Field(description="payment method id / recurringDetailReference / mandate")


class CreateSubscription(_In):
    subscription_id: SubscriptionId | None = None
    customer: CustomerIn
    seller_entity: Code
    plan: PlanIn
    anchor_zone: ZoneName = "Etc/UTC"
    start_at: BoundedDatetime | None = Field(default=None, description="test clock only: when it starts")
    trial_days: int = Field(default=0, ge=0, le=730)
    collection: CollectionMethod = "charge_automatically"
    payment_method: PaymentMethodIn | None = None

    @field_validator("anchor_zone")
    @classmethod
    def _zone(cls, v: str) -> str:
        try:
            zone(v)
        except CalendarError as exc:
            raise ValueError(str(exc)) from exc
        return v

    @model_validator(mode="after")
    def _method(self) -> CreateSubscription:
        if self.collection == "charge_automatically" and self.payment_method is None:
            raise ValueError("charge_automatically needs a payment_method")
        if self.start_at is not None and self.start_at.tzinfo is None:
            raise ValueError("start_at needs a time zone")
        return self


class CancelSubscription(_In):
    at_period_end: bool = False
    at: BoundedDatetime | None = Field(default=None, description="test clock only")


class ChangePlan(_In):
    plan: PlanIn
    at: BoundedDatetime | None = Field(default=None, description="test clock only")


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


def _now(explicit: dt.datetime | None) -> dt.datetime:
    if explicit is None:
        return dt.datetime.now(dt.UTC)
    if not renewal_settings().allow_test_clock:
        raise ServiceError(400, "test_clock_disabled", "explicit times need RENEWALS_ALLOW_TEST_CLOCK")
    if explicit.tzinfo is None:
        raise ServiceError(400, "invalid_time", "times need a time zone")
    return explicit.astimezone(dt.UTC)


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


def create(body: CreateSubscription) -> tuple[int, dict[str, Any]]:
    from google.api_core.exceptions import AlreadyExists, Conflict

    check_references(body)
    now = _now(body.start_at) if body.start_at is not None else dt.datetime.now(dt.UTC)
    doc, event = new_document(body, now)
    sub_id = doc["id"]
    ref = subs().document(sub_id)
    try:
        ref.create(doc)
    except (AlreadyExists, Conflict):
        existing = ref.get().to_dict() or {}
        if existing.get("request_hash") != doc["request_hash"]:
            raise ServiceError(409, "subscription_exists", f"{sub_id} exists with different terms") from None
        return 200, view(existing)
    DEFAULT.publisher.publish_all([lifecycle.outbox_item(event, now)])
    log.info("subscription created", extra={"subscription_id": sub_id, "status": doc["status"]})
    return 201, view(doc)


def get(sub_id: str, *, with_attempts: bool = False) -> dict[str, Any]:
    snap = subs().document(sub_id).get()
    if not snap.exists:
        raise ServiceError(404, "subscription_not_found", sub_id)
    doc = snap.to_dict() or {}
    out = view(doc)
    if with_attempts:
        from google.cloud.firestore_v1.base_query import FieldFilter

        # The attempt documents are the claims; their results live on the subscription (``charges``).
        results = doc.get("charges") or {}
        q = attempts().where(filter=FieldFilter("subscription_id", "==", sub_id))
        rows = []
        for s in q.stream():
            a = {k: v for k, v in (s.to_dict() or {}).items() if k != "payment_method"}
            rows.append({**a, **results.get(s.id, {})})
        out["attempts"] = _iso(sorted(rows, key=lambda a: (str(a.get("created_at")), int(a.get("attempt", 0)))))
    return out


def _mutate(sub_id: str, fn: Any) -> dict[str, Any]:
    """Run ``fn(doc, state) -> (update, event|None)`` in a transaction; publish the event afterwards."""
    from google.cloud import firestore

    ref = subs().document(sub_id)

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

    doc, event = txn(clients.firestore().transaction())
    if event is not None:
        DEFAULT.publisher.publish_all(
            [lifecycle.outbox_item(SubscriptionTransitioned.model_validate(event), dt.datetime.now(dt.UTC))]
        )
    return view(doc)


def cancel(sub_id: str, body: CancelSubscription) -> dict[str, Any]:
    now = _now(body.at)

    def fn(doc: dict[str, Any], state: Any) -> tuple[dict[str, Any], dict[str, Any] | None]:
        if state.status == "canceled":
            return {}, None
        ch = cancel_at_period_end(state) if body.at_period_end else cancel_now(state, now, f"cancel:{now.isoformat()}")
        update = state_fields(ch.state)
        event = None
        if ch.transition is not None:
            event = lifecycle.stored(lifecycle.transition_event(ch.state, ch.transition))
            update["last_transition"] = event
        return update, event

    return _mutate(sub_id, fn)


def change_plan(sub_id: str, body: ChangePlan) -> dict[str, Any]:
    """Switch plans now; the unused old time is credited and the new time charged on the next invoice."""
    now = _now(body.at)
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

    return _mutate(sub_id, fn)
