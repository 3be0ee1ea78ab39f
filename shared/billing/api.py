"""The billing routes of the private API (served by the ``subscriptions`` function): one table, the router and
the OpenAPI document are generated from it, so every route is documented by construction.

Every request goes through :mod:`shared.edge` (body limit, safe JSON, bounded models; the wrapper in
:mod:`shared.subscriptions.api` turns an outage into a generic 503 and a bug into a generic 500): a refusal is a
precise 4xx. Creates honour ``Idempotency-Key`` (:mod:`shared.billing.idempotency`); lists are cursor-paginated
(:mod:`shared.billing.pagination`).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from pydantic import BaseModel

from shared.billing import idempotency as idem
from shared.billing.catalog import (
    IMMUTABLE_PRICE_FIELDS,
    CatalogStore,
    CreatePrice,
    CreateProduct,
    PriceOut,
    ProductOut,
    UpdatePrice,
    UpdateProduct,
)
from shared.billing.coupons import CouponOut, CouponStore, CreateCoupon, CreatePromotionCode, PromotionCodeOut
from shared.billing.credit import (
    BalanceEntryOut,
    CreateCreditGrant,
    CreateCreditNote,
    CreditNoteOut,
    CreditStore,
    ReverseEntry,
)
from shared.billing.customers import CreateCustomer, CustomerOut, CustomerStore, UpdateCustomer
from shared.billing.deps import DEFAULT_DEPS, BillingDeps, BillingError
from shared.billing.pagination import Page, page_request
from shared.edge import EdgeError, firestore_id_problem, json_body
from shared.http import JsonResponse

MAX_PATH_CHARS = 512


@dataclass(frozen=True, slots=True)
class BillingService:
    """The billing stores over one set of collaborators (tests inject a dying Firestore or a fixed clock)."""

    deps: BillingDeps = DEFAULT_DEPS

    @property
    def customers(self) -> CustomerStore:
        return CustomerStore(self.deps)

    @property
    def catalog(self) -> CatalogStore:
        return CatalogStore(self.deps)

    @property
    def coupons(self) -> CouponStore:
        return CouponStore(self.deps)

    @property
    def credit(self) -> CreditStore:
        return CreditStore(self.deps)

    @property
    def keys(self) -> idem.IdempotencyKeys:
        return idem.IdempotencyKeys(self.deps.db, self.deps.clock)


@dataclass(frozen=True, slots=True)
class Call:
    """What a route's handler gets: the service, path parameters, the validated body, query, derived id."""

    service: BillingService
    params: Mapping[str, str]
    body: Any
    args: Mapping[str, str]
    derived_id: str | None = None


Handler = Callable[[Call], "tuple[int, Any]"]


@dataclass(frozen=True, slots=True)
class Route:
    method: str
    template: str
    operation: str
    summary: str
    handler: Handler
    response: type[BaseModel] | None
    request: type[BaseModel] | None = None
    list_of: bool = False
    create_prefix: str | None = None  # idempotent create: the prefix of ids derived from Idempotency-Key
    query: tuple[tuple[str, str], ...] = ()  # (name, description) of filters beyond limit/starting_after
    errors: tuple[int, ...] = ()
    status: int | None = None  # the success status when it is neither 201 (creates) nor 200
    pattern: re.Pattern[str] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        regex = re.sub(r"\{(\w+)\}", r"(?P<\1>[^/]+)", self.template)
        object.__setattr__(self, "pattern", re.compile(f"^{regex}/?$"))

    @property
    def ok_status(self) -> int:
        return self.status or (201 if self.create_prefix else 200)

    @property
    def params(self) -> list[str]:
        return re.findall(r"\{(\w+)\}", self.template)


def _page(call: Call) -> Any:
    return page_request(call.args)


def _filter(call: Call, name: str) -> str | None:
    value = call.args.get(name)
    if value is not None and firestore_id_problem(value):
        raise EdgeError(400, "invalid_filter", f"{name}: {firestore_id_problem(value)}")
    return value


def _listed(page: Page) -> tuple[int, Any]:
    return 200, page.body()


def _grant(c: Call) -> tuple[int, Any]:
    return c.service.credit.grant(c.params["customer_id"], c.body, entry_id=c.derived_id)


def _credit_note(c: Call) -> tuple[int, Any]:
    return c.service.credit.credit_invoice(c.params["invoice_id"], c.body, key=c.derived_id)


def _reverse(c: Call) -> tuple[int, Any]:
    return 201, c.service.credit.reverse(c.params["customer_id"], c.params["entry_id"], reason=c.body.reason)


