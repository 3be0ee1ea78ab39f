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
from dataclasses import dataclass, replace
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from shared.domain.calendar import Anchor, Cadence, Schedule, Unit, plan_change
from shared.domain.subscriptions import (
    Billing,
    Change,
    RenewalDecision,
    cancel_at_period_end,
    cancel_now,
    new_subscription,
    proration_period,
    request_id,
)
from shared.log import get_logger
from shared.renewals.deps import DEFAULT, Deps
from shared.renewals.repository import attempts, result_on_subscription, shard_of, state_fields, state_of, subs

# A read (GET, the first request of most cold instances) needs the repository and the view alone: the commands'
# request models, the billing contracts, pricing and the lifecycle's events load with the first command that uses
# them (written-out imports in each function, so the bundle still ships them; README, cold start).
if TYPE_CHECKING:
    from pydantic import BaseModel

    from shared.domain.catalog import Price
    from shared.domain.credit import CreditEntry
    from shared.domain.money import Rounding
    from shared.domain.pricing import Item
    from shared.events.billing import RenewalDue, SubscriptionTransitioned
    from shared.subscriptions.commands import (
        ApplyDiscount,
        CancelSubscription,
        ChangeItems,
        ChangePlan,
        CreateItemsSubscription,
        CreateSubscription,
        DiscountIn,
        MigratePrice,
    )

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
        "plan": doc.get("plan"),
        "items": doc.get("items"),
        "currency": doc.get("currency") or (doc.get("plan") or {}).get("currency"),
        "discounts": doc.get("discounts") or [],
        "collection": doc.get("collection", "charge_automatically"),
        "days_until_due": doc.get("days_until_due"),
        "open_invoices": doc.get("open_due") or [],
        "pending_charges": doc.get("pending_charges") or [],
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
    from shared.renewals import lifecycle

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
        **lifecycle.recorded(lifecycle.stored(event), created=True),
    }
    return doc, event


# -- subscriptions with items ------------------------------------------------------------------------------------
def _stores(deps: Deps) -> tuple[Any, Any, Any]:
    """The billing stores (customers, catalog, coupons) on this service's Firestore and clock."""
    from shared.billing.catalog import CatalogStore
    from shared.billing.coupons import CouponStore
    from shared.billing.customers import CustomerStore
    from shared.billing.deps import BillingDeps

    bd = BillingDeps(db=deps.db, clock=deps.clock)
    return CustomerStore(bd), CatalogStore(bd), CouponStore(bd)


def _billing_call(fn: Any, *args: Any, **kwargs: Any) -> Any:
    """A billing store call whose refusals become this API's errors (same status and code)."""
    from shared.billing.deps import BillingError

    try:
        return fn(*args, **kwargs)
    except BillingError as exc:
        raise ServiceError(exc.status, exc.code, exc.detail) from None


def _items(catalog: Any, refs: Any, known: dict[str, Price] | None = None) -> list[Item]:
    """Items of catalog prices (a price already on the subscription keeps its snapshot: grandfathering)."""
    from shared.domain.pricing import Item, PricingError, check_items

    known = known or {}
    out = []
    for r in refs:
        price = known.get(r.price)
        if price is None:
            try:
                price = catalog.price(r.price)
            except Exception as exc:
                if getattr(exc, "status", None) == 404:
                    raise ServiceError(422, "unknown_price", f"no price {r.price!r}") from None
                raise
            if not price.active:
                raise ServiceError(422, "price_inactive", f"price {r.price} is archived")
        out.append(Item(price=price, quantity=r.quantity))
    try:
        check_items(out)
    except PricingError as exc:
        raise ServiceError(422, "invalid_items", str(exc)) from None
    return out


def check_references_psp(psp: str) -> None:
    from shared.charging.registry import known_psps

    if psp not in known_psps():
        raise ServiceError(422, "unknown_psp", f"no charging adapter for PSP {psp!r}")


def upcoming_request(doc: dict[str, Any], now: dt.datetime) -> RenewalDue | None:
    """The RenewalDue the planner will publish for the next period of ``doc`` (None: it will not invoice again).

    Built by the planner's own function from a claim of the next period, so the preview and the invoice share
    every input: items, waiting charges, discounts in force for the period index, due date.
    """
    from shared.renewals.planner import items_renewal_due

    state = state_of(doc)
    if state.status in ("canceled", "unpaid") or state.cancel_at_period_end:
        return None
    k = state.last_billed + 1
    period = state.schedule.period(k)
    billing = Billing(k, period.start, period.end, request_id(state.id, period.start), now, now)
    claimed = RenewalDecision("bill", Change(replace(state, billing=billing)), period)
    return items_renewal_due(doc, claimed)


