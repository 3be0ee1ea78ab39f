"""The OpenAPI 3.1 document of the billing API, generated from the route table and the pydantic models.

Why generated: a hand-written document drifts from the code; here every route of :data:`shared.billing.api.ROUTES`
is a path operation, its request body is the request model's validation schema and its answer the response
model's serialization schema (pydantic emits JSON Schema 2020-12, which OpenAPI 3.1 uses as is). Tests check
that real answers validate against it.
"""

from __future__ import annotations

import functools
from typing import Any, Literal

from pydantic import BaseModel, Field, create_model
from pydantic.json_schema import models_json_schema

REF = "#/components/schemas/{model}"


class ErrorOut(BaseModel):
    """Every 4xx and 5xx: a machine-readable code and a detail (pydantic's errors for 422 ``invalid_request``)."""

    error: str
    detail: Any = None


@functools.cache
def _list_model(item: type[BaseModel]) -> type[BaseModel]:
    name = item.__name__.removesuffix("Out") + "List"
    return create_model(
        name,
        object=(Literal["list"], "list"),
        data=(list[item], ...),  # type: ignore[valid-type]
        has_more=(bool, ...),
        next_cursor=(str | None, Field(default=None, description="pass as starting_after for the next page")),
    )


_ERRORS = {
    400: "malformed JSON, a bad cursor, limit or Idempotency-Key",
    404: "no such route or resource",
    405: "wrong method",
    409: "conflicts with what is stored (an id taken, an Idempotency-Key in use, a redemption limit)",
    413: "body over the limit",
    415: "not JSON",
    422: "breaks a bound or a rule (invalid_request, unknown_product, price_immutable, idempotency_key_reused ...)",
    503: "a dependency is unavailable; retry later",
}


def _subscription_paths(paths: dict[str, dict[str, Any]], schemas: dict[str, Any], error_ref: dict[str, Any]) -> None:
    """The subscription routes of the same function (:mod:`shared.subscriptions.api`): their request models are the
    commands; the answer is the subscription view (documented in the README), an open object here."""
    from shared.subscriptions.commands import (
        ApplyDiscount,
        CancelSubscription,
        ChangeItems,
        ChangePlan,
        CreateAnySubscription,
        MigratePrice,
    )

    one = "/subscriptions/{subscription_id}"
    ops: list[tuple[str, str, str, str, type[BaseModel] | None, tuple[int, ...]]] = [
        (
            "post",
            "/subscriptions",
            "createSubscription",
            "Create a subscription of catalog items (or of plan lines); 200: identical replay",
            CreateAnySubscription,
            (201, 200, 409, 422),
        ),
        ("get", "/subscriptions", "listSubscriptions", "Subscriptions newest first (cursor pages)", None, (200,)),
        ("get", one, "getSubscription", "A subscription with its charge attempts", None, (200, 404)),
        (
            "post",
            f"{one}/cancel",
            "cancelSubscription",
            "Cancel now or at period end",
            CancelSubscription,
            (200, 404, 422),
        ),
        ("post", f"{one}/change-plan", "changePlan", "Change plans (prorated)", ChangePlan, (200, 404, 409, 422)),
        (
            "post",
            f"{one}/items",
            "changeItems",
            "The items from now on: added, removed and re-quantified items are prorated on the next invoice",
            ChangeItems,
            (200, 404, 409, 422),
        ),
        (
            "post",
            f"{one}/discounts",
            "applyDiscount",
            "Attach a coupon or a promotion code from the next period (restrictions checked, redeemed once)",
            ApplyDiscount,
            (200, 404, 409, 422),
        ),
        (
            "get",
            f"{one}/preview",
            "previewUpcomingInvoice",
            "The upcoming invoice (items, discounts, prorations, tax, credit applied), without side effects",
            None,
            (200, 404, 409),
        ),
        (
            "post",
            f"{one}/migrate-price",
            "migratePrice",
            "Move an item to a new price from the next period; dry_run answers the before/after",
            MigratePrice,
            (200, 404, 409, 422),
        ),
    ]
    view = {"type": "object", "description": "the subscription (README: Subscriptions and renewals)"}
    listed = {
        "type": "object",
        "required": ["object", "data", "has_more", "next_cursor"],
        "properties": {
            "object": {"const": "list"},
            "data": {"type": "array", "items": view},
            "has_more": {"type": "boolean"},
            "next_cursor": {"type": ["string", "null"], "description": "pass as starting_after for the next page"},
        },
    }
    for method, template, op_id, summary, model, codes in ops:
        op: dict[str, Any] = {"operationId": op_id, "summary": summary}
        if "{" in template:
            op["parameters"] = [
                {"name": "subscription_id", "in": "path", "required": True, "schema": {"type": "string"}}
            ]
        if op_id == "listSubscriptions":
            op["parameters"] = [
                {
                    "name": "customer",
                    "in": "query",
                    "description": "only this customer's",
                    "schema": {"type": "string"},
                },
                {"name": "limit", "in": "query", "schema": {"type": "integer", "minimum": 1, "maximum": 100}},
                {"name": "starting_after", "in": "query", "schema": {"type": "string", "maxLength": 512}},
            ]
        if model is not None:
            schema = model.model_json_schema(ref_template=REF)
            for name, definition in schema.pop("$defs", {}).items():
                schemas.setdefault(name, definition)  # shared models (Money) are the same schema
            schemas[model.__name__] = schema
            body_ref = {"$ref": REF.format(model=model.__name__)}
            op["requestBody"] = {"required": True, "content": {"application/json": {"schema": body_ref}}}
        responses: dict[str, Any] = {}
        for code in codes:
            ok = code < 300
            answer = view if op_id != "listSubscriptions" else listed
            content = {"application/json": {"schema": answer if ok else error_ref}}
            responses[str(code)] = {"description": "OK" if ok else _ERRORS[code], "content": content}
        for code in (400, 405, 503):
            responses[str(code)] = {
                "description": _ERRORS[code],
                "content": {"application/json": {"schema": error_ref}},
            }
        op["responses"] = responses
        paths.setdefault(template, {})[method] = op


