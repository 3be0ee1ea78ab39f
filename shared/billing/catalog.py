"""Products and prices on Firestore (``products/{id}``, ``prices/{id}``), validated by the domain's models.

A price is immutable once created: only ``active`` and ``nickname`` change (the domain's
:func:`shared.domain.catalog.check_price_update`, applied as if every price were used, because an invoice or a
quote may name it at any moment after creation); a new amount, model, currency or cadence is a new price, and the
old one is deactivated. A product has any number of prices, in several currencies. References are checked at
creation: a price's product exists.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StrictBool, StringConstraints

from shared.billing.customers import BillingId, Currency, new_id
from shared.billing.deps import DEFAULT_DEPS, BillingDeps, BillingError, iso
from shared.billing.pagination import Page, PageRequest, list_page
from shared.domain.catalog import (
    MUTABLE_WHEN_USED,
    CatalogError,
    Price,
    PriceModel,
    Product,
    Recurring,
    TaxBehavior,
    check_price_update,
)
from shared.idempotency import payload_hash, update_if_unchanged

PRODUCTS = "products"
PRICES = "prices"

TaxCategory = Literal["standard", "reduced"]


class _In(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class CreateProduct(_In):
    id: BillingId | None = Field(default=None, description="default: generated (prod_...)")
    name: Annotated[str, StringConstraints(min_length=1, max_length=250)]
    description: Annotated[str, StringConstraints(max_length=500)] | None = None
    active: StrictBool = True


class UpdateProduct(_In):
    name: Annotated[str, StringConstraints(min_length=1, max_length=250)] | None = None
    description: Annotated[str, StringConstraints(max_length=500)] | None = None
    active: StrictBool | None = None


class ProductOut(BaseModel):
    object: Literal["product"] = "product"
    id: str
    name: str
    description: str | None
    active: bool
    created_at: dt.datetime
    updated_at: dt.datetime


class CreatePrice(_In):
    id: BillingId | None = Field(default=None, description="default: generated (price_...)")
    product: BillingId = Field(description="the product's id; it must exist")
    currency: Currency
    recurring: Recurring | None = Field(default=None, description="null: a one-off price")
    tax_category: TaxCategory = "standard"
    tax_behavior: TaxBehavior = TaxBehavior.EXCLUSIVE
    pricing: PriceModel
    active: StrictBool = True
    nickname: Annotated[str, StringConstraints(max_length=250)] | None = None


class UpdatePrice(_In):
    """Only these change; anything that sets the amount is refused with 422 ``price_immutable``."""

    active: StrictBool | None = None
    nickname: Annotated[str, StringConstraints(max_length=250)] | None = None


# Fields of a price a client may try to send to an update: answered ``price_immutable`` rather than "unknown field".
IMMUTABLE_PRICE_FIELDS = frozenset(CreatePrice.model_fields) - MUTABLE_WHEN_USED


class PriceOut(BaseModel):
    object: Literal["price"] = "price"
    id: str
    product: str
    currency: str
    recurring: Recurring | None
    tax_category: str
    tax_behavior: TaxBehavior
    pricing: PriceModel
    active: bool
    nickname: str | None
    created_at: dt.datetime


def product_view(doc: dict[str, Any]) -> dict[str, Any]:
    return dict(iso({"object": "product", **{k: doc.get(k) for k in ProductOut.model_fields if k != "object"}}))


def price_view(doc: dict[str, Any]) -> dict[str, Any]:
    price = doc["price"]
    out = {"object": "price", **{k: v for k, v in price.items() if k != "product_id"}, "product": price["product_id"]}
    out["created_at"] = doc["created_at"]
    return dict(iso(out))


def price_of(doc: dict[str, Any]) -> Price:
    return Price.model_validate(doc["price"])


@dataclass(frozen=True, slots=True)
class CatalogStore:
    deps: BillingDeps = DEFAULT_DEPS

    def _col(self, name: str) -> Any:
        return self.deps.db().collection(name)

    def _create(self, name: str, doc_id: str, doc: dict[str, Any], what: str) -> tuple[int, dict[str, Any]] | None:
        """Create once; a replay of the same request (by hash) answers the stored one, another is 409."""
        from google.api_core.exceptions import AlreadyExists, Conflict

        ref = self._col(name).document(doc_id)
        try:
            ref.create(doc)
        except (AlreadyExists, Conflict):
            existing = ref.get().to_dict() or {}
            if existing.get("request_hash") != doc["request_hash"]:
                raise BillingError(409, "resource_exists", f"{what} {doc_id} exists") from None
            return 200, existing
        return None

    # -- products ----------------------------------------------------------------------------------
    def create_product(self, body: CreateProduct, *, derived_id: str | None = None) -> tuple[int, dict[str, Any]]:
        now = self.deps.clock()
        pid = body.id or derived_id or new_id("prod")
        product = Product(id=pid, name=body.name, active=body.active)  # the domain's rules
        fields = body.model_dump(mode="json", exclude={"id"})
        doc = {**product.model_dump(mode="json"), "description": body.description, "created_at": now}
        doc |= {"updated_at": now, "request_hash": payload_hash(fields)}
        replay = self._create(PRODUCTS, pid, doc, "product")
        return (replay[0], product_view(replay[1])) if replay else (201, product_view(doc))

    def product_doc(self, product_id: str) -> dict[str, Any]:
        snap = self._col(PRODUCTS).document(product_id).get()
        if not snap.exists:
            raise BillingError(404, "product_not_found", product_id)
        return snap.to_dict() or {}

    def show_product(self, product_id: str) -> dict[str, Any]:
        return product_view(self.product_doc(product_id))

    def update_product(self, product_id: str, body: UpdateProduct, raw_keys: frozenset[str]) -> dict[str, Any]:
        changes = {k: v for k, v in body.model_dump(mode="json").items() if k in raw_keys}
        if changes.get("name", "") is None or changes.get("active", True) is None:
            raise BillingError(422, "invalid_request", "name and active cannot be null")
        out: dict[str, Any] = {}

        def change(doc: dict[str, Any] | None) -> dict[str, Any]:
            if doc is None:
                raise BillingError(404, "product_not_found", product_id)
            Product(id=doc["id"], name=changes.get("name", doc["name"]), active=changes.get("active", doc["active"]))
            update = {**changes, "updated_at": self.deps.clock()}
            out["doc"] = {**doc, **update}
            return update

        update_if_unchanged(self._col(PRODUCTS).document(product_id), change)
        return product_view(out["doc"])

    def list_products(self, page: PageRequest) -> Page:
        return list_page(self._col(PRODUCTS), "/products", page, product_view)

    # -- prices ------------------------------------------------------------------------------------
    def create_price(self, body: CreatePrice, *, derived_id: str | None = None) -> tuple[int, dict[str, Any]]:
        """The product must exist (422 ``unknown_product``); the price is checked by the domain's model."""
        now = self.deps.clock()
        snap = self._col(PRODUCTS).document(body.product).get()
        if not snap.exists:
            raise BillingError(422, "unknown_product", f"no product {body.product!r}")
        pid = body.id or derived_id or new_id("price")
        fields = body.model_dump(mode="json", exclude={"id"})
        raw = {k: v for k, v in fields.items() if k != "product"} | {"id": pid, "product_id": body.product}
        try:
            price = Price.model_validate({**raw, "created_at": now})
        except ValueError as exc:  # the model's own checks beyond the request's (a ValidationError is one)
            raise BillingError(422, "invalid_price", str(exc)) from None
        doc = {
            "id": pid,
            "product_id": body.product,
            "currency": price.currency,
            "active": price.active,
            "price": price.model_dump(mode="json"),
            "created_at": now,
            "request_hash": payload_hash(fields),
        }
        replay = self._create(PRICES, pid, doc, "price")
        return (replay[0], price_view(replay[1])) if replay else (201, price_view(doc))

    def price_doc(self, price_id: str) -> dict[str, Any]:
        snap = self._col(PRICES).document(price_id).get()
        if not snap.exists:
            raise BillingError(404, "price_not_found", price_id)
        return snap.to_dict() or {}

    def price(self, price_id: str) -> Price:
        """The domain's price (what subscriptions and invoices compute with)."""
        return price_of(self.price_doc(price_id))

    def show_price(self, price_id: str) -> dict[str, Any]:
        return price_view(self.price_doc(price_id))

    def update_price(self, price_id: str, body: UpdatePrice, raw_keys: frozenset[str]) -> dict[str, Any]:
        """Deactivate or rename; the domain refuses anything else on a used price (every price counts as used)."""
        changes = {k: v for k, v in body.model_dump(mode="json").items() if k in raw_keys}
        if "active" in changes and changes["active"] is None:
            raise BillingError(422, "invalid_request", "active cannot be null")
        out: dict[str, Any] = {}

        def change(doc: dict[str, Any] | None) -> dict[str, Any]:
            if doc is None:
                raise BillingError(404, "price_not_found", price_id)
            current = price_of(doc)
            proposed = current.model_copy(update=changes)
            try:
                check_price_update(current, proposed, used=True)
            except CatalogError as exc:
                raise BillingError(422, "price_immutable", str(exc)) from None
            update = {"price": proposed.model_dump(mode="json"), "active": proposed.active}
            out["doc"] = {**doc, **update}
            return update

        update_if_unchanged(self._col(PRICES).document(price_id), change)
        return price_view(out["doc"])

    def list_prices(self, page: PageRequest, *, product: str | None = None) -> Page:
        filters = {"product_id": product} if product else None
        return list_page(self._col(PRICES), f"/prices?product={product or ''}", page, price_view, filters=filters)
