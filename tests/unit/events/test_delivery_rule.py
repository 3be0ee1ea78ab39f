"""The delivery rule of ``shared.events.consumer.dispatch``, case by case (no I/O: handlers are recorders)."""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping
from typing import Any

import pytest

from shared.events.consumer import Trigger, Undeliverable, dispatch
from tests.unit.events.samples import cloud_event, function_app, message, valid


@pytest.fixture(autouse=True)
def _project(env_project: str) -> None:
    return None


class Recorder:
    def __init__(self, result: object = "done") -> None:
        self.calls: list[Any] = []
        self.result = result

    def __call__(self, arg: Any) -> object:
        self.calls.append(arg)
        return self.result


def push(data: bytes, attrs: Any) -> Any:
    return cloud_event(message(data, attrs))


def errors(caplog: pytest.LogCaptureFixture) -> list[logging.LogRecord]:
    return [r for r in caplog.records if r.levelno >= logging.ERROR]


def refused(caplog: pytest.LogCaptureFixture, ce: Any, handlers: Mapping[str, Any], **kw: Any) -> str:
    """Dispatch must raise Undeliverable and log its reason exactly once at ERROR; returns the reason."""
    caplog.clear()
    with caplog.at_level(logging.INFO), pytest.raises(Undeliverable) as exc:
        dispatch(ce, handlers, **kw)
    (line,) = errors(caplog)
    assert line.reason == exc.value.reason  # type: ignore[attr-defined]
    assert exc.value.code == 500  # a nack for Pub/Sub push
    return exc.value.reason


def test_supported_version_is_handled() -> None:
    handler = Recorder()
    data, attrs = valid("probe.requested")
    assert dispatch(push(data, attrs), {"probe.requested": handler}) == "done"
    (msg,) = handler.calls
    assert msg.event.probe_id == "p-1"


@pytest.mark.parametrize("version", ["2", "0", "99"])
def test_unsupported_version_of_a_handled_type_is_dead_lettered(caplog: pytest.LogCaptureFixture, version: str) -> None:
    handler = Recorder()
    data, attrs = valid("payment.succeeded")
    reason = refused(caplog, push(data, {**attrs, "schema_version": version}), {"payment.succeeded": handler})
    assert reason == f"payment.succeeded v{version} is not supported here (supported: [1])"
    assert handler.calls == []


@pytest.mark.parametrize(
    ("attrs", "why"),
    [
        ({}, "no event_type"),
        ({"schema_version": "1", "event_id": "e"}, "no event_type"),
        ({"event_type": ""}, "no event_type"),
        ("event_type=probe.requested", "not a map"),
    ],
)
def test_unclassifiable_messages_are_dead_lettered(caplog: pytest.LogCaptureFixture, attrs: Any, why: str) -> None:
    handler = Recorder()
    data, _ = valid("probe.requested")
    assert why in refused(caplog, push(data, attrs), {"probe.requested": handler})
    assert handler.calls == []


@pytest.mark.parametrize("data", [None, {}, {"message": "x"}, "text"])
def test_a_cloud_event_without_a_pubsub_message_is_dead_lettered(caplog: pytest.LogCaptureFixture, data: Any) -> None:
    import types

    assert "no Pub/Sub message" in refused(caplog, types.SimpleNamespace(data=data), {})


@pytest.mark.parametrize(
    ("mutate", "why"),
    [
        (lambda d, a: (d, {k: v for k, v in a.items() if k != "idempotency_key"}), "idempotency_key"),
        (lambda d, a: (d, {**a, "schema_version": "one"}), "malformed envelope attribute"),
        (lambda d, a: (d, {**a, "occurred_at": "2026-03-01T00:00:00"}), "no time zone"),
        (lambda d, a: (json.dumps({**json.loads(d), "extra": 1}).encode(), a), "body invalid"),
        (lambda d, a: (b"not json", a), "body invalid"),
    ],
)
def test_a_handled_type_with_a_broken_envelope_or_body_is_dead_lettered(
    caplog: pytest.LogCaptureFixture, mutate: Any, why: str
) -> None:
    handler = Recorder()
    data, attrs = mutate(*valid("renewal.due"))
    assert why in refused(caplog, push(data, attrs), {"renewal.due": handler})
    assert handler.calls == []


@pytest.mark.parametrize("version", ["1", "2", "garbage"])
def test_a_registered_type_this_consumer_does_not_handle_is_acknowledged(
    caplog: pytest.LogCaptureFixture, version: str
) -> None:
    handler = Recorder()
    data, attrs = valid("invoice.voided")
    with caplog.at_level(logging.INFO):
        assert dispatch(push(data, {**attrs, "schema_version": version}), {"probe.requested": handler}) is None
    assert handler.calls == []
    assert errors(caplog) == []
    assert [r.message for r in caplog.records if r.name == "shared.events.consumer"] == [
        "event type not handled here; acknowledged"
    ]


def test_a_type_unknown_to_the_contracts_is_dead_lettered(caplog: pytest.LogCaptureFixture) -> None:
    data, attrs = valid("probe.requested")
    reason = refused(caplog, push(data, {**attrs, "event_type": "payment.teleported"}), {"probe.requested": Recorder()})
    assert "'payment.teleported' is unknown to the contracts" in reason


def test_trigger_versions_absent_means_one(caplog: pytest.LogCaptureFixture) -> None:
    tick = Recorder("ticked")
    triggers = {"billing.tick": Trigger(tick)}
    assert dispatch(push(b"{}", {"event_type": "billing.tick"}), {}, triggers) == "ticked"
    assert dispatch(push(b"{}", {"event_type": "billing.tick", "schema_version": "1"}), {}, triggers) == "ticked"
    assert [m["attributes"]["event_type"] for m in tick.calls] == ["billing.tick", "billing.tick"]
    for v in ("2", "x"):
        ce = push(b"{}", {"event_type": "billing.tick", "schema_version": v})
        assert "billing.tick" in refused(caplog, ce, {}, triggers=triggers)
    assert len(tick.calls) == 2


def test_a_refusal_raised_by_a_handler_is_logged_once(caplog: pytest.LogCaptureFixture) -> None:
    def refuse(_: Any) -> object:
        raise Undeliverable("tick refused: shard must be an int in 0..3")

    ce = push(b"{}", {"event_type": "billing.tick"})
    assert refused(caplog, ce, {}, triggers={"billing.tick": Trigger(refuse)}) == (
        "tick refused: shard must be an int in 0..3"
    )


def test_over_http_a_refusal_is_a_500_with_one_error_line(
    caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    """functions-framework must not add its own traceback: the reason is logged once."""
    import base64

    app = function_app(monkeypatch, "probe_sink")
    data, attrs = valid("probe.requested")
    body = {
        "message": {
            "data": base64.b64encode(data).decode(),
            "attributes": {**attrs, "schema_version": "2"},
            "messageId": "m-7",
            "publishTime": "2026-03-01T10:00:00Z",
        },
        "subscription": "projects/p/subscriptions/probe-sink-probes",
    }
    with caplog.at_level(logging.INFO):
        resp = app.test_client().post("/projects/p/topics/probes", json=body)
    assert resp.status_code == 500
    (line,) = errors(caplog)
    assert line.reason == "probe.requested v2 is not supported here (supported: [1])"  # type: ignore[attr-defined]
    assert line.message_id == "m-7"  # type: ignore[attr-defined]
