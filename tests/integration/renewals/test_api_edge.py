"""The subscriptions API against hostile input, on the emulators: never a 5xx, precise 4xx codes, and
nothing stored or published when a request is refused. References are checked at creation."""

from __future__ import annotations

import io
import re
from typing import Any

import flask
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from shared.edge import DEFAULT_MAX_BODY_BYTES, MAX_JSON_DEPTH
from shared.renewals.deps import Deps
from shared.renewals.repository import subs
from shared.subscriptions.api import DEFAULT_SERVICE, handle
from shared.subscriptions.service import SubscriptionService
from tests.fixtures.renewals import Env
from tests.integration.renewals.test_api import create_body

APP = flask.Flask(__name__)
HYPO = settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])


def raw_call(
    method: str,
    path: str,
    data: bytes,
    headers: dict[str, str] | None = None,
    service: SubscriptionService = DEFAULT_SERVICE,
) -> tuple[int, Any]:
    with APP.test_request_context(
        path, method=method, data=data, headers={"Content-Type": "application/json", **(headers or {})}
    ):
        resp = handle(flask.request, service)
    return resp.status_code, resp.get_json()


def call(method: str, path: str, body: Any = None, service: SubscriptionService = DEFAULT_SERVICE) -> tuple[int, Any]:
    import json

    return raw_call(method, path, json.dumps(body).encode() if body is not None else b"", service=service)


def assert_refused_and_nothing_kept(env: Env, status: int, out: Any) -> None:
    assert 400 <= status < 500, (status, out)
    assert out["error"]
    assert list(subs().stream()) == []
    assert env.pull("subscription-events") == []


forbidden_ids = st.one_of(
    st.sampled_from([".", "..", "__x__", "__id__", "a/b", "subscriptions", "cancel", "change-plan", "Subscriptions"]),
    st.sampled_from(["", "x" * 129, "x" * 1501, "é", "a b", "a\x00b"]),
    # Any text outside the safe id charset (letters, digits, '_', '.', ':', '-'; ASCII only).
    st.text(min_size=1, max_size=20).filter(lambda s: re.fullmatch(r"[A-Za-z0-9_.:-]+", s) is None),
)


@HYPO
@given(sub_id=forbidden_ids)
def test_forbidden_subscription_ids_are_422_and_nothing_is_stored(env: Env, sub_id: str) -> None:
    status, out = call("POST", "/subscriptions", create_body(sub_id))
    assert (status, out["error"]) == (422, "invalid_request"), out
    assert_refused_and_nothing_kept(env, status, out)


@HYPO
@given(sub_id=st.sampled_from([".", "..", "__x__", "__name__", "x" * 129, "a%20b"]))
def test_forbidden_ids_in_the_path_are_404(env: Env, sub_id: str) -> None:
    for method, suffix in (("GET", ""), ("POST", "/cancel"), ("POST", "/change-plan")):
        status, out = call(method, f"/subscriptions/{sub_id}{suffix}", {})
        assert status == 404, (sub_id, status, out)
        assert out["error"] in ("invalid_subscription_id", "not_found", "subscription_not_found")
    assert list(subs().stream()) == []


def _plan(**over: Any) -> dict[str, Any]:
    plan: dict[str, Any] = create_body()["plan"]
    return plan | over


hostile_numbers = st.one_of(
    st.integers(min_value=10**14, max_value=10**40),
    st.integers(max_value=-1, min_value=-(10**40)),
    st.sampled_from([2**63, 2**64, 1e309, -1e309, 0.5, float("nan")]),
)


@HYPO
@given(
    where=st.sampled_from(["amount", "quantity", "interval_count", "trial_days", "plan_total"]),
    value=hostile_numbers,
)
def test_numbers_out_of_bounds_are_4xx_and_nothing_is_stored(env: Env, where: str, value: Any) -> None:
    line = {"description": "Basic", "unit_amount": {"amount": 3000, "currency": "USD"}}
    body = create_body()
    if where == "amount":
        line["unit_amount"] = {"amount": value, "currency": "USD"}
        body["plan"] = _plan(lines=[line])
    elif where == "quantity":
        body["plan"] = _plan(lines=[line | {"quantity": value}])
    elif where == "interval_count":
        body["plan"] = _plan(interval="year", interval_count=value if isinstance(value, int) else 11)
    elif where == "trial_days":
        body["trial_days"] = value
    else:  # each line in bounds, the sum over lines x quantities not
        big = {"description": "x", "quantity": 1_000_000, "unit_amount": {"amount": 10**12, "currency": "USD"}}
        body["plan"] = _plan(lines=[big] * 3)
    status, out = call("POST", "/subscriptions", body)
    assert status in (400, 422), (status, out)  # 400: NaN/Infinity are not JSON
    assert_refused_and_nothing_kept(env, status, out)


@HYPO
@given(
    field=st.sampled_from(["start_at", "cancel_at", "plan_at"]),
    when=st.sampled_from(
        [
            "9999-12-31T23:59:59+00:00",
            "9999-12-31T23:59:59-12:00",
            "0001-01-01T00:00:00+01:00",
            "0001-01-01T00:00:00Z",
            "2026-01-31T09:00:00",
            "1999-12-31T23:59:59Z",
            "2100-01-01T00:00:00Z",
        ]
    ),
)
def test_dates_out_of_range_are_422(env: Env, field: str, when: str) -> None:
    if field == "start_at":
        status, out = call("POST", "/subscriptions", create_body("sub_start", start_at=when))
        assert (status, out["error"]) == (422, "invalid_request"), out
        assert not subs().document("sub_start").get().exists
        assert env.pull("subscription-events") == []
        return
    assert call("POST", "/subscriptions", create_body("sub_dates"))[0] in (200, 201)
    env.pull("subscription-events")
    before = subs().document("sub_dates").get().to_dict()
    if field == "cancel_at":
        status, out = call("POST", "/subscriptions/sub_dates/cancel", {"at": when})
    else:
        status, out = call("POST", "/subscriptions/sub_dates/change-plan", {"plan": create_body()["plan"], "at": when})
    assert (status, out["error"]) == (422, "invalid_request"), out
    assert subs().document("sub_dates").get().to_dict() == before
    assert env.pull("subscription-events") == []


