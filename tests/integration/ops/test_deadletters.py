"""Dead-letter listing and replay against the real Pub/Sub emulator, with real dead-lettering.

Messages reach ``<sub>-dlq`` the way they do in production: the source subscription has a
dead-letter policy and the test nacks every delivery until Pub/Sub moves the message.
"""

from __future__ import annotations

import datetime as dt
import io
import json
from collections.abc import Sequence
from dataclasses import dataclass

import pytest
from google.cloud import pubsub_v1

from shared.config import reset_settings
from shared.events import build_message
from shared.events.probe import ProbeRequested
from shared.events.publisher import DEFAULT_TIMEOUT_S, RawMessage, RecordingPublisher
from shared.ops.deadletters import DeadLetters, main
from tests.conftest import Gcp
from tests.helpers import pull, wait_for

pytestmark = pytest.mark.filterwarnings("ignore:The return_immediately flag:DeprecationWarning")

SUB = "probe-sink-probes"
ATTEMPTS = 5


@dataclass
class Wiring:
    project: str
    topic: str
    source: str
    dlq: str
    pub: pubsub_v1.PublisherClient
    sub: pubsub_v1.SubscriberClient

    def publish(self, probe_id: str, **extra: str) -> tuple[bytes, dict[str, str]]:
        data, attrs = build_message(
            ProbeRequested(probe_id=probe_id),
            idempotency_key=probe_id,
            occurred_at=dt.datetime(2026, 1, 2, 3, 4, 5, tzinfo=dt.UTC),
        )
        attrs = {**attrs, **extra}
        self.pub.publish(self.topic, data, **attrs).result(timeout=60)
        return data, attrs

    def pull(self, subscription: str, max_messages: int = 50) -> list[pubsub_v1.types.ReceivedMessage]:
        return pull(subscription, max_messages, ack=False, wait=False)

    def fail_until_dead_lettered(self, expected: int) -> None:
        """Nack every delivery of the source subscription until ``expected`` messages sit in the DLQ."""

        def dlq_count() -> int:
            msgs = self.pull(self.dlq)
            if msgs:
                self.sub.modify_ack_deadline(
                    request={"subscription": self.dlq, "ack_ids": [m.ack_id for m in msgs], "ack_deadline_seconds": 0}
                )
            return len(msgs)

        def step() -> bool:
            msgs = self.pull(self.source)
            if msgs:
                self.sub.modify_ack_deadline(
                    request={
                        "subscription": self.source,
                        "ack_ids": [m.ack_id for m in msgs],
                        "ack_deadline_seconds": 0,
                    }
                )
                return False
            return dlq_count() >= expected

        wait_for(step, timeout_s=120, interval_s=0.05)  # a deadline for a broken run only


@pytest.fixture
def wiring(gcp: Gcp) -> Wiring:
    pub = pubsub_v1.PublisherClient()
    sub = pubsub_v1.SubscriberClient()
    topic = gcp.topic("probes")
    dlq_topic = gcp.topic(f"{SUB}-dlq")
    source = sub.subscription_path(gcp.project, SUB)
    sub.create_subscription(
        request={
            "name": source,
            "topic": topic,
            "ack_deadline_seconds": 10,
            "dead_letter_policy": {"dead_letter_topic": dlq_topic, "max_delivery_attempts": ATTEMPTS},
        }
    )
    dlq = gcp.pull_subscription(f"{SUB}-dlq", f"{SUB}-dlq")
    return Wiring(gcp.project, topic, source, dlq, pub, sub)


def test_list_shows_envelope_and_dead_letter_facts_without_consuming(wiring: Wiring) -> None:
    data, attrs = wiring.publish("p-1")
    wiring.fail_until_dead_lettered(1)
    tool = DeadLetters(wiring.project)

    (letter,) = tool.list(SUB)
    assert letter.data == data
    assert letter.original_attributes == attrs
    assert letter.delivery_count == ATTEMPTS
    summary = letter.summary()
    assert summary["envelope"]["event_type"] == "probe.requested"
    assert summary["envelope"]["idempotency_key"] == "p-1"
    assert summary["source_subscription"] == SUB
    assert summary["data"]["probe_id"] == "p-1"
    # Listing released the lease: the dead letter is still there for the next operator.
    assert [d.message_id for d in tool.list(SUB)] == [letter.message_id]


def test_replay_republishes_data_and_attributes_to_the_source_topic_then_acks(wiring: Wiring) -> None:
    sent = dict([wiring.publish("p-1"), wiring.publish("p-2", traceparent="00-" + "a" * 32 + "-" + "b" * 16 + "-01")])
    wiring.fail_until_dead_lettered(2)
    tool = DeadLetters(wiring.project)

    report = tool.replay(SUB)

    assert report.topic == wiring.topic
    assert len(report.replayed) == 2
    assert not report.failed
    received = wait_for(lambda: wiring.pull(wiring.source) or None)
    got = {bytes(m.message.data): dict(m.message.attributes) for m in received}
    assert got == sent, "data and the original attributes arrive unchanged, without dead-letter bookkeeping"
    assert tool.list(SUB) == [], "replayed dead letters are acknowledged"


