"""The private billing API (IAM-only) served by the ``subscriptions`` function: routing, validation, precise 4xx.

/customers, /products, /prices, /coupons, /promotion_codes, /customers/{id}/credit_grants,
/customers/{id}/balance_entries and /openapi.json are the billing routes (:mod:`shared.billing.api`, documented
by the OpenAPI document it serves); the subscription routes are:

POST /subscriptions                         create (201; 200 for an identical replay; 409 if it differs)
GET  /subscriptions?customer=&limit=&starting_after=   newest first, cursor-paginated
GET  /subscriptions/{id}                    the subscription with its charge attempts
POST /subscriptions/{id}/cancel             {"at_period_end": bool}
POST /subscriptions/{id}/change-plan        {"plan": {...}}: proration lines on the next invoice
POST /subscriptions/{id}/items              {"items": [...]}: the items from now on, prorated per item
POST /subscriptions/{id}/discounts          {"coupon": ...} or {"promotion_code": ...} from the next period
GET  /subscriptions/{id}/preview            the upcoming invoice, composed like the real one, no side effect
POST /subscriptions/{id}/migrate-price      {"from_price", "to_price", "dry_run"}: an item to a new price, next period

Validation is :mod:`shared.edge` (body limit, safe JSON, bounded models, the entry-point wrapper that
turns an outage into a generic 503 and anything unexpected into a generic 500).
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any

from shared.billing.pagination import page_request
from shared.billing.paths import is_billing_path
from shared.edge import EdgeError, firestore_id_problem, http_entry, json_body
from shared.http import JsonResponse
from shared.log import bind, get_logger
from shared.subscriptions.ids import subscription_id_problem
from shared.subscriptions.service import ServiceError, SubscriptionService

if TYPE_CHECKING:
    from shared.billing.api import BillingService

log = get_logger(__name__)

_ROUTE = re.compile(
    r"^/(?:subscriptions(?=/|$))?/?(?P<id>[^/]{1,200})?(?:/(?P<action>cancel|change-plan|items|discounts|preview|migrate-price))?/?$"
)


DEFAULT_SERVICE = SubscriptionService()


@http_entry("subscriptions")
def handle(
    request: Any, service: SubscriptionService = DEFAULT_SERVICE, billing: BillingService | None = None
) -> JsonResponse:
    """Answer one request; ``service`` and ``billing`` carry the collaborators (tests inject a dying Firestore).

    ``billing`` None: the billing API's default service. The billing API (stores, models) is imported by the first
    billing request, not at start: a cold instance answering a subscription request does not load it.
    """
    path = request.path or "/"
    if is_billing_path(path):
        from shared.billing.api import DEFAULT_BILLING
        from shared.billing.api import dispatch as billing_dispatch

        return billing_dispatch(request, DEFAULT_BILLING if billing is None else billing)
    m = _ROUTE.match(path) if len(path) <= 512 else None
    if m is None:
        raise EdgeError(404, "not_found", "no such route")
    sub_id, action = m.group("id"), m.group("action")
    if sub_id == "subscriptions":
        if action:
            raise EdgeError(404, "not_found", "no such route")
        sub_id = None
    if sub_id is not None and subscription_id_problem(sub_id):
        raise EdgeError(404, "invalid_subscription_id", subscription_id_problem(sub_id))
    with bind(subscription_id=sub_id):
        try:
            return _dispatch(service, request, sub_id, action)
        except ServiceError as exc:
            raise EdgeError(exc.status, exc.code, exc.detail) from exc


def _customer_filter(args: Any) -> str | None:
    value = args.get("customer")
    if value is not None and firestore_id_problem(value):
        raise EdgeError(400, "invalid_filter", f"customer: {firestore_id_problem(value)}")
    return str(value) if value is not None else None


def _dispatch(service: SubscriptionService, request: Any, sub_id: str | None, action: str | None) -> JsonResponse:
    if sub_id is None:
        if request.method == "GET":
            return JsonResponse(
                service.list_subscriptions(page_request(request.args), customer=_customer_filter(request.args))
            )
        if request.method != "POST":
            raise EdgeError(405, "method_not_allowed", "POST to create a subscription, GET to list them")
        from shared.subscriptions.commands import CreateAnySubscription, CreateSubscription

        body = json_body(request, CreateAnySubscription).root
        if isinstance(body, CreateSubscription):
            status, out = service.create(body)
        else:
            status, out = service.create_with_items(body)
        return JsonResponse(out, status)
    if action is None:
        if request.method != "GET":
            raise EdgeError(405, "method_not_allowed", "GET a subscription")
        return JsonResponse(service.get(sub_id, with_attempts=True))
    if action == "preview":
        if request.method != "GET":
            raise EdgeError(405, "method_not_allowed", "GET the upcoming invoice")
        return JsonResponse(service.preview(sub_id))
    if request.method != "POST":
        raise EdgeError(405, "method_not_allowed", f"POST to {action}")
    # The request models load with the first command: a read needs none of them.
    from shared.subscriptions.commands import ApplyDiscount, CancelSubscription, ChangeItems, ChangePlan, MigratePrice

    if action == "items":
        return JsonResponse(service.change_items(sub_id, json_body(request, ChangeItems)))
    if action == "migrate-price":
        return JsonResponse(service.migrate_price(sub_id, json_body(request, MigratePrice)))
    if action == "discounts":
        return JsonResponse(service.apply_discount(sub_id, json_body(request, ApplyDiscount)))
    if action == "cancel":
        return JsonResponse(service.cancel(sub_id, json_body(request, CancelSubscription)))
    return JsonResponse(service.change_plan(sub_id, json_body(request, ChangePlan)))