@functools.cache
def document() -> dict[str, Any]:
    from shared.billing.api import ROUTES

    wanted: list[tuple[type[BaseModel], Literal["validation", "serialization"]]] = [(ErrorOut, "serialization")]
    for r in ROUTES:
        if r.request is not None:
            wanted.append((r.request, "validation"))
        if r.response is not None:
            wanted.append((_list_model(r.response) if r.list_of else r.response, "serialization"))
    refs, defs = models_json_schema(list(dict.fromkeys(wanted)), ref_template=REF)
    schemas = defs.get("$defs", {})
    error_ref = refs[(ErrorOut, "serialization")]
    paths: dict[str, dict[str, Any]] = {}
    for r in ROUTES:
        op: dict[str, Any] = {"operationId": r.operation, "summary": r.summary}
        params = [{"name": p, "in": "path", "required": True, "schema": {"type": "string"}} for p in r.params]
        if r.list_of:
            params += [
                {"name": "limit", "in": "query", "schema": {"type": "integer", "minimum": 1, "maximum": 100}},
                {"name": "starting_after", "in": "query", "schema": {"type": "string", "maxLength": 512}},
            ]
            params += [{"name": n, "in": "query", "description": d, "schema": {"type": "string"}} for n, d in r.query]
        if r.create_prefix is not None:
            params.append(
                {
                    "name": "Idempotency-Key",
                    "in": "header",
                    "description": "replays the stored answer for the same request; 422 for another one",
                    "schema": {"type": "string", "minLength": 1, "maxLength": 255},
                }
            )
        if params:
            op["parameters"] = params
        if r.request is not None:
            body_ref = refs[(r.request, "validation")]
            op["requestBody"] = {"required": True, "content": {"application/json": {"schema": body_ref}}}
        ok = str(r.ok_status)
        if r.response is None:
            answer: dict[str, Any] = {"description": "the OpenAPI document", "content": {"application/json": {}}}
        else:
            model = _list_model(r.response) if r.list_of else r.response
            schema = refs[(model, "serialization")]
            answer = {"description": "OK", "content": {"application/json": {"schema": schema}}}
        responses: dict[str, Any] = {ok: answer}
        if r.create_prefix:
            responses["200"] = {"description": "the same request replayed", "content": answer.get("content", {})}
        codes = sorted({400, 405, 503, *r.errors, *((413, 415, 422) if r.request else ())})
        for code in codes:
            err = {"application/json": {"schema": error_ref}}
            responses[str(code)] = {"description": _ERRORS[code], "content": err}
        op["responses"] = responses
        paths.setdefault(r.template, {})[r.method.lower()] = op
    _subscription_paths(paths, schemas, error_ref)
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "Billing API (customers, catalog, coupons, credit)",
            "version": "1",
            "description": "Private (IAM-only). Amounts are integer minor units; decimal unit amounts are strings.",
        },
        "paths": paths,
        "components": {"schemas": schemas},
    }
