"""The probe's HTTP entry against hostile input on the emulators: never a 5xx, nothing published when
refused; a Pub/Sub outage is a 503 with a generic body."""

from __future__ import annotations

import json
import warnings
from typing import Any

import flask
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from shared import probe
from shared.edge import MAX_JSON_DEPTH
from tests.conftest import Gcp

APP = flask.Flask(__name__)


def post(data: bytes, content_type: str = "application/json") -> tuple[int, Any]:
    with APP.test_request_context("/", method="POST", data=data, headers={"Content-Type": content_type}):
        resp = probe.http_probe(flask.request)
    return resp.status_code, resp.get_json()


def pulled(sub: str) -> int:
    from google.cloud.pubsub_v1 import SubscriberClient

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        resp = SubscriberClient().pull(request={"subscription": sub, "max_messages": 100, "return_immediately": True})
    return len(resp.received_messages)


@pytest.fixture
def sub(gcp: Gcp) -> str:
    gcp.topic("probes")
    return gcp.pull_subscription("probes")


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=30),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=10), inner, max_size=4),
    max_leaves=10,
)
hostile_ids = st.one_of(
    st.sampled_from([".", "..", "__x__", "__probe__", "a/b", "", "x" * 129, "x" * 1501]),
    st.integers(min_value=-(2**70), max_value=2**70),
)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    body=st.one_of(
        hostile_ids.map(lambda i: json.dumps({"probe_id": i}).encode()),
        json_values.map(lambda v: json.dumps(v).encode()),
        st.integers(MAX_JSON_DEPTH + 1, 300_000).map(lambda d: b'{"probe_id":' + b"[" * d + b"]" * d + b"}"),
        st.integers(5_000, 2_000_000).map(lambda n: json.dumps({"probe_id": "p", "note": "n" * n}).encode()),
        st.binary(max_size=200),
    ),
    content_type=st.sampled_from(["application/json", "text/plain"]),
)
def test_hostile_probe_requests_are_4xx_and_publish_nothing(sub: str, body: bytes, content_type: str) -> None:
    status, out = post(body, content_type)
    if status == 202:  # a random JSON object that happens to be a valid probe
        assert pulled(sub) == 1
        return
    assert 400 <= status < 500, (status, out)
    assert out["error"] in (
        "invalid_probe",
        "malformed_json",
        "json_too_deep",
        "payload_too_large",
        "unsupported_media_type",
    )
    assert pulled(sub) == 0


@pytest.mark.parametrize(
    ("body", "code"),
    [
        (b'{"probe_id": ".."}', "invalid_probe"),
        (b'{"probe_id": "__x__"}', "invalid_probe"),
        (b'{"probe_id": "p", "note": ' + json.dumps("n" * 501).encode() + b"}", "invalid_probe"),
        (b'{"probe_id": ' + b"[" * 1500 + b"]" * 1500 + b"}", "json_too_deep"),
        (b'{"probe_id": "p", "n": NaN}', "malformed_json"),
        (b'{"probe_id": "p", "note": "' + b"n" * 5000 + b'"}', "payload_too_large"),
    ],
    ids=["dotdot", "reserved", "long-note", "deep", "nan", "too-large"],
)
def test_precise_codes(sub: str, body: bytes, code: str) -> None:
    status, out = post(body)
    assert (status, out["error"]) == (413 if code == "payload_too_large" else 400, code)
    assert pulled(sub) == 0


def test_pubsub_outage_is_503_with_a_generic_body(gcp: Gcp, monkeypatch: pytest.MonkeyPatch) -> None:
    from google.api_core.exceptions import ServiceUnavailable

    def down(*_: Any, **__: Any) -> str:
        raise ServiceUnavailable(f"projects/{gcp.project}/topics/probes: connection refused")  # type: ignore[no-untyped-call]

    monkeypatch.setattr(probe, "publish", down)
    status, out = post(b'{"probe_id": "p-1"}')
    assert (status, out["error"]) == (503, "temporarily_unavailable")
    assert gcp.project not in out["detail"]
    assert "refused" not in out["detail"]