def credit_entries(db: Any, customer_id: str, currency: str) -> list[CreditEntry]:
    """The customer's credit ledger as the billing credit store keeps it (empty: no customer, other currency)."""
    from shared.billing.credit import ENTRIES
    from shared.billing.customers import COLLECTION
    from shared.domain.credit import CreditEntry

    ref = db.collection(COLLECTION).document(customer_id)
    customer = ref.get().to_dict()
    if not customer or customer.get("currency") != currency:
        return []
    return [CreditEntry.model_validate(s.to_dict()["entry"]) for s in ref.collection(ENTRIES).order_by("seq").stream()]


def _item_docs(items: list[Item]) -> list[dict[str, Any]]:
    return [{"price": i.price.model_dump(mode="json"), "quantity": i.quantity} for i in items]


def items_of(doc: dict[str, Any]) -> list[Item]:
    from shared.domain.catalog import Price
    from shared.domain.pricing import Item

    return [Item(price=Price.model_validate(i["price"]), quantity=int(i["quantity"])) for i in doc.get("items") or []]


def first_invoice(db: Any, customer_id: str) -> bool:
    """True when no subscription of ``customer_id`` was ever invoiced (a ``first_time_only`` promotion code's rule).

    Asked of the subscriptions (``customer_id`` is indexed) rather than of the invoices, whose buyer is a copy
    exempt from indexing.
    """
    from google.cloud.firestore_v1.base_query import FieldFilter

    q = subs(db).where(filter=FieldFilter("customer_id", "==", customer_id))
    return all(state_of(s.to_dict() or {}).last_billed < 0 for s in q.stream())


# A reference in a request body that does not resolve is a 422 of the request, not a 404 of the route.
_UNKNOWN = {"coupon_not_found": "unknown_coupon", "promotion_code_not_found": "unknown_promotion_code"}


def redeem_for(
    db: Any, coupons: Any, sub_id: str, body: DiscountIn, *, customer_id: str, items: list[Item], at: Any, start: int
) -> Any:
    """Redeem the coupon or code of ``body`` for subscription ``sub_id`` once, with every restriction checked:
    expiry, limits (exact under concurrency: :meth:`shared.billing.coupons.CouponStore.redeem`), the currency of a
    fixed coupon, the products of the items, the code's customer, first-time and minimum (the first period's
    item amounts before discounts)."""
    from shared.domain.money import Money
    from shared.domain.pricing import line_amount

    currency = items[0].price.currency
    subtotal = Money.zero(currency)
    for i in items:
        subtotal = subtotal + line_amount(i.price, i.quantity)
    try:
        return _billing_call(
            coupons.redeem,
            redemption_id(sub_id, body),
            coupon_id=body.coupon,
            code=body.promotion_code,
            customer_id=customer_id,
            currency=currency,
            at=at,
            start_period=start,
            first_time=first_invoice(db, customer_id),
            subtotal=subtotal,
            products=[i.price.product_id for i in items],
        )
    except ServiceError as exc:
        if exc.code in _UNKNOWN:
            raise ServiceError(422, _UNKNOWN[exc.code], exc.detail) from None
        raise


def redemption_id(sub_id: str, body: DiscountIn) -> str:
    """One redemption per subscription and coupon/code: a retried request redeems nothing twice."""
    what = body.coupon or f"code-{(body.promotion_code or '').upper()}"
    return f"{sub_id}-{what}"[:150]


