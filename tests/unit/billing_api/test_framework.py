"""The billing API's framework without I/O: cursors, Idempotency-Key rules, routing, the generated document."""

from __future__ import annotations

import datetime as dt

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from shared.billing import idempotency as idem
from shared.billing.api import ROUTES, _match
from shared.billing.openapi import document
from shared.billing.pagination import decode_cursor, encode_cursor, page_request
from shared.edge import EdgeError

ids = st.from_regex(r"[A-Za-z0-9][A-Za-z0-9_.:-]{0,99}", fullmatch=True)
instants = st.datetimes(
    min_value=dt.datetime(2000, 1, 1), max_value=dt.datetime(2099, 12, 31), timezones=st.just(dt.UTC)
)


@settings(deadline=None)
@given(scope=st.text(max_size=50), t=instants, doc_id=ids)
def test_a_cursor_names_its_position_in_its_list_only(scope: str, t: dt.datetime, doc_id: str) -> None:
    cursor = encode_cursor(scope, t, doc_id)
    assert len(cursor) <= 512
    assert decode_cursor(scope, cursor) == (t, doc_id)
    with pytest.raises(EdgeError, match="invalid_cursor"):
        decode_cursor(scope + "x", cursor)


@settings(deadline=None)
@given(junk=st.text(max_size=80))
def test_junk_cursors_are_400_never_a_crash(junk: str) -> None:
    with pytest.raises(EdgeError) as err:
        decode_cursor("/prices", junk)
    assert (err.value.status, err.value.code) == (400, "invalid_cursor")


def test_page_request_bounds() -> None:
    assert page_request({}).limit == 10
    assert page_request({"limit": "100"}).limit == 100
    for bad in ("0", "101", "-1", "1.5", "", "99999"):
        with pytest.raises(EdgeError, match="invalid_limit"):
            page_request({"limit": bad})


def test_idempotency_keys_and_fingerprints() -> None:
    assert idem.key_problem("order-42:create") is None
    for bad in ("", "x" * 256, "tab\there", "caf\u00e9"):
        assert idem.key_problem(bad), bad
    assert idem.derived_id("cus", "k") == idem.derived_id("cus", "k") != idem.derived_id("cus", "k2")
    a = idem.fingerprint("POST", "/customers", {"a": 1, "b": [1, 2]})
    assert a == idem.fingerprint("POST", "/customers", {"b": [1, 2], "a": 1})
    assert a != idem.fingerprint("POST", "/products", {"a": 1, "b": [1, 2]})


@pytest.mark.parametrize(
    ("method", "path", "status", "code"),
    [
        ("GET", "/customers/__x__", 404, "invalid_id"),
        ("GET", "/customers/a/b", 404, "not_found"),
        ("DELETE", "/customers", 405, "method_not_allowed"),
        ("PUT", "/prices/p", 405, "method_not_allowed"),
        ("GET", "/prices/" + "x" * 600, 404, "not_found"),
    ],
)
def test_routing_refusals(method: str, path: str, status: int, code: str) -> None:
    with pytest.raises(EdgeError) as err:
        _match(method, path)
    assert (err.value.status, err.value.code) == (status, code)


def test_the_document_has_every_route_with_its_schemas() -> None:
    spec = document()
    for r in ROUTES:
        op = spec["paths"][r.template][r.method.lower()]
        assert str(r.ok_status) in op["responses"]
        if r.request is not None:
            ref = op["requestBody"]["content"]["application/json"]["schema"]["$ref"]
            assert ref.rsplit("/", 1)[1] in spec["components"]["schemas"]
    assert all(ref.rsplit("/", 1)[1] in spec["components"]["schemas"] for ref in _refs(spec))


def _refs(node: object) -> list[str]:
    if isinstance(node, dict):
        out = [node["$ref"]] if isinstance(node.get("$ref"), str) else []
        return out + [r for v in node.values() for r in _refs(v)]
    if isinstance(node, list):
        return [r for v in node for r in _refs(v)]
    return []
