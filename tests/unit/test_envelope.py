"""Envelope and contracts: attributes round-trip, deterministic ids, strict parsing."""

from __future__ import annotations

import base64
import datetime as dt
import json

import pytest

from shared.events import EnvelopeError, UnknownEventType, build_message, parse_message, parse_push
from shared.events.envelope import Envelope, parse_cloud_event, registered
from shared.events.probe import ProbeRequested
from shared.log import bind

NOW = dt.datetime(2026, 11, 21, 12, 0, tzinfo=dt.UTC)


@pytest.fixture(autouse=True)
def _project(env_project: str) -> None:
    return None


def test_message_round_trips_through_attributes() -> None:
    data, attrs = build_message(ProbeRequested(probe_id="p1", note="n"), idempotency_key="p1", occurred_at=NOW)
    assert attrs["event_type"] == "probe.requested"
    assert attrs["schema_version"] == "1"
    assert attrs["occurred_at"] == "2026-11-21T12:00:00Z"
    assert attrs["idempotency_key"] == "p1"
    msg = parse_message(data, attrs, "m1")
    assert msg.event == ProbeRequested(probe_id="p1", note="n")
    assert msg.envelope.occurred_at == NOW
    assert msg.envelope.event_id == attrs["event_id"]


def test_event_id_is_deterministic_per_fact() -> None:
    _, a = build_message(ProbeRequested(probe_id="p1"), idempotency_key="k", occurred_at=NOW)
    _, b = build_message(ProbeRequested(probe_id="p1"), idempotency_key="k", occurred_at=NOW + dt.timedelta(hours=1))
    _, c = build_message(ProbeRequested(probe_id="p1"), idempotency_key="other", occurred_at=NOW)
    assert a["event_id"] == b["event_id"] != c["event_id"]


def test_trace_context_propagates_into_attributes() -> None:
    with bind(("4bf92f3577b34da6a3ce929d0e0e4736", "00f067aa0ba902b7")):
        _, attrs = build_message(ProbeRequested(probe_id="p1"), idempotency_key="k", occurred_at=NOW)
    assert attrs["traceparent"] == "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"


def test_naive_occurred_at_is_refused() -> None:
    with pytest.raises(ValueError, match="timezone"):
        build_message(ProbeRequested(probe_id="p1"), idempotency_key="k", occurred_at=dt.datetime(2026, 1, 1))


@pytest.mark.parametrize("missing", ["event_type", "event_id", "schema_version", "occurred_at", "idempotency_key"])
def test_missing_attribute_is_a_clear_error(missing: str) -> None:
    data, attrs = build_message(ProbeRequested(probe_id="p1"), idempotency_key="k", occurred_at=NOW)
    del attrs[missing]
    with pytest.raises(EnvelopeError, match=missing):
        parse_message(data, attrs, "m")


def test_body_that_breaks_the_contract_is_refused() -> None:
    data, attrs = build_message(ProbeRequested(probe_id="p1"), idempotency_key="k", occurred_at=NOW)
    body = json.loads(data)
    body["unexpected"] = 1
    with pytest.raises(EnvelopeError, match="body invalid"):
        parse_message(json.dumps(body).encode(), attrs, "m")


def test_unknown_type_is_distinguishable_from_malformed() -> None:
    data, attrs = build_message(ProbeRequested(probe_id="p1"), idempotency_key="k", occurred_at=NOW)
    attrs["schema_version"] = "99"
    with pytest.raises(UnknownEventType):
        parse_message(data, attrs, "m")


def test_push_body_and_cloud_event_parse_alike() -> None:
    data, attrs = build_message(ProbeRequested(probe_id="p1"), idempotency_key="k", occurred_at=NOW)
    message = {"data": base64.b64encode(data).decode(), "attributes": attrs, "messageId": "42"}
    from_push = parse_push({"message": message, "subscription": "projects/p/subscriptions/s"})

    from cloudevents.http import CloudEvent  # what functions-framework hands a @cloud_event function

    ce = CloudEvent(
        {"type": "google.cloud.pubsub.topic.v1.messagePublished", "source": "//pubsub"}, {"message": message}
    )
    from_ce = parse_cloud_event(ce)
    assert from_push.event == from_ce.event
    assert from_push.message_id == from_ce.message_id == "42"


@pytest.mark.parametrize("body", [None, [], {"message": "x"}, {"message": {"data": "%%%", "attributes": {}}}])
def test_garbage_push_bodies_are_envelope_errors(body: object) -> None:
    with pytest.raises(EnvelopeError):
        parse_push(body)


def test_every_registered_contract_declares_topic_and_version() -> None:
    import shared.events.billing
    import shared.events.payments  # noqa: F401

    for (etype, version), cls in registered().items():
        assert etype == cls.EVENT_TYPE
        assert version >= 1
        assert cls.TOPIC


def test_envelope_attributes_round_trip() -> None:
    env = Envelope("t", "id", 2, NOW, "k", None, "fn")
    assert Envelope.from_attributes(env.attributes()) == env