ROUTES: tuple[Route, ...] = (
    Route(
        "POST",
        "/customers",
        "createCustomer",
        "Create a customer",
        lambda c: c.service.customers.create(c.body, derived_id=c.derived_id),
        CustomerOut,
        CreateCustomer,
        create_prefix="cus",
        errors=(409, 422),
    ),
    Route(
        "GET",
        "/customers",
        "listCustomers",
        "List customers, newest first",
        lambda c: _listed(c.service.customers.list(_page(c))),
        CustomerOut,
        list_of=True,
    ),
    Route(
        "GET",
        "/customers/{customer_id}",
        "getCustomer",
        "A customer with its credit balance",
        lambda c: (200, c.service.customers.show(c.params["customer_id"])),
        CustomerOut,
        errors=(404,),
    ),
    Route(
        "POST",
        "/customers/{customer_id}",
        "updateCustomer",
        "Replace the fields given (not the currency)",
        lambda c: (
            200,
            c.service.customers.update(c.params["customer_id"], c.body, frozenset(c.body.model_fields_set)),
        ),
        CustomerOut,
        UpdateCustomer,
        errors=(404, 422),
    ),
    Route(
        "POST",
        "/customers/{customer_id}/credit_grants",
        "grantCredit",
        "Grant credit to a customer's balance",
        _grant,
        BalanceEntryOut,
        CreateCreditGrant,
        create_prefix="grant",
        errors=(404, 409, 422),
    ),
    Route(
        "GET",
        "/customers/{customer_id}/balance_entries",
        "listBalanceEntries",
        "The customer's balance entries, newest first",
        lambda c: _listed(c.service.credit.list_entries(c.params["customer_id"], _page(c))),
        BalanceEntryOut,
        list_of=True,
        errors=(404,),
    ),
    Route(
        "GET",
        "/customers/{customer_id}/balance_entries/{entry_id}",
        "getBalanceEntry",
        "One balance entry",
        lambda c: (200, c.service.credit.show_entry(c.params["customer_id"], c.params["entry_id"])),
        BalanceEntryOut,
        errors=(404,),
    ),
    Route(
        "POST",
        "/customers/{customer_id}/balance_entries/{entry_id}/reversal",
        "reverseBalanceEntry",
        "Reverse an entry once (its credit must be unspent)",
        _reverse,
        BalanceEntryOut,
        ReverseEntry,
        errors=(404, 409),
        status=201,
    ),
    Route(
        "POST",
        "/invoices/{invoice_id}/credit_notes",
        "creditInvoiceToBalance",
        "Issue a credit note on a paid invoice and credit it to the customer's balance (not refunded)",
        _credit_note,
        CreditNoteOut,
        CreateCreditNote,
        create_prefix="cn",
        errors=(404, 409, 422),
    ),
    Route(
        "POST",
        "/products",
        "createProduct",
        "Create a product",
        lambda c: c.service.catalog.create_product(c.body, derived_id=c.derived_id),
        ProductOut,
        CreateProduct,
        create_prefix="prod",
        errors=(409,),
    ),
    Route(
        "GET",
        "/products",
        "listProducts",
        "List products, newest first",
        lambda c: _listed(c.service.catalog.list_products(_page(c))),
        ProductOut,
        list_of=True,
    ),
    Route(
        "GET",
        "/products/{product_id}",
        "getProduct",
        "A product",
        lambda c: (200, c.service.catalog.show_product(c.params["product_id"])),
        ProductOut,
        errors=(404,),
    ),
    Route(
        "POST",
        "/products/{product_id}",
        "updateProduct",
        "Rename, describe or (de)activate a product",
        lambda c: (
            200,
            c.service.catalog.update_product(c.params["product_id"], c.body, frozenset(c.body.model_fields_set)),
        ),
        ProductOut,
        UpdateProduct,
        errors=(404, 422),
    ),
    Route(
        "POST",
        "/prices",
        "createPrice",
        "Create a price of an existing product",
        lambda c: c.service.catalog.create_price(c.body, derived_id=c.derived_id),
        PriceOut,
        CreatePrice,
        create_prefix="price",
        errors=(409, 422),
    ),
    Route(
        "GET",
        "/prices",
        "listPrices",
        "List prices, newest first",
        lambda c: _listed(c.service.catalog.list_prices(_page(c), product=_filter(c, "product"))),
        PriceOut,
        list_of=True,
        query=(("product", "only this product's prices"),),
    ),
    Route(
        "GET",
        "/prices/{price_id}",
        "getPrice",
        "A price",
        lambda c: (200, c.service.catalog.show_price(c.params["price_id"])),
        PriceOut,
        errors=(404,),
    ),
    Route(
        "POST",
        "/prices/{price_id}",
        "updatePrice",
        "Deactivate or rename a price (nothing else ever changes)",
        lambda c: (
            200,
            c.service.catalog.update_price(c.params["price_id"], c.body, frozenset(c.body.model_fields_set)),
        ),
        PriceOut,
        UpdatePrice,
        errors=(404, 422),
    ),
    Route(
        "POST",
        "/coupons",
        "createCoupon",
        "Create a coupon",
        lambda c: c.service.coupons.create_coupon(c.body, derived_id=c.derived_id),
        CouponOut,
        CreateCoupon,
        create_prefix="coupon",
        errors=(409, 422),
    ),
    Route(
        "GET",
        "/coupons",
        "listCoupons",
        "List coupons, newest first",
        lambda c: _listed(c.service.coupons.list_coupons(_page(c))),
        CouponOut,
        list_of=True,
    ),
    Route(
        "GET",
        "/coupons/{coupon_id}",
        "getCoupon",
        "A coupon with its redemption count",
        lambda c: (200, c.service.coupons.show_coupon(c.params["coupon_id"])),
        CouponOut,
        errors=(404,),
    ),
    Route(
        "POST",
        "/promotion_codes",
        "createPromotionCode",
        "Create a promotion code for an existing coupon",
        lambda c: c.service.coupons.create_code(c.body),
        PromotionCodeOut,
        CreatePromotionCode,
        create_prefix="promo",
        errors=(409, 422),
    ),
    Route(
        "GET",
        "/promotion_codes",
        "listPromotionCodes",
        "List promotion codes, newest first",
        lambda c: _listed(c.service.coupons.list_codes(_page(c), coupon=_filter(c, "coupon"))),
        PromotionCodeOut,
        list_of=True,
        query=(("coupon", "only this coupon's codes"),),
    ),
    Route(
        "GET",
        "/promotion_codes/{code}",
        "getPromotionCode",
        "A promotion code (any case)",
        lambda c: (200, c.service.coupons.show_code(c.params["code"])),
        PromotionCodeOut,
        errors=(404,),
    ),
    Route("GET", "/openapi.json", "getOpenApi", "This document", lambda c: (200, openapi_document()), None),
)


