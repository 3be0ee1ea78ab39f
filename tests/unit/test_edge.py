"""The edge validation layer without I/O: depth scan, safe loader, bounded types, storable, the wrapper."""

from __future__ import annotations

import datetime as dt
import io
import json
import sys
from typing import Any

import flask
import pytest
from google.api_core.exceptions import InvalidArgument, RetryError, ServiceUnavailable
from hypothesis import given
from hypothesis import strategies as st
from pydantic import BaseModel, ValidationError

from shared import edge
from shared.domain.iso4217 import EXPONENTS
from shared.domain.money import INT64_MAX, Money, max_minor, within_bounds

CURRENCIES = sorted(c for c, e in EXPONENTS.items() if e is not None)
APP = flask.Flask(__name__)

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(alphabet='[]{}"\\ab', max_size=8),
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(alphabet='[]{}"\\ab', max_size=4), inner, max_size=3)
    ),
    max_leaves=40,
)


def depth(v: Any) -> int:
    if isinstance(v, list):
        return 1 + max((depth(x) for x in v), default=0)
    if isinstance(v, dict):
        return 1 + max((depth(x) for x in v.values()), default=0)
    return 0


@given(value=json_values, limit=st.integers(0, 6))
def test_depth_scan_agrees_with_the_parsed_depth(value: Any, limit: int) -> None:
    """Brackets inside strings (escaped quotes included) never count; real nesting always does."""
    assert edge.json_too_deep(json.dumps(value).encode(), limit) == (depth(value) > limit)


def test_depth_scan_refuses_what_would_blow_the_stack() -> None:
    for raw in (b"[" * 100_000, b'{"a":' * 50_000, b"[" * (sys.getrecursionlimit() * 2) + b"]" * 10):
        assert edge.json_too_deep(raw)
        with pytest.raises(edge.EdgeError) as exc:
            edge.loads(raw)
        assert (exc.value.status, exc.value.code) == (400, "json_too_deep")
    ok = b"[" * edge.MAX_JSON_DEPTH + b"]" * edge.MAX_JSON_DEPTH
    assert edge.loads(ok) is not None


@pytest.mark.parametrize("raw", [b"NaN", b'{"a": Infinity}', b"\xff\xfe{", b"{", b"1" * 5000, b""])
def test_loads_refuses_what_is_not_json(raw: bytes) -> None:
    with pytest.raises(edge.EdgeError) as exc:
        edge.loads(raw)
    assert (exc.value.status, exc.value.code) == (400, "malformed_json")


class Ids(BaseModel):
    id: edge.FirestoreId


@pytest.mark.parametrize("bad", [".", "..", "__x__", "__", "a/b", "", "x" * 129, "é", "a b", "a\x00"])
def test_firestore_id_refuses_reserved_and_unsafe_ids(bad: str) -> None:
    with pytest.raises(ValidationError):
        Ids(id=bad)
    assert edge.firestore_id_problem(bad)


@given(st.text(max_size=140))
def test_an_accepted_id_is_always_a_safe_document_id(value: str) -> None:
    if edge.firestore_id_problem(value) is None:
        assert Ids(id=value).id == value
        assert "/" not in value
        assert value not in (".", "..")
        assert not (value.startswith("__") and value.endswith("__"))
        assert len(value.encode()) <= 1500


@given(currency=st.sampled_from(CURRENCIES))
def test_the_amount_bound_follows_the_exponent_and_leaves_room_below_int64(currency: str) -> None:
    bound = max_minor(currency)
    assert bound == 10 ** (12 + EXPONENTS[currency]) - 1  # type: ignore[operator]
    assert bound * 900 < INT64_MAX  # sums of hundreds of maximal amounts still fit Firestore's int64
    assert within_bounds(Money(bound, currency))
    assert not within_bounds(Money(bound + 1, currency))
    assert not within_bounds(Money(-1, currency))
    assert within_bounds(Money(-bound, currency), allow_negative=True)


class Priced(BaseModel):
    amount: edge.Amount
    at: edge.BoundedDatetime
    n: edge.Int64 = 0


@pytest.mark.parametrize(
    "data",
    [
        {"amount": {"amount": 10**30, "currency": "EUR"}, "at": "2026-01-01T00:00:00Z"},
        {"amount": {"amount": -1, "currency": "EUR"}, "at": "2026-01-01T00:00:00Z"},
        {"amount": {"amount": 1.5, "currency": "EUR"}, "at": "2026-01-01T00:00:00Z"},
        {"amount": {"amount": 1, "currency": "EUR"}, "at": "9999-12-31T23:59:59-12:00"},
        {"amount": {"amount": 1, "currency": "EUR"}, "at": "0001-01-01T00:00:00+01:00"},
        {"amount": {"amount": 1, "currency": "EUR"}, "at": "2026-01-01T00:00:00"},
        {"amount": {"amount": 1, "currency": "EUR"}, "at": "2026-01-01T00:00:00Z", "n": 2**63},
    ],
)
def test_bounded_types_refuse_what_consumers_cannot_hold(data: dict[str, Any]) -> None:
    with pytest.raises(ValidationError):
        Priced.model_validate(data)