def test_replay_only_selected_event_ids_leaves_the_rest_dead_lettered(wiring: Wiring) -> None:
    _, keep = wiring.publish("p-keep")
    _, take = wiring.publish("p-take")
    wiring.fail_until_dead_lettered(2)
    tool = DeadLetters(wiring.project)

    report = tool.replay(SUB, select=lambda d: d.event_id == take["event_id"])

    assert len(report.replayed) == 1
    assert len(report.skipped) == 1
    (msg,) = wait_for(lambda: wiring.pull(wiring.source) or None)
    assert msg.message.attributes["event_id"] == take["event_id"]
    (left,) = tool.list(SUB)
    assert left.event_id == keep["event_id"]


def test_dry_run_changes_nothing(wiring: Wiring) -> None:
    wiring.publish("p-1")
    wiring.fail_until_dead_lettered(1)
    tool = DeadLetters(wiring.project)

    report = tool.replay(SUB, dry_run=True)

    assert len(report.selected) == 1
    assert report.replayed == []
    assert wiring.pull(wiring.source) == []
    assert len(tool.list(SUB)) == 1


def test_a_failed_publish_keeps_the_dead_letter(wiring: Wiring) -> None:
    wiring.publish("p-1")
    wiring.fail_until_dead_lettered(1)
    # The source topic disappears (e.g. renamed): republishing fails, so nothing may be acknowledged.
    wiring.pub.delete_topic(request={"topic": wiring.topic})
    out = io.StringIO()

    code = main(["--project", wiring.project, "replay", SUB], out=out)

    assert code == 1
    result = json.loads(out.getvalue())
    assert len(result["failed"]) == 1
    assert result["replayed"] == []
    assert len(DeadLetters(wiring.project).list(SUB)) == 1


def test_cli_lists_as_json_lines_and_replays_by_event_id(wiring: Wiring) -> None:
    _, a = wiring.publish("p-a")
    wiring.publish("p-b")
    wiring.fail_until_dead_lettered(2)

    out = io.StringIO()
    assert main(["--project", wiring.project, "list", SUB], out=out) == 0
    lines = out.getvalue().splitlines()
    rows = [json.loads(line) for line in lines if not line.startswith("#")]
    assert {r["envelope"]["idempotency_key"] for r in rows} == {"p-a", "p-b"}
    assert lines[-1] == f"# {SUB}-dlq: 2 dead letter(s)"

    out = io.StringIO()
    assert main(["--project", wiring.project, "replay", SUB, "--event-id", a["event_id"]], out=out) == 0
    result = json.loads(out.getvalue())
    assert len(result["replayed"]) == 1
    assert len(result["skipped"]) == 1


def test_replay_goes_through_the_publisher_port_with_the_original_message(wiring: Wiring) -> None:
    data, attrs = wiring.publish("p-port")
    wiring.fail_until_dead_lettered(1)
    port = RecordingPublisher()

    report = DeadLetters(wiring.project, publisher=port).replay(SUB)

    (sent,) = port.sent
    assert (sent.topic, sent.data, sent.attributes, sent.ordering_key) == (wiring.topic, data, attrs, None)
    assert report.republished_ids == [sent.message_id]
    assert DeadLetters(wiring.project).list(SUB) == [], "acknowledged once the port answered"


class FailingPort(RecordingPublisher):
    """Accepts the first ``ok`` messages, then every publish fails (as a lost ack would)."""

    ok: int = 0

    def publish_raw(self, messages: Sequence[RawMessage], timeout_s: float = DEFAULT_TIMEOUT_S) -> list[str]:
        if len(self.sent) >= self.ok:
            raise TimeoutError("no ack")
        return super().publish_raw(messages, timeout_s)


def test_a_publish_failing_in_the_port_leaves_only_that_dead_letter(wiring: Wiring) -> None:
    wiring.publish("p-1")
    wiring.publish("p-2")
    wiring.fail_until_dead_lettered(2)
    port = FailingPort()
    port.ok = 1

    report = DeadLetters(wiring.project, publisher=port).replay(SUB)

    assert len(report.replayed) == 1
    assert list(report.failed.values()) == ["TimeoutError: no ack"]
    (left,) = DeadLetters(wiring.project).list(SUB)
    assert left.message_id in report.failed
    assert left.event_id != port.sent[0].attributes["event_id"]


def test_replay_keeps_the_ordering_key_and_the_named_project(wiring: Wiring, monkeypatch: pytest.MonkeyPatch) -> None:
    """The port publishes to the source topic's full path, so ``--project`` wins over GOOGLE_CLOUD_PROJECT."""
    ordered = pubsub_v1.PublisherClient(
        publisher_options=pubsub_v1.types.PublisherOptions(enable_message_ordering=True)
    )
    ordered.publish(wiring.topic, b"{}", ordering_key="sub-42", event_type="probe.requested").result(timeout=60)
    wiring.fail_until_dead_lettered(1)
    monkeypatch.setenv("GOOGLE_CLOUD_PROJECT", "demo-some-other-project")
    reset_settings()
    out = io.StringIO()

    assert main(["--project", wiring.project, "replay", SUB], out=out) == 0

    (msg,) = wait_for(lambda: wiring.pull(wiring.source) or None)
    assert msg.message.ordering_key == "sub-42"
    assert dict(msg.message.attributes) == {"event_type": "probe.requested"}