def openapi_document() -> dict[str, Any]:
    from shared.billing.openapi import document

    return document()


def _match(method: str, path: str) -> tuple[Route, dict[str, str]]:
    if len(path) > MAX_PATH_CHARS:
        raise EdgeError(404, "not_found", "no such route")
    allowed = []
    for route in ROUTES:
        m = route.pattern.match(path)
        if m is None:
            continue
        if route.method != method:
            allowed.append(route.method)
            continue
        params = m.groupdict()
        for name, value in params.items():
            problem = firestore_id_problem(value)
            if problem:
                raise EdgeError(404, "invalid_id", f"{name} {problem}")
        return route, params
    if allowed:
        raise EdgeError(405, "method_not_allowed", f"use {' or '.join(sorted(set(allowed)))}")
    raise EdgeError(404, "not_found", "no such route")


def _body(request: Any, route: Route) -> Any:
    assert route.request is not None
    try:
        return json_body(request, route.request)
    except EdgeError as exc:
        if route.request is UpdatePrice and exc.status == 422 and isinstance(exc.detail, list):
            fields = {str(e["loc"][0]) for e in exc.detail if e.get("type") == "extra_forbidden" and e.get("loc")}
            if fields & IMMUTABLE_PRICE_FIELDS:
                names = ", ".join(sorted(fields & IMMUTABLE_PRICE_FIELDS))
                detail = f"{names} of a price never change: create a new price"
                raise EdgeError(422, "price_immutable", detail) from None
        raise


def dispatch(request: Any, service: BillingService) -> JsonResponse:
    """Answer one billing request (the caller wraps it in :func:`shared.edge.http_entry`)."""
    route, params = _match(request.method, request.path or "/")
    body = _body(request, route) if route.request is not None else None
    args = dict(request.args.items())
    key = request.headers.get(idem.HEADER)
    try:
        if key is None or route.create_prefix is None:
            status, out = route.handler(Call(service, params, body, args))
            return JsonResponse(out, status)
        problem = idem.key_problem(key)
        if problem:
            raise EdgeError(400, "invalid_idempotency_key", problem)
        assert body is not None
        derived = idem.derived_id(route.create_prefix, key)
        fingerprint = idem.fingerprint(request.method, request.path, body.model_dump(mode="json"))
        replay = service.keys.run(key, fingerprint, lambda: route.handler(Call(service, params, body, args, derived)))
    except BillingError as exc:
        raise EdgeError(exc.status, exc.code, exc.detail) from exc
    except idem.KeyReused:
        raise EdgeError(422, "idempotency_key_reused", "this Idempotency-Key was used with another request") from None
    except idem.KeyInUse:
        raise EdgeError(409, "idempotency_key_in_use", "a request with this Idempotency-Key is running") from None
    headers = {"Idempotent-Replayed": "true"} if replay.replayed else None
    return JsonResponse(replay.body, replay.status, headers=headers)


DEFAULT_BILLING = BillingService()
