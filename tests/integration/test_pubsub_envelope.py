"""Publishing through the real Pub/Sub emulator keeps the envelope intact."""

from __future__ import annotations

import datetime as dt

from shared.events import parse_message, publish
from shared.events.probe import ProbeRequested
from shared.log import bind
from tests.conftest import Gcp
from tests.helpers import pull


def test_publish_then_pull_parses_the_same_event(gcp: Gcp) -> None:
    gcp.topic("probes")
    sub_path = gcp.pull_subscription("probes")
    occurred = dt.datetime(2026, 11, 21, 9, 30, tzinfo=dt.UTC)
    with bind(("4bf92f3577b34da6a3ce929d0e0e4736", "00f067aa0ba902b7")):
        mid = publish(ProbeRequested(probe_id="p-9", note="x"), idempotency_key="p-9", occurred_at=occurred)

    received = pull(sub_path, 10, timeout_s=10)
    assert len(received) == 1
    m = received[0].message
    got = parse_message(m.data, dict(m.attributes), m.message_id)
    assert got.message_id == mid
    assert got.event == ProbeRequested(probe_id="p-9", note="x")
    assert got.envelope.occurred_at == occurred
    assert got.envelope.traceparent == "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
    assert got.envelope.producer == "local"
