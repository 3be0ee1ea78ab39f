"""The Pub/Sub publisher port against the emulator: every message acknowledged, ids answered in batch order."""

from __future__ import annotations

from shared.events import parse_message
from shared.events.envelope import make_event_id
from shared.events.probe import ProbeRequested
from shared.events.publisher import Outgoing, PubSubPublisher, RawMessage
from tests.conftest import Gcp
from tests.helpers import T0, drain_messages


def test_a_batch_is_acknowledged_with_its_ids_in_order(gcp: Gcp) -> None:
    gcp.topic("probes")
    gcp.topic("billing-ticks")
    probes, ticks = gcp.pull_subscription("probes"), gcp.pull_subscription("billing-ticks")
    pub = PubSubPublisher()
    ids = pub.publish_all([Outgoing(ProbeRequested(probe_id=f"p-{i}"), f"p-{i}", T0) for i in range(5)])
    raw = pub.publish_raw([RawMessage("billing-ticks", b'{"shard": 1}', {"event_type": "billing.tick"})])
    got = {m.message_id: parse_message(m.data, dict(m.attributes), m.message_id) for m in drain_messages(probes)}
    assert sorted(got) == sorted(ids)
    assert [got[mid].envelope.idempotency_key for mid in ids] == [f"p-{i}" for i in range(5)]
    assert [got[mid].envelope.event_id for mid in ids] == [make_event_id("probe.requested", f"p-{i}") for i in range(5)]
    (tick,) = drain_messages(ticks)
    assert (tick.message_id, tick.data) == (raw[0], b'{"shard": 1}')
    assert dict(tick.attributes) == {"event_type": "billing.tick"}
