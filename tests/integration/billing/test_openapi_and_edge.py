"""The served OpenAPI document against real answers, and hostile input: never a 5xx, precise 4xx."""

from __future__ import annotations

import json
import re
from typing import Any

import jsonschema  # type: ignore[import-untyped]
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from shared.billing.api import ROUTES
from tests.integration.billing.conftest import Answer, Client, customer_body

HYPO = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])


def _validate(spec: dict[str, Any], template: str, method: str, answer: Answer) -> None:
    responses = spec["paths"][template][method.lower()]["responses"]
    assert str(answer.status) in responses, (template, method, answer.status)
    content = responses[str(answer.status)].get("content", {}).get("application/json", {})
    if "schema" in content:
        schema = {**content["schema"], "components": spec["components"]}
        jsonschema.Draft202012Validator(schema).validate(answer.body)


def test_real_answers_validate_against_the_served_document(api: Client) -> None:
    spec = api.ok("GET", "/openapi.json")
    assert spec["openapi"] == "3.1.0"
    jsonschema.Draft202012Validator.check_schema({"$defs": spec["components"]["schemas"]})
    calls: list[tuple[str, str, str, Any]] = [
        ("POST", "/customers", "/customers", customer_body(id="cus-1")),
        ("GET", "/customers", "/customers", None),
        ("GET", "/customers/{customer_id}", "/customers/cus-1", None),
        ("POST", "/customers/{customer_id}", "/customers/cus-1", {"tax_exempt": True}),
        (
            "POST",
            "/customers/{customer_id}/credit_grants",
            "/customers/cus-1/credit_grants",
            {"amount": {"amount": 900, "currency": "EUR"}},
        ),
        ("GET", "/customers/{customer_id}/balance_entries", "/customers/cus-1/balance_entries", None),
        ("POST", "/products", "/products", {"id": "pro", "name": "Pro", "description": "All of it"}),
        ("GET", "/products", "/products", None),
        ("GET", "/products/{product_id}", "/products/pro", None),
        ("POST", "/products/{product_id}", "/products/pro", {"name": "Pro+"}),
        (
            "POST",
            "/prices",
            "/prices",
            {
                "id": "pe",
                "product": "pro",
                "currency": "EUR",
                "recurring": {"interval": "month", "interval_count": 3},
                "pricing": {"model": "volume", "tiers": [{"up_to": 10, "unit_amount": "0.5", "flat_amount": 100}, {}]},
            },
        ),
        (
            "POST",
            "/prices",
            "/prices",
            {
                "product": "pro",
                "currency": "JPY",
                "pricing": {"model": "package", "package_size": 100, "package_amount": 500},
            },
        ),
        ("GET", "/prices", "/prices?product=pro", None),
        ("GET", "/prices/{price_id}", "/prices/pe", None),
        ("POST", "/prices/{price_id}", "/prices/pe", {"active": False}),
        (
            "POST",
            "/coupons",
            "/coupons",
            {
                "id": "c1",
                "percent_off": "15",
                "duration": "forever",
                "redeem_by": "2027-01-01T00:00:00Z",
                "applies_to_products": ["pro"],
            },
        ),
        ("POST", "/coupons", "/coupons", {"amount_off": {"amount": 500, "currency": "EUR"}, "max_redemptions": 3}),
        ("GET", "/coupons", "/coupons", None),
        ("GET", "/coupons/{coupon_id}", "/coupons/c1", None),
        (
            "POST",
            "/promotion_codes",
            "/promotion_codes",
            {
                "code": "WELCOME",
                "coupon": "c1",
                "customer": "cus-1",
                "minimum_amount": {"amount": 1, "currency": "EUR"},
            },
        ),
        ("GET", "/promotion_codes", "/promotion_codes?coupon=c1", None),
        ("GET", "/promotion_codes/{code}", "/promotion_codes/welcome", None),
        # refusals are documented too (a credit note's 201: tests/integration/renewals/test_credit_to_balance.py)
        ("POST", "/invoices/{invoice_id}/credit_notes", "/invoices/in_ghost/credit_notes", {"reason": "goodwill"}),
        ("GET", "/customers/{customer_id}", "/customers/ghost", None),
        ("POST", "/prices/{price_id}", "/prices/pe", {"currency": "USD"}),
        ("POST", "/customers", "/customers", {"legal_name": "x"}),
        ("GET", "/openapi.json", "/openapi.json", None),
    ]
    for method, template, path, body in calls:
        answer = api(method, path, body)
        assert answer.status < 500, (path, answer.body)
        _validate(spec, template, method, answer)
    grant = api.ok("GET", "/customers/cus-1/balance_entries")["data"][0]["id"]
    rev = api("POST", f"/customers/cus-1/balance_entries/{grant}/reversal", {})
    _validate(spec, "/customers/{customer_id}/balance_entries/{entry_id}/reversal", "POST", rev)
    one = api("GET", f"/customers/cus-1/balance_entries/{grant}")
    _validate(spec, "/customers/{customer_id}/balance_entries/{entry_id}", "GET", one)
    exercised = {(m, t) for m, t, _, _ in calls} | {
        ("POST", "/customers/{customer_id}/balance_entries/{entry_id}/reversal"),
        ("GET", "/customers/{customer_id}/balance_entries/{entry_id}"),
    }
    assert exercised == {(r.method, r.template) for r in ROUTES}, "a route is not exercised here"


