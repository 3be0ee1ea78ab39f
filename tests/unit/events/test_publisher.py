"""The publisher port: envelope, order, waiting for every ack, stable ids; the in-memory twin behaves alike."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest

from shared.events import envelope, publish
from shared.events import publisher as port
from shared.events.envelope import make_event_id, parse_message
from shared.events.probe import ProbeRequested
from shared.events.publisher import Outgoing, PubSubPublisher, RawMessage, RecordingPublisher
from tests.helpers import T0


class Future:
    def __init__(self, log: list[Any], mid: str, error: Exception | None = None) -> None:
        self.log, self.mid, self.error = log, mid, error

    def result(self, timeout: float | None = None) -> str:
        self.log.append(("result", self.mid, timeout))
        if self.error is not None:
            raise self.error
        return self.mid


class FakeClient:
    """Stands in for the Pub/Sub client: records each call in order, answers futures."""

    def __init__(self, fail_on: int | None = None) -> None:
        self.log: list[Any] = []
        self.fail_on = fail_on

    def publish(self, topic: str, data: bytes, **attrs: str) -> Future:
        n = sum(1 for e in self.log if e[0] == "publish") + 1
        self.log.append(("publish", topic, data, attrs))
        return Future(self.log, f"m{n}", TimeoutError("no ack") if n == self.fail_on else None)


def probe(i: int) -> Outgoing:
    return Outgoing(ProbeRequested(probe_id=f"p-{i}"), f"p-{i}", T0)


def test_a_batch_is_sent_in_order_then_every_ack_is_awaited_in_order(env_project: str) -> None:
    client = FakeClient()
    ids = PubSubPublisher(client).publish_all([probe(1), probe(2), probe(3)], timeout_s=7.5)
    assert ids == ["m1", "m2", "m3"]
    kinds = [e[0] for e in client.log]
    assert kinds == ["publish"] * 3 + ["result"] * 3  # one RPC batch, then the waits
    assert [e[1:] for e in client.log if e[0] == "result"] == [("m1", 7.5), ("m2", 7.5), ("m3", 7.5)]
    sent = [e for e in client.log if e[0] == "publish"]
    assert {e[1] for e in sent} == {"projects/demo-unit/topics/probes"}
    assert [e[3]["idempotency_key"] for e in sent] == ["p-1", "p-2", "p-3"]
    assert sent[0][3]["producer"] == "local"
    assert sent[0][3]["event_id"] == make_event_id("probe.requested", "p-1")


def test_a_missing_ack_raises(env_project: str) -> None:
    with pytest.raises(TimeoutError):
        PubSubPublisher(FakeClient(fail_on=2)).publish_all([probe(1), probe(2), probe(3)])


def test_single_publish_keeps_event_id_ordering_key_and_timeout(env_project: str) -> None:
    client = FakeClient()
    event = ProbeRequested(probe_id="p-1")
    mid = PubSubPublisher(client).publish(
        event, idempotency_key="p-1", occurred_at=T0, event_id="given", ordering_key="k", timeout_s=8.0
    )
    (_, _, data, attrs), (_, _, timeout) = client.log
    assert (mid, timeout) == ("m1", 8.0)
    assert attrs["event_id"] == "given"
    assert attrs.pop("ordering_key") == "k"
    got = parse_message(data, attrs, mid)
    assert got.event == event
    assert got.envelope.occurred_at == T0


def test_raw_messages_keep_their_attributes(env_project: str) -> None:
    client = FakeClient()
    PubSubPublisher(client).publish_raw([RawMessage("billing-ticks", b"{}", {"event_type": "billing.tick"})])
    assert client.log[0][1:] == ("projects/demo-unit/topics/billing-ticks", b"{}", {"event_type": "billing.tick"})


def test_the_recording_publisher_builds_the_same_envelope() -> None:
    rec = RecordingPublisher()
    occurred = dt.datetime(2026, 2, 1, tzinfo=dt.UTC)
    ids = rec.publish_all([probe(1), Outgoing(ProbeRequested(probe_id="p-2"), "p-2", occurred)])
    rec.publish_raw([RawMessage("billing-ticks", b"{}", {"event_type": "billing.tick"})])
    assert ids == ["1", "2"]
    assert [s.topic for s in rec.sent] == ["probes", "probes", "billing-ticks"]
    first, second = rec.on("probes")
    assert first.event() == ProbeRequested(probe_id="p-1")
    assert first.attributes["event_id"] == make_event_id("probe.requested", "p-1")
    assert second.attributes["occurred_at"] == "2026-02-01T00:00:00Z"
    # Republishing the same fact is the same event downstream.
    rec.publish(ProbeRequested(probe_id="p-1"), idempotency_key="p-1", occurred_at=T0)
    assert rec.sent[-1].attributes["event_id"] == first.attributes["event_id"]


def test_the_envelope_helper_goes_through_the_default_port(monkeypatch: pytest.MonkeyPatch) -> None:
    rec = RecordingPublisher()
    monkeypatch.setattr(port, "_default", rec)
    assert publish(ProbeRequested(probe_id="p-7"), idempotency_key="p-7", occurred_at=T0) == "1"
    assert envelope.publish is publish
    assert rec.sent[0].event() == ProbeRequested(probe_id="p-7")