def items_document(
    body: CreateItemsSubscription,
    now: dt.datetime,
    *,
    sub_id: str,
    customer: Any,
    items: list[Item],
    discounts: list[dict[str, Any]],
    payment_method: dict[str, Any] | None,
) -> tuple[dict[str, Any], SubscriptionTransitioned]:
    """The Firestore document of a new subscription with items and its ``created`` event (pure; no I/O)."""
    from shared.renewals import lifecycle

    trial_end = now + dt.timedelta(days=body.trial_days) if body.trial_days else None
    zone_name = body.anchor_zone or customer.doc.get("time_zone") or "Etc/UTC"
    rec = items[0].price.recurring
    assert rec is not None
    schedule = Schedule(Anchor.at(trial_end or now, zone_name), Cadence(rec.interval, rec.interval_count))
    ch = new_subscription(id=sub_id, customer_id=customer.id, schedule=schedule, now=now, trial_end=trial_end)
    assert ch.transition is not None
    event = lifecycle.transition_event(ch.state, ch.transition)
    doc: dict[str, Any] = {
        "id": sub_id,
        "customer": customer.party().model_dump(mode="json"),
        "customer_id": customer.id,
        "seller_entity": body.seller_entity,
        "plan": None,
        "items": _item_docs(items),
        "currency": items[0].price.currency,
        "cadence": {"interval": rec.interval.value, "interval_count": rec.interval_count},
        "discounts": discounts,
        "anchor_local": schedule.anchor.local.isoformat(),
        "anchor_zone": zone_name,
        "collection": body.collection,
        "days_until_due": body.days_until_due,
        "payment_method": payment_method,
        "shard": shard_of(sub_id),
        "pending_lines": [],
        "pending_charges": [],
        "created_at": now,
        "request_hash": _hash(body),
        **state_fields(ch.state),
        **lifecycle.recorded(lifecycle.stored(event), created=True),
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

        from shared.renewals import lifecycle

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

            # The attempt documents are the claims; their results live on the subscription (``charges``, the
            # older ones in its archive).
            q = attempts(db).where(filter=FieldFilter("subscription_id", "==", sub_id))
            rows = []
            for s in q.stream():
                a = {k: v for k, v in (s.to_dict() or {}).items() if k != "payment_method"}
                rows.append({**a, **(result_on_subscription(doc, s.id, db) or {})})
            out["attempts"] = _iso(sorted(rows, key=lambda a: (str(a.get("created_at")), int(a.get("attempt", 0)))))
        return out

    def list_subscriptions(self, page: Any, *, customer: str | None = None) -> dict[str, Any]:
        """Subscriptions newest first, optionally of one customer, cursor-paginated like every billing list."""
        from shared.billing.pagination import list_page

        filters = {"customer_id": customer} if customer else None
        scope = f"/subscriptions?customer={customer or ''}"
        return list_page(subs(self.deps.db()), scope, page, view, filters=filters).body()

    def _mutate(self, sub_id: str, fn: Any) -> dict[str, Any]:
        """Run ``fn(doc, state) -> (update, event|None)`` in a transaction; publish the event afterwards."""
        from google.cloud import firestore

        from shared.renewals import lifecycle

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
        from shared.renewals import lifecycle

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
                update |= lifecycle.recorded(event)
            return update, event

        return self._mutate(sub_id, fn)

    def change_plan(self, sub_id: str, body: ChangePlan) -> dict[str, Any]:
        """Switch plans now; the unused old time is credited and the new time charged on the next invoice."""
        from shared.events.billing import LineIn
        from shared.subscriptions.commands import PlanIn

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

    # -- subscriptions with items ------------------------------------------------------------------------------
    def create_with_items(self, body: CreateItemsSubscription) -> tuple[int, dict[str, Any]]:
        """Create a subscription of catalog items; customer, prices and discount are checked now (422/409)."""
        from google.api_core.exceptions import AlreadyExists, Conflict

        from shared.invoicing.entities import UnknownSeller, seller
        from shared.renewals import lifecycle

        try:
            seller(body.seller_entity)
        except UnknownSeller:
            raise ServiceError(422, "unknown_seller_entity", f"no legal entity {body.seller_entity!r}") from None
        customers, catalog, coupons = _stores(self.deps)
        try:
            customer = customers.get(body.customer)
        except Exception as exc:
            if getattr(exc, "status", None) == 404:
                raise ServiceError(422, "unknown_customer", f"no customer {body.customer!r}") from None
            raise
        items = _items(catalog, body.items)
        if items[0].price.currency != customer.currency:
            raise ServiceError(422, "currency_mismatch", f"the customer is billed in {customer.currency}")
        pm = body.payment_method.model_dump(mode="json") if body.payment_method else None
        if pm is None and (default := customer.default_payment_method()) is not None:
            pm = default.model_dump(mode="json")
        if body.collection == "charge_automatically" and pm is None:
            raise ServiceError(422, "payment_method_required", "charge_automatically needs a payment method")
        if pm is not None:
            check_references_psp(pm["psp"])
        now = self._now(body.start_at)
        sub_id = body.subscription_id or f"sub_{uuid.uuid4().hex[:20]}"
        discounts = []
        if body.discount is not None:
            applied = redeem_for(
                self.deps.db(), coupons, sub_id, body.discount, customer_id=customer.id, items=items, at=now, start=0
            )
            discounts.append(applied.model_dump(mode="json"))
        doc, event = items_document(
            body, now, sub_id=sub_id, customer=customer, items=items, discounts=discounts, payment_method=pm
        )
        # Without a method of its own the subscription charges the customer's default, as it changes.
        doc["payment_method_from"] = "subscription" if body.payment_method else "customer"
        doc["customer_synced_at"] = customer.doc.get("updated_at")
        ref = subs(self.deps.db()).document(sub_id)
        try:
            ref.create(doc)
        except (AlreadyExists, Conflict):
            existing = ref.get().to_dict() or {}
            if existing.get("request_hash") != doc["request_hash"]:
                raise ServiceError(409, "subscription_exists", f"{sub_id} exists with different terms") from None
            return 200, view(existing)
        self.deps.publisher.publish_all([lifecycle.outbox_item(event, now)])
        log.info("subscription with items created", extra={"subscription_id": sub_id, "items": len(items)})
        return 201, view(doc)

    def change_items(self, sub_id: str, body: ChangeItems) -> dict[str, Any]:
        """Add, remove and re-quantify items now; each change is prorated against the invoiced period
        (:func:`shared.domain.pricing.item_change`) and its lines wait for the next invoice, billed once."""
        from shared.domain.pricing import item_change

        now = self._now(body.at)
        rounding = proration_rounding()
        _, catalog, _ = _stores(self.deps)
        current = subs(self.deps.db()).document(sub_id).get().to_dict()
        if current is None:
            raise ServiceError(404, "subscription_not_found", sub_id)
        known = {i.price.id: i.price for i in items_of(current)}
        new_items = _items(catalog, body.items, known)  # prices are immutable: read outside the transaction

        def fn(doc: dict[str, Any], state: Any) -> tuple[dict[str, Any], dict[str, Any] | None]:
            if not doc.get("items"):
                raise ServiceError(409, "not_an_items_subscription", "migrate the plan to items first")
            if state.status == "canceled":
                raise ServiceError(409, "subscription_canceled", "a canceled subscription cannot change items")
            old = {i.price.id: i for i in items_of(doc)}
            new = {i.price.id: i for i in new_items}
            if (
                new_items[0].price.currency != doc["currency"]
                or new_items[0].price.recurring != next(iter(old.values())).price.recurring
            ):
                raise ServiceError(422, "incompatible_items", "items keep the currency and the cadence")
            charges = list(doc.get("pending_charges") or [])
            period = proration_period(state, now)
            if period is not None:
                for pid in [*old, *(p for p in new if p not in old)]:
                    a, b = old.get(pid), new.get(pid)
                    if a != b:
                        for line in item_change(a, b, period, now, rounding=rounding):
                            charges.append(line.model_dump(mode="json"))
            return {"items": _item_docs(new_items), "pending_charges": charges}, None

        return self._mutate(sub_id, fn)

    def apply_discount(self, sub_id: str, body: ApplyDiscount) -> dict[str, Any]:
        """Attach a coupon or promotion code from the next period to be invoiced on (once per coupon/code)."""
        now = self._now(body.at)
        _, _, coupons = _stores(self.deps)
        current = subs(self.deps.db()).document(sub_id).get().to_dict()
        if current is None:
            raise ServiceError(404, "subscription_not_found", sub_id)
        if not current.get("items"):
            raise ServiceError(409, "not_an_items_subscription", "migrate the plan to items first")
        state = state_of(current)
        items = items_of(current)
        start = state.last_billed + 1
        applied = redeem_for(
            self.deps.db(), coupons, sub_id, body, customer_id=current["customer_id"], items=items, at=now, start=start
        )

        def fn(doc: dict[str, Any], state: Any) -> tuple[dict[str, Any], dict[str, Any] | None]:
            discounts = list(doc.get("discounts") or [])
            if any(d["id"] == applied.id for d in discounts):
                return {}, None
            return {"discounts": [*discounts, applied.model_dump(mode="json")]}, None

        return self._mutate(sub_id, fn)

    def preview(self, sub_id: str, at: dt.datetime | None = None) -> dict[str, Any]:
        """The next invoice (items, discounts, prorations, tax, credit) composed by THE composition, no writes."""
        now = self._now(at)
        doc = subs(self.deps.db()).document(sub_id).get().to_dict()
        if doc is None:
            raise ServiceError(404, "subscription_not_found", sub_id)
        if not doc.get("items"):
            raise ServiceError(409, "not_an_items_subscription", "the preview composes subscriptions with items")
        out = self._upcoming(doc, now)
        if out is None:
            raise ServiceError(409, "no_upcoming_invoice", "the subscription will not invoice again")
        return out

    def _upcoming(self, doc: dict[str, Any], now: dt.datetime) -> dict[str, Any] | None:
        """The upcoming invoice of ``doc`` as stored or as it would be after a change (None: no further invoice)."""
        from shared.invoicing.documents import compose_request
        from shared.invoicing.entities import seller
        from shared.invoicing.repository import invoice_id_for

        db = self.deps.db()
        sub_id = doc["id"]
        due = upcoming_request(doc, now)
        if due is None:
            return None
        invoice_id = invoice_id_for(due.request_id)
        entries = credit_entries(db, doc["customer_id"], due.currency)
        _, composed = compose_request(
            due, seller(due.seller_entity), credit_entries=entries, invoice_id=invoice_id, at=now
        )
        out = {
            "object": "upcoming_invoice",
            "subscription": sub_id,
            "invoice_id": invoice_id,
            "period_start": due.period_start,
            "period_end": due.period_end,
            "period_index": due.period_index,
            "due_at": due.due_at,
            "collection": due.collection,
            **composed.model_dump(mode="json", exclude={"credit_entry"}),
        }
        return dict(_iso(out))

    # -- migration of an item to a new price ---------------------------------------------------------------------
    def migrate_price(self, sub_id: str, body: MigratePrice) -> dict[str, Any]:
        """Move the item of ``from_price`` to ``to_price`` (same quantity) from the next period invoiced on.

        Prices never change, so a new amount is a new price and an existing subscription keeps its old one
        (grandfathering) until an operator moves it. The period already invoiced stays as invoiced (no proration):
        the next invoice is the first at the new price. ``dry_run`` answers the items and the upcoming invoice before
        and after, and writes nothing; applying it again (or after a concurrent move) is a no-op.
        """
        from shared.domain.pricing import PricingError, replace_price
        from shared.subscriptions.commands import ItemRef

        now = self._now(body.at)
        _, catalog, _ = _stores(self.deps)
        current = subs(self.deps.db()).document(sub_id).get().to_dict()
        if current is None:
            raise ServiceError(404, "subscription_not_found", sub_id)
        if not current.get("items"):
            raise ServiceError(409, "not_an_items_subscription", "migrate the plan to items first")
        (target,) = _items(catalog, [ItemRef(price=body.to_price)])  # 422 unknown_price / price_inactive
        before = items_of(current)
        held = {i.price.id for i in before}
        base = {"subscription": sub_id, "from_price": body.from_price, "to_price": body.to_price}
        if body.from_price not in held:
            if body.to_price in held:
                return {**base, "dry_run": body.dry_run, "migrated": False, "reason": "already on the new price"}
            raise ServiceError(409, "price_not_on_subscription", f"{sub_id} has no item of price {body.from_price}")
        try:
            after = replace_price(before, body.from_price, target.price)
        except PricingError as exc:
            raise ServiceError(422, "incompatible_price", str(exc)) from None
        moved = {**current, "items": _item_docs(list(after))}
        out = {
            **base,
            "dry_run": body.dry_run,
            "effective": "from the next period invoiced; the current period stays as invoiced",
            "before": {"items": current["items"], "upcoming_invoice": self._upcoming(current, now)},
            "after": {"items": moved["items"], "upcoming_invoice": self._upcoming(moved, now)},
        }
        if body.dry_run:
            return dict(_iso(out))

        def fn(doc: dict[str, Any], state: Any) -> tuple[dict[str, Any], dict[str, Any] | None]:
            items = items_of(doc)
            if all(i.price.id != body.from_price for i in items):
                return {}, None  # moved concurrently
            try:
                return {"items": _item_docs(list(replace_price(items, body.from_price, target.price)))}, None
            except PricingError as exc:
                raise ServiceError(422, "incompatible_price", str(exc)) from None

        self._mutate(sub_id, fn)
        log.info("subscription moved to a new price", extra={**base})
        return dict(_iso({**out, "migrated": True}))

    def subscriptions_with_price(self, price_id: str) -> list[str]:
        """Ids of the subscriptions (not canceled) holding an item of ``price_id``: what a price migration moves.

        An operator scan (the items are an array of maps, which Firestore cannot filter on), reading only ``items``.
        """
        out = []
        for snap in subs(self.deps.db()).select(["items", "status"]).stream():
            d = snap.to_dict() or {}
            if d.get("status") != "canceled" and any(i["price"]["id"] == price_id for i in d.get("items") or []):
                out.append(snap.id)
        return sorted(out)

    # -- migration of plan subscriptions to items ----------------------------------------------------------------
    def migrate_to_items(self, sub_id: str, *, dry_run: bool = False) -> dict[str, Any]:
        """Move a subscription of plan lines to catalog items (same amounts, same anchor, same period pointers).

        Each plan line becomes a price ``legacy-<plan>-<hash of its terms>`` of product ``legacy-<plan>`` (identical
        lines share a price, their quantities add up); waiting proration lines become waiting charges. ``dry_run``
        answers the before/after and writes nothing. Running it again is a no-op.
        """
        db = self.deps.db()
        doc = subs(db).document(sub_id).get().to_dict()
        if doc is None:
            raise ServiceError(404, "subscription_not_found", sub_id)
        if doc.get("items"):
            return {"subscription": sub_id, "migrated": False, "reason": "already has items"}
        product, prices, after = migration_of(doc)
        out = {
            "subscription": sub_id,
            "dry_run": dry_run,
            "before": {"plan": doc["plan"], "pending_lines": doc.get("pending_lines") or []},
            "after": after,
        }
        if dry_run:
            return out
        _, catalog, _ = _stores(self.deps)
        from shared.billing.catalog import CreatePrice, CreateProduct

        _billing_call(catalog.create_product, CreateProduct(id=product, name=f"{doc['plan']['id']} (plan)"))
        for p in prices:
            fields = p.model_dump(mode="json", exclude={"product_id", "created_at"})
            _billing_call(catalog.create_price, CreatePrice.model_validate({**fields, "product": p.product_id}))

        def fn(current: dict[str, Any], state: Any) -> tuple[dict[str, Any], dict[str, Any] | None]:
            if current.get("items"):
                return {}, None
            _, _, fresh = migration_of(current)  # the pending lines as they are now
            return {**fresh, "plan": None, "legacy_plan": current["plan"], "pending_lines": []}, None

        self._mutate(sub_id, fn)
        return {**out, "migrated": True}


def migration_of(doc: dict[str, Any]) -> tuple[str, list[Price], dict[str, Any]]:
    """The catalog product, prices and subscription fields replacing a plan of lines (pure)."""
    from shared.domain.catalog import Price, TaxBehavior
    from shared.domain.money import Money
    from shared.domain.pricing import ChargeLine, Item, LineKind
    from shared.events.billing import LineIn
    from shared.subscriptions.commands import PlanIn

    plan = PlanIn.model_validate(doc["plan"])
    product = f"legacy-{plan.id}"[:100]
    recurring = {"interval": plan.interval, "interval_count": plan.interval_count}
    by_id: dict[str, tuple[Price, int]] = {}
    for line in plan.lines:
        terms = {"currency": plan.currency, **recurring, "line": line.model_dump(mode="json", exclude={"quantity"})}
        pid = f"{product}-{_hash_of(terms)[:12]}"
        price = Price.model_validate(
            {
                "id": pid,
                "product_id": product,
                "currency": plan.currency,
                "recurring": recurring,
                "tax_category": line.tax_category,
                "pricing": {"model": "per_unit", "unit_amount": str(line.unit_amount.amount)},
                "nickname": line.description[:250],
            }
        )
        q = by_id[pid][1] if pid in by_id else 0
        by_id[pid] = (price, q + line.quantity)
    items = [Item(price=p, quantity=q) for p, q in by_id.values()]
    charges = []
    for raw in doc.get("pending_lines") or []:
        ln = LineIn.model_validate(raw)
        charges.append(
            ChargeLine(
                description=ln.description,
                kind=LineKind.PRORATION,
                price_id=product,
                product_id=product,
                tax_category=ln.tax_category,
                tax_behavior=TaxBehavior.EXCLUSIVE,
                quantity=Decimal(ln.quantity),
                amount=Money(ln.unit_amount.amount * ln.quantity, ln.unit_amount.currency),
                discountable=False,
                period_start=ln.period_start,
                period_end=ln.period_end,
            ).model_dump(mode="json")
        )
    after = {
        "items": _item_docs(items),
        "currency": plan.currency,
        "cadence": recurring,
        "discounts": [],
        "pending_charges": charges,
    }
    return product, [p for p, _ in by_id.values()], after


def _hash_of(value: Any) -> str:
    return hashlib.sha256(json.dumps(value, sort_keys=True).encode()).hexdigest()