def test_every_route_is_documented(api: Client) -> None:
    spec = api.ok("GET", "/openapi.json")
    documented = {(m.upper(), p) for p, ops in spec["paths"].items() for m in ops}
    assert {(r.method, r.template) for r in ROUTES} <= documented
    for method, path in documented:
        op = spec["paths"][path][method.lower()]
        assert op["operationId"]
        assert op["responses"]
        if method == "POST":
            assert "requestBody" in op or path.endswith("/openapi.json")
    assert {"/subscriptions", "/subscriptions/{subscription_id}"} <= set(spec["paths"])
    # Every action the subscriptions router answers is documented, with the request model it validates.
    from shared.subscriptions.api import _ROUTE

    m = re.search(r"\(\?P<action>([^)]*)\)", _ROUTE.pattern)
    assert m is not None
    actions = m.group(1).split("|")
    assert len(actions) >= 6
    assert {f"/subscriptions/{{subscription_id}}/{a}" for a in actions} <= set(spec["paths"])
    create = spec["paths"]["/subscriptions"]["post"]["requestBody"]["content"]["application/json"]["schema"]
    validator = jsonschema.Draft202012Validator({**create, "components": spec["components"]})
    items_body = {"customer": "cus-1", "seller_entity": "acme-de", "items": [{"price": "pe", "quantity": 2}]}
    validator.validate({**items_body, "discount": {"promotion_code": "WELCOME"}})
    assert not validator.is_valid({**items_body, "items": "pe"})


# -- hostile input -------------------------------------------------------------------------------------------------
PATHS = [
    "/customers",
    "/customers/cus-1",
    "/customers/cus-1/credit_grants",
    "/customers/cus-1/balance_entries",
    "/customers/cus-1/balance_entries/grant_x/reversal",
    "/products",
    "/products/p",
    "/prices",
    "/prices/p",
    "/coupons",
    "/coupons/c",
    "/promotion_codes",
    "/promotion_codes/X",
    "/openapi.json",
    "/customers/__x__",
    "/customers/a%2Fb",
    "/prices/" + "x" * 200,
    "/customers/cus-1/nope",
    "/products/p/q/r",
]
json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=12), inner, max_size=5),
    max_leaves=20,
)
field_names = st.sampled_from(
    [
        "id",
        "legal_name",
        "country",
        "currency",
        "amount",
        "pricing",
        "product",
        "percent_off",
        "amount_off",
        "code",
        "coupon",
        "tax_ids",
        "time_zone",
        "recurring",
        "tiers",
        "active",
        "redeem_by",
        "max_redemptions",
        "reason",
    ]
)
bodies = st.dictionaries(field_names, json_values, max_size=6)


@HYPO
@given(
    method=st.sampled_from(["GET", "POST", "PUT", "DELETE"]),
    path=st.sampled_from(PATHS),
    body=bodies,
    query=st.sampled_from(["", "?limit=5", "?limit=0", "?starting_after=zz", "?product=%00"]),
)
def test_random_requests_are_never_a_5xx(api: Client, method: str, path: str, body: dict[str, Any], query: str) -> None:
    answer = api.raw(method, path + query, json.dumps(body).encode())
    assert answer.status < 500, (method, path, body, answer.body)
    if answer.status >= 400:
        assert answer.body["error"], answer.body


@HYPO
@given(
    raw=st.binary(max_size=200) | st.sampled_from([b"[]", b"1", b"NaN", b'{"a": Infinity}', b"[" * 40]),
    path=st.sampled_from(["/customers", "/prices", "/coupons", "/promotion_codes", "/customers/c/credit_grants"]),
)
def test_malformed_bodies_are_precise_4xx(api: Client, raw: bytes, path: str) -> None:
    answer = api.raw("POST", path, raw)
    assert answer.status in (400, 404, 422), (raw, answer.body)