@HYPO
@given(
    field=st.sampled_from(["name", "description", "address", "zone", "seller", "method_ref", "vat_id", "plan_id"]),
    size=st.integers(min_value=1_000, max_value=100_000),
)
def test_huge_strings_are_422(env: Env, field: str, size: int) -> None:
    s = "x" * size
    body = create_body()
    if field in ("name", "vat_id"):
        body["customer"] = body["customer"] | {field: s}
    elif field == "address":
        body["customer"] = body["customer"] | {"address_lines": [s]}
    elif field == "description":
        body["plan"] = _plan(lines=[{"description": s, "unit_amount": {"amount": 1, "currency": "USD"}}])
    elif field == "zone":
        body["anchor_zone"] = s
    elif field == "seller":
        body["seller_entity"] = s
    elif field == "method_ref":
        body["payment_method"] = body["payment_method"] | {"method_ref": s}
    else:
        body["plan"] = _plan(id=s)
    status, out = call("POST", "/subscriptions", body)
    assert (status, out["error"]) == (422, "invalid_request"), out
    assert_refused_and_nothing_kept(env, status, out)


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(depth=st.integers(MAX_JSON_DEPTH + 1, 500_000), as_list=st.booleans())
def test_deep_json_is_400_before_parsing(env: Env, depth: int, as_list: bool) -> None:
    deep = (b"[" * depth + b"]" * depth) if as_list else (b'{"a":' * depth + b"1" + b"}" * depth)
    for path in ("/subscriptions", "/subscriptions/sub_x/cancel", "/subscriptions/sub_x/change-plan"):
        status, out = raw_call("POST", path, b'{"customer":' + deep + b"}")
        assert (status, out["error"]) in ((400, "json_too_deep"), (413, "payload_too_large")), out
    assert_refused_and_nothing_kept(env, 400, {"error": "x"})


def test_body_over_the_limit_is_413_with_and_without_a_length(env: Env) -> None:
    big = b'{"note": "' + b"x" * DEFAULT_MAX_BODY_BYTES + b'"}'
    status, out = raw_call("POST", "/subscriptions", big)
    assert (status, out["error"]) == (413, "payload_too_large")
    # Chunked: no Content-Length, the limit holds while reading.
    environ = {
        "wsgi.input": io.BytesIO(big),
        "wsgi.input_terminated": True,  # what gunicorn sets for a chunked body
        "CONTENT_TYPE": "application/json",
        "REQUEST_METHOD": "POST",
    }
    with APP.test_request_context("/subscriptions", environ_overrides=environ):
        assert flask.request.content_length is None
        resp = handle(flask.request)
    assert (resp.status_code, resp.get_json()["error"]) == (413, "payload_too_large")
    assert_refused_and_nothing_kept(env, 413, {"error": "payload_too_large"})


@pytest.mark.parametrize(
    ("override", "code"),
    [
        ({"seller_entity": "acme-nowhere"}, "unknown_seller_entity"),
        ({"payment_method": {"psp": "bitcoin", "customer_ref": "c", "method_ref": "m"}}, "unknown_psp"),
        ({"payment_method": {"psp": "paypal", "customer_ref": "c", "method_ref": "m"}}, "unknown_psp"),
    ],
)
def test_unknown_references_are_refused_at_creation(env: Env, override: dict[str, Any], code: str) -> None:
    status, out = call("POST", "/subscriptions", create_body(**override))
    assert (status, out["error"]) == (422, code)
    assert_refused_and_nothing_kept(env, status, out)


def test_a_seller_configured_by_the_deployment_is_accepted(env: Env, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("INVOICE_SELLERS_JSON", '{"acme-us": {"name": "Acme Inc", "country": "US", "vat_id": null}}')
    assert call("POST", "/subscriptions", create_body(seller_entity="acme-us"))[0] == 201


def test_firestore_outage_is_503_with_a_generic_body(env: Env) -> None:
    from google.api_core.exceptions import ServiceUnavailable

    class Down:
        def document(self, _id: str) -> Any:
            raise ServiceUnavailable(f"projects/{env.gcp.project}/databases/(default) unreachable")  # type: ignore[no-untyped-call]

    class DownFirestore:
        def collection(self, _name: str) -> Down:
            return Down()

    down = SubscriptionService(Deps(db=DownFirestore))
    for method, path, body in (
        ("POST", "/subscriptions", create_body()),
        ("GET", "/subscriptions/sub_api", None),
        ("POST", "/subscriptions/sub_api/cancel", {}),
    ):
        status, out = call(method, path, body, service=down)
        assert (status, out) == (503, {"error": "temporarily_unavailable", "detail": out["detail"]})
        assert env.gcp.project not in out["detail"]
        assert "unreachable" not in out["detail"]


def test_a_bug_is_a_generic_500(env: Env) -> None:
    class Buggy(SubscriptionService):
        def get(self, sub_id: str, *, with_attempts: bool = False) -> dict[str, Any]:
            raise RuntimeError("secret internals: /srv/app/shared/subscriptions/service.py")

    status, out = call("GET", "/subscriptions/sub_api", service=Buggy())
    assert status == 500
    assert out["error"] == "internal_error"
    assert "secret" not in out["detail"]