def test_bounded_types_accept_the_ordinary() -> None:
    p = Priced.model_validate({"amount": {"amount": 1099, "currency": "EUR"}, "at": "2026-01-31T09:00:00+14:00"})
    assert p.amount == Money(1099, "EUR")


def test_storable_names_the_first_problem() -> None:
    t = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
    assert edge.storable({"a": [Money(1, "EUR"), t, "x", 2**62]}) is None
    assert "amount" in (edge.storable({"a": [Money(10**20, "EUR")]}) or "")
    assert "int64" in (edge.storable({"a": 2**64}) or "")
    assert "time" in (edge.storable({"a": dt.datetime(9999, 1, 1, tzinfo=dt.UTC)}) or "")
    assert "too long" in (edge.storable({"a": "x" * 1025}) or "")


def _request(body: bytes, *, length: bool = True) -> Any:
    environ: dict[str, Any] = {"wsgi.input": io.BytesIO(body), "wsgi.input_terminated": True}
    if length:
        environ["CONTENT_LENGTH"] = str(len(body))
    return APP.test_request_context("/", method="POST", content_type="application/json", environ_overrides=environ)


@pytest.mark.parametrize("length", [True, False])
def test_read_body_enforces_the_limit_with_and_without_content_length(length: bool) -> None:
    with _request(b"x" * 101, length=length):
        with pytest.raises(edge.EdgeError) as exc:
            edge.read_body(flask.request, 100)
        assert (exc.value.status, exc.value.code) == (413, "payload_too_large")
    with _request(b"x" * 100, length=length):
        assert edge.read_body(flask.request, 100) == b"x" * 100


def _wrapped(exc: BaseException) -> Any:
    @edge.http_entry("test")
    def handler(request: Any) -> flask.Response:
        raise exc

    with _request(b"{}"):
        return handler(flask.request)


def test_wrapper_answers_edge_errors_precisely() -> None:
    resp = _wrapped(edge.EdgeError(422, "invalid_thing", "why"))
    assert (resp.status_code, resp.get_json()) == (422, {"error": "invalid_thing", "detail": "why"})


@pytest.mark.parametrize(
    "exc",
    [
        ServiceUnavailable("projects/demo-x/databases/(default) down"),  # type: ignore[no-untyped-call]
        RetryError("deadline of 60 s exceeded calling projects/demo-x", cause=None),  # type: ignore[no-untyped-call]
        TimeoutError("publish of projects/demo-x/topics/t timed out"),
    ],
)
def test_an_outage_is_a_generic_503(exc: BaseException) -> None:
    resp = _wrapped(exc)
    assert (resp.status_code, resp.headers["Retry-After"]) == (503, "30")
    assert resp.get_json()["error"] == "temporarily_unavailable"
    assert "demo-x" not in resp.get_data(as_text=True)


def test_a_wrapped_outage_is_still_503() -> None:
    outer = RuntimeError("while storing")
    outer.__cause__ = ServiceUnavailable("down")  # type: ignore[no-untyped-call]
    assert _wrapped(outer).status_code == 503


@pytest.mark.parametrize(
    "exc",
    [RuntimeError("/srv/app/secret.py line 3"), InvalidArgument("bad doc path projects/demo-x"), RecursionError()],  # type: ignore[no-untyped-call]
)
def test_anything_else_is_a_generic_500(exc: BaseException) -> None:
    resp = _wrapped(exc)
    assert resp.status_code == 500
    assert resp.get_json()["error"] == "internal_error"
    assert "demo-x" not in resp.get_data(as_text=True)
    assert "secret" not in resp.get_data(as_text=True)


def test_an_error_detail_quoting_card_data_is_scrubbed_in_the_answer() -> None:
    """A validation message may quote the sender's value; the answer never echoes a card number or CVC."""
    import json as _json

    from shared.http import error

    pan = "4111 1111 1111 1111"
    resp = error(400, "invalid_amount", {"msg": f"amount must be an integer, got '{pan}'", "cvc": "123"})
    body = _json.loads(resp.get_data())
    text = _json.dumps(body)
    assert "4111" not in text
    assert "123" not in text
    assert body["error"] == "invalid_amount"
