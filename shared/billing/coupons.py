"""Coupons and promotion codes on Firestore, with redemption counts that are exact under concurrency.

``coupons/{id}`` holds the domain's :class:`~shared.domain.discounts.Coupon` and ``times_redeemed``;
``promotion_codes/{CODE}`` (the code upper-cased: codes are unique case-insensitively) holds the
:class:`~shared.domain.discounts.PromotionCode` and its own ``times_redeemed``. References are checked at creation
(a promotion code's coupon exists, a restricted coupon's products exist, a code's customer exists).

Redeeming (:meth:`CouponStore.redeem`) is ONE compare-and-set that reads the coupon (and the code), asks the
domain whether it may be redeemed now (:func:`shared.domain.discounts.redemption_refusal`: ``redeem_by``,
``max_redemptions``, the code's expiry, limit, customer, minimum), then in one batch creates
``coupon_redemptions/{redemption_id}`` and writes the counters + 1, conditioned on the ``update_time`` of the coupon
(and code) as read. Concurrent redemptions serialise on the coupon document, so ``max_redemptions`` is
never exceeded; the redemption id (the subscription or invoice it is for) makes a retried redemption return the
first one instead of counting twice.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StrictBool, StrictInt, StringConstraints

from shared.billing.customers import COLLECTION as CUSTOMERS
from shared.billing.customers import BillingId, new_id
from shared.billing.deps import DEFAULT_DEPS, BillingDeps, BillingError, iso
from shared.billing.pagination import Page, PageRequest, list_page
from shared.domain.discounts import (
    MAX_DURATION_PERIODS,
    AppliedDiscount,
    Coupon,
    Duration,
    Percent,
    PromotionCode,
    redemption_refusal,
)
from shared.domain.money import Money
from shared.edge import Amount, BoundedDatetime, Int64, firestore_id_problem
from shared.idempotency import payload_hash

COUPONS = "coupons"
CODES = "promotion_codes"
REDEMPTIONS = "coupon_redemptions"

Positive = Annotated[Int64, Field(ge=1)]


class _In(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class CreateCoupon(_In):
    id: BillingId | None = Field(default=None, description="default: generated (coupon_...)")
    name: Annotated[str, StringConstraints(max_length=250)] | None = None
    percent_off: Percent | None = Field(default=None, description="in (0, 100], a decimal string or an integer")
    amount_off: Amount | None = None
    duration: Duration = Duration.ONCE
    duration_in_periods: StrictInt | None = Field(default=None, ge=1, le=MAX_DURATION_PERIODS)
    max_redemptions: Positive | None = None
    redeem_by: BoundedDatetime | None = None
    applies_to_products: tuple[BillingId, ...] | None = Field(default=None, min_length=1, max_length=100)


class CouponOut(BaseModel):
    object: Literal["coupon"] = "coupon"
    id: str
    name: str | None
    percent_off: Percent | None
    amount_off: Money | None
    duration: Duration
    duration_in_periods: int | None
    max_redemptions: int | None
    redeem_by: dt.datetime | None
    applies_to_products: list[str] | None
    times_redeemed: int
    created_at: dt.datetime


class CreatePromotionCode(_In):
    code: Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9-]{1,50}$")]
    coupon: BillingId = Field(description="the coupon's id; it must exist")
    active: StrictBool = True
    expires_at: BoundedDatetime | None = None
    max_redemptions: Positive | None = None
    customer: BillingId | None = Field(default=None, description="only this customer may redeem it; must exist")
    first_time_only: StrictBool = False
    minimum_amount: Amount | None = None


class PromotionCodeOut(BaseModel):
    object: Literal["promotion_code"] = "promotion_code"
    id: str = Field(description="the code upper-cased: GET /promotion_codes/{id} finds it in any case")
    code: str
    coupon: str
    active: bool
    expires_at: dt.datetime | None
    max_redemptions: int | None
    customer: str | None
    first_time_only: bool
    minimum_amount: Money | None
    times_redeemed: int
    created_at: dt.datetime


def coupon_view(doc: dict[str, Any]) -> dict[str, Any]:
    out = {"object": "coupon", **doc["coupon"], "times_redeemed": doc.get("times_redeemed", 0)}
    out["created_at"] = doc["created_at"]
    return dict(iso(out))


def code_view(doc: dict[str, Any]) -> dict[str, Any]:
    code = dict(doc["promotion_code"])
    out = {"object": "promotion_code", "id": doc["id"], **code, "times_redeemed": doc.get("times_redeemed", 0)}
    out["coupon"], out["customer"] = out.pop("coupon_id"), out.pop("customer_id")
    out["created_at"] = doc["created_at"]
    return dict(iso(out))


@dataclass(frozen=True, slots=True)
class CouponStore:
    deps: BillingDeps = DEFAULT_DEPS

    def _col(self, name: str) -> Any:
        return self.deps.db().collection(name)

    def _create(self, name: str, doc_id: str, doc: dict[str, Any], what: str) -> dict[str, Any] | None:
        from google.api_core.exceptions import AlreadyExists, Conflict

        ref = self._col(name).document(doc_id)
        try:
            ref.create(doc)
        except (AlreadyExists, Conflict):
            existing = ref.get().to_dict() or {}
            if existing.get("request_hash") != doc["request_hash"]:
                raise BillingError(409, "resource_exists", f"{what} {doc_id} exists") from None
            return existing
        return None

    def _exists(self, name: str, doc_id: str) -> bool:
        return bool(self._col(name).document(doc_id).get().exists)

    # -- coupons -----------------------------------------------------------------------------------
    def create_coupon(self, body: CreateCoupon, *, derived_id: str | None = None) -> tuple[int, dict[str, Any]]:
        """Products it is restricted to must exist (422 ``unknown_product``)."""
        from shared.billing.catalog import PRODUCTS

        for product in body.applies_to_products or ():
            if not self._exists(PRODUCTS, product):
                raise BillingError(422, "unknown_product", f"no product {product!r}")
        cid = body.id or derived_id or new_id("coupon")
        fields = body.model_dump(mode="json", exclude={"id"})
        try:
            coupon = Coupon.model_validate({**fields, "id": cid})
        except ValueError as exc:
            raise BillingError(422, "invalid_coupon", str(exc)) from None
        now = self.deps.clock()
        doc = {"id": cid, "coupon": coupon.model_dump(mode="json"), "times_redeemed": 0, "created_at": now}
        doc["request_hash"] = payload_hash(fields)
        existing = self._create(COUPONS, cid, doc, "coupon")
        return (200, coupon_view(existing)) if existing else (201, coupon_view(doc))

    def coupon_doc(self, coupon_id: str) -> dict[str, Any]:
        snap = self._col(COUPONS).document(coupon_id).get()
        if not snap.exists:
            raise BillingError(404, "coupon_not_found", coupon_id)
        return snap.to_dict() or {}

    def show_coupon(self, coupon_id: str) -> dict[str, Any]:
        return coupon_view(self.coupon_doc(coupon_id))

    def list_coupons(self, page: PageRequest) -> Page:
        return list_page(self._col(COUPONS), "/coupons", page, coupon_view)

    # -- promotion codes ---------------------------------------------------------------------------
    def create_code(self, body: CreatePromotionCode) -> tuple[int, dict[str, Any]]:
        """The coupon (422 ``unknown_coupon``) and the customer (422 ``unknown_customer``) must exist."""
        coupon_snap = self._col(COUPONS).document(body.coupon).get()
        if not coupon_snap.exists:
            raise BillingError(422, "unknown_coupon", f"no coupon {body.coupon!r}")
        if body.customer is not None and not self._exists(CUSTOMERS, body.customer):
            raise BillingError(422, "unknown_customer", f"no customer {body.customer!r}")
        fields = body.model_dump(mode="json")
        raw = {k: v for k, v in fields.items() if k not in ("coupon", "customer")}
        code = PromotionCode.model_validate({**raw, "coupon_id": body.coupon, "customer_id": body.customer})
        now = self.deps.clock()
        doc: dict[str, Any] = {"id": code.key, "coupon_id": body.coupon, "promotion_code": code.model_dump(mode="json")}
        doc |= {"times_redeemed": 0, "created_at": now, "request_hash": payload_hash(fields)}
        existing = self._create(CODES, code.key, doc, "promotion code")
        return (200, code_view(existing)) if existing else (201, code_view(doc))

    def code_doc(self, code: str) -> dict[str, Any]:
        key = code.strip().upper()
        snap = self._col(CODES).document(key).get() if key else None
        if snap is None or not snap.exists:
            raise BillingError(404, "promotion_code_not_found", code)
        return snap.to_dict() or {}

    def show_code(self, code: str) -> dict[str, Any]:
        return code_view(self.code_doc(code))

    def list_codes(self, page: PageRequest, *, coupon: str | None = None) -> Page:
        filters = {"coupon_id": coupon} if coupon else None
        return list_page(self._col(CODES), f"/promotion_codes?coupon={coupon or ''}", page, code_view, filters=filters)

    # -- redemption --------------------------------------------------------------------------------
    def redeem(
        self,
        redemption_id: str,
        *,
        coupon_id: str | None = None,
        code: str | None = None,
        customer_id: str | None,
        currency: str,
        at: dt.datetime | None = None,
        start_period: int = 0,
        first_time: bool = False,
        subtotal: Money | None = None,
        products: list[str] | None = None,
    ) -> AppliedDiscount:
        """Redeem a coupon (directly or through a promotion code) once for ``redemption_id``.

        Refusals are 409 with the domain's reason as the code (``coupon_exhausted``, ``coupon_expired``,
        ``promotion_expired`` ...). A retry with the same ``redemption_id`` returns the stored discount and counts
        nothing; the same id for another coupon is 409 ``redemption_exists``.
        """
        from google.api_core.exceptions import AlreadyExists, Conflict

        from shared.idempotency import Stale, precondition, retry_on_contention

        if (coupon_id is None) == (code is None):
            raise BillingError(422, "invalid_request", "give exactly one of coupon and promotion code")
        problem = firestore_id_problem(redemption_id)
        if problem:
            raise BillingError(422, "invalid_redemption_id", f"redemption id {problem}")
        db = self.deps.db()
        when = at or self.deps.clock()
        red_ref = db.collection(REDEMPTIONS).document(redemption_id)

        def step() -> dict[str, Any]:
            red = red_ref.get()
            code_snap = db.collection(CODES).document(code.strip().upper()).get() if code is not None else None
            if code_snap is not None and not code_snap.exists:
                raise BillingError(404, "promotion_code_not_found", code)
            code_doc = code_snap.to_dict() or {} if code_snap is not None else None
            cid = code_doc["coupon_id"] if code_doc else coupon_id
            assert cid is not None
            coupon_snap = db.collection(COUPONS).document(cid).get()
            if not coupon_snap.exists:
                raise BillingError(404, "coupon_not_found", cid)
            coupon_doc = coupon_snap.to_dict() or {}
            if red.exists:
                stored = red.to_dict() or {}
                if stored.get("coupon_id") != cid or stored.get("code") != (code_doc or {}).get("id"):
                    raise BillingError(409, "redemption_exists", f"{redemption_id} redeemed another discount")
                return dict(stored["applied"])
            coupon = Coupon.model_validate(coupon_doc["coupon"])
            promo = PromotionCode.model_validate(code_doc["promotion_code"]) if code_doc else None
            refusal = redemption_refusal(
                coupon,
                at=when,
                times_redeemed=int(coupon_doc.get("times_redeemed", 0)),
                currency=currency,
                promotion=promo,
                promotion_times_redeemed=int((code_doc or {}).get("times_redeemed", 0)),
                customer_id=customer_id,
                first_time=first_time,
                subtotal=subtotal,
                products=products,
            )
            if refusal is not None:
                raise BillingError(409, refusal, f"cannot redeem {cid} now: {refusal}")
            applied = AppliedDiscount(
                id=redemption_id,
                coupon=coupon,
                start_period=start_period,
                applied_at=when,
                promotion_code=promo.key if promo else None,
            ).model_dump(mode="json")
            record = {"coupon_id": cid, "code": promo.key if promo else None, "customer_id": customer_id}
            batch = db.batch()
            batch.create(red_ref, {**record, "applied": applied, "created_at": when})
            count = int(coupon_doc.get("times_redeemed", 0)) + 1
            batch.update(coupon_snap.reference, {"times_redeemed": count}, option=precondition(coupon_snap.update_time))
            if code_snap is not None:
                count = int((code_doc or {}).get("times_redeemed", 0)) + 1
                batch.update(code_snap.reference, {"times_redeemed": count}, option=precondition(code_snap.update_time))
            try:
                batch.commit()
            except (AlreadyExists, Conflict):
                raise Stale from None  # redeemed concurrently under the same id: the next read finds it
            return applied

        return AppliedDiscount.model_validate(retry_on_contention(step, what=red_ref.path))
