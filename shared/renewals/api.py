"""The private subscriptions HTTP API (IAM-only): routing, validation and precise 4xx answers.

POST /subscriptions                         create (201; 200 for an identical replay; 409 if it differs)
GET  /subscriptions/{id}                    the subscription with its charge attempts
POST /subscriptions/{id}/cancel             {"at_period_end": bool}
POST /subscriptions/{id}/change-plan        {"plan": {...}}: proration lines on the next invoice
"""

from __future__ import annotations

import re
from typing import Any

from shared.http import JsonResponse, error, json_body, request_context
from shared.log import get_logger
from shared.renewals import service

log = get_logger(__name__)

_ROUTE = re.compile(r"^/(?:subscriptions)?/?(?P<id>[A-Za-z0-9_.:-]{1,128})?(?:/(?P<action>cancel|change-plan))?/?$")


def handle(request: Any) -> JsonResponse:
    m = _ROUTE.match(request.path or "/")
    sub_id = m.group("id") if m else None
    action = m.group("action") if m else None
    with request_context(request, fn="subscriptions", subscription_id=sub_id):
        if m is None or (sub_id in (None, "subscriptions") and action):
            return error(404, "not_found", f"no route {request.path}")
        if sub_id == "subscriptions":
            sub_id = None
        try:
            if sub_id is None:
                if request.method != "POST":
                    return error(405, "method_not_allowed", "POST to create a subscription")
                body = json_body(request, service.CreateSubscription)
                if isinstance(body, JsonResponse):
                    return body
                status, out = service.create(body)
                return JsonResponse(out, status)
            if action is None:
                if request.method != "GET":
                    return error(405, "method_not_allowed", "GET a subscription")
                return JsonResponse(service.get(sub_id, with_attempts=True))
            if request.method != "POST":
                return error(405, "method_not_allowed", f"POST to {action}")
            if action == "cancel":
                cancel = json_body(request, service.CancelSubscription)
                if isinstance(cancel, JsonResponse):
                    return cancel
                return JsonResponse(service.cancel(sub_id, cancel))
            change = json_body(request, service.ChangePlan)
            if isinstance(change, JsonResponse):
                return change
            return JsonResponse(service.change_plan(sub_id, change))
        except service.ServiceError as exc:
            return error(exc.status, exc.code, exc.detail)
