"""An unsupported schema_version ends in the dead-letter subscription, through the real probe_sink function.

The Pub/Sub emulator holds the real subscription with its dead-letter policy; each delivery is handed
to the function the way a push subscription does (an HTTP POST to functions-framework) and acked on
a 2xx answer, nacked otherwise, until Pub/Sub moves the message. Beside it, a valid probe is handled
and a registered type the sink does not handle is acknowledged: neither is dead-lettered.
"""

from __future__ import annotations

import base64
import datetime as dt
import logging
from typing import Any

import pytest
from google.cloud import pubsub_v1

from shared import clients
from shared.events import build_message
from shared.events.payments import PaymentSucceeded
from shared.events.probe import ProbeRequested
from shared.ops.deadletters import DeadLetters
from tests.conftest import Gcp
from tests.helpers import wait_for
from tests.unit.events.samples import function_app

pytestmark = pytest.mark.filterwarnings("ignore:The return_immediately flag:DeprecationWarning")

SUB = "probe-sink-probes"
ATTEMPTS = 5
T0 = dt.datetime(2026, 3, 1, tzinfo=dt.UTC)


@pytest.fixture
def app(gcp: Gcp, monkeypatch: pytest.MonkeyPatch) -> Any:
    return function_app(monkeypatch, "probe_sink")


def test_unsupported_version_is_dead_lettered_with_its_reason_logged(
    gcp: Gcp, app: Any, caplog: pytest.LogCaptureFixture
) -> None:
    pub, sub = pubsub_v1.PublisherClient(), pubsub_v1.SubscriberClient()
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
    gcp.pull_subscription(f"{SUB}-dlq", f"{SUB}-dlq")

    future_data, future_attrs = build_message(ProbeRequested(probe_id="p-v2"), idempotency_key="p-v2", occurred_at=T0)
    future_attrs["schema_version"] = "2"  # a producer deployed ahead of this consumer
    sent = [
        (future_data, future_attrs),
        build_message(ProbeRequested(probe_id="p-v1"), idempotency_key="p-v1", occurred_at=T0),
        build_message(
            PaymentSucceeded(psp="stripe", psp_payment_id="pi_1", livemode=False, psp_created_at=T0),
            idempotency_key="stripe:default:pi_1:payment.succeeded",
            occurred_at=T0,
        ),
    ]
    for data, attrs in sent:
        pub.publish(topic, data, **attrs).result(timeout=60)

    client = app.test_client()
    answers: dict[str, list[int]] = {}
    source_ids: dict[str, set[str]] = {}

    def deliver_round() -> bool:
        resp = sub.pull(request={"subscription": source, "max_messages": 10, "return_immediately": True}, timeout=10)
        acks: list[str] = []
        nacks: list[str] = []
        for m in resp.received_messages:
            body = {
                "message": {
                    "data": base64.b64encode(m.message.data).decode(),
                    "attributes": dict(m.message.attributes),
                    "messageId": m.message.message_id,
                    "publishTime": m.message.publish_time.isoformat(),
                },
                "subscription": source,
            }
            status = client.post(f"/projects/{gcp.project}/topics/probes", json=body).status_code
            key = m.message.attributes["idempotency_key"]
            answers.setdefault(key, []).append(status)
            source_ids.setdefault(key, set()).add(m.message.message_id)
            (acks if 200 <= status < 300 else nacks).append(m.ack_id)
        if acks:
            sub.acknowledge(request={"subscription": source, "ack_ids": acks})
        if nacks:
            sub.modify_ack_deadline(request={"subscription": source, "ack_ids": nacks, "ack_deadline_seconds": 0})
        # Done when each message was acked or refused as often as the policy allows.
        settled = all(a[-1] == 200 or len(a) >= ATTEMPTS for a in answers.values())
        return len(answers) == len(sent) and settled and not resp.received_messages

    with caplog.at_level(logging.INFO):
        wait_for(deliver_round, timeout_s=120, interval_s=0.05)

    # The v2 probe was refused on every delivery, then moved by Pub/Sub; the others were acked once.
    assert answers == {
        "p-v2": [500] * ATTEMPTS,
        "p-v1": [200],
        "stripe:default:pi_1:payment.succeeded": [200],
    }
    (letter,) = DeadLetters(gcp.project).list(SUB)
    assert (letter.data, letter.original_attributes) == (future_data, future_attrs)
    assert letter.delivery_count == ATTEMPTS

    errors = [r for r in caplog.records if r.levelno >= logging.ERROR]
    reason = "probe.requested v2 is not supported here (supported: [1])"
    assert [getattr(r, "reason", None) for r in errors] == [reason] * ATTEMPTS  # once per delivery, nothing else
    assert {getattr(r, "message_id", None) for r in errors} == source_ids["p-v2"]

    assert clients.firestore().collection("probes").document("p-v1").get().exists
    assert not clients.firestore().collection("probes").document("p-v2").get().exists
