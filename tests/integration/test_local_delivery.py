"""The local stack's concurrent delivery (infra/local/delivery.py) on the real Pub/Sub emulator.

A small HTTP server stands in for a function; the emulator holds the real subscriptions, their retry and
dead-letter policies. What push semantics require: deliveries in flight up to the function's concurrency
(shared by its subscriptions, never above it), each message once on a 2xx, redelivered with its attempt
number otherwise and dead-lettered after ``max_delivery_attempts``, a filtered-out message acknowledged
without a request. The emulator's own push never has more than two of a subscription's messages in flight.
"""

from __future__ import annotations

import base64
import json
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from google.cloud import pubsub_v1

from infra.local.delivery import DeliveryBridge
from infra.local.stack import Ports, Stack
from infra.local.topology import Subscription
from tests.conftest import Gcp
from tests.helpers import wait_for


@dataclass
class Endpoint:
    """Records every POST; answers ``status_for(message)``; holds requests while ``gate`` is closed."""

    gate: threading.Event = field(default_factory=threading.Event)
    seen: list[tuple[str, dict[str, Any]]] = field(default_factory=list)
    in_flight: int = 0
    peak: int = 0
    fail_ids: set[str] = field(default_factory=set)
    lock: threading.Lock = field(default_factory=threading.Lock)
    url: str = ""

    def handle(self, path: str, body: dict[str, Any]) -> int:
        with self.lock:
            self.seen.append((path, body))
            self.in_flight += 1
            self.peak = max(self.peak, self.in_flight)
        try:
            self.gate.wait(timeout=60)
            return 500 if body["message"]["attributes"].get("id") in self.fail_ids else 204
        finally:
            with self.lock:
                self.in_flight -= 1

    def ids(self) -> list[str]:
        with self.lock:
            return [b["message"]["attributes"]["id"] for _, b in self.seen]


@pytest.fixture
def endpoint() -> Iterator[Endpoint]:
    ep = Endpoint()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = json.loads(self.rfile.read(int(self.headers.get("content-length") or 0)))
            status = ep.handle(self.path, body)
            self.send_response(status)
            self.send_header("content-length", "0")
            self.end_headers()

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    ep.url = f"http://127.0.0.1:{server.server_address[1]}"
    try:
        yield ep
    finally:
        ep.gate.set()
        server.shutdown()
        server.server_close()


def _subscription(gcp: Gcp, name: str, topic: str, **kw: Any) -> tuple[Subscription, str]:
    """A pull subscription as the stack provisions it for the bridge (retry and dead-letter policy)."""
    sub = Subscription(
        name=name,
        topic=topic,
        function="fn",
        ack_deadline_s=kw.pop("ack_deadline_s", 60),
        max_delivery_attempts=kw.pop("max_delivery_attempts", 10),
        min_backoff_s=1,
        max_backoff_s=2,
        **kw,
    )
    client = pubsub_v1.SubscriberClient()
    path = client.subscription_path(gcp.project, name)
    dlq = gcp.topic(sub.dead_letter_topic)
    client.create_subscription(
        request={
            "name": path,
            "topic": f"projects/{gcp.project}/topics/{topic}",
            "ack_deadline_seconds": sub.ack_deadline_s,
            "dead_letter_policy": {"dead_letter_topic": dlq, "max_delivery_attempts": sub.max_delivery_attempts},
            "retry_policy": {"minimum_backoff": {"seconds": 1}, "maximum_backoff": {"seconds": 2}},
        }
    )
    return sub, path


@pytest.fixture
def bridge_factory() -> Iterator[Any]:
    made: list[DeliveryBridge] = []

    def make(limit: int) -> DeliveryBridge:
        b = DeliveryBridge(pubsub_v1.SubscriberClient(), {"fn": limit})
        made.append(b)
        return b

    yield make
    for b in made:
        b.close()


def _publish(gcp: Gcp, topic: str, ids: list[str], **attrs: str) -> None:
    pub = pubsub_v1.PublisherClient()
    path = pub.topic_path(gcp.project, topic)
    for f in [pub.publish(path, json.dumps({"id": i}).encode(), id=i, **attrs) for i in ids]:
        f.result()


def test_deliveries_run_concurrently_up_to_the_function_limit_shared_by_its_subscriptions(
    gcp: Gcp, endpoint: Endpoint, bridge_factory: Any
) -> None:
    gcp.topic("alpha")
    gcp.topic("beta")
    bridge = bridge_factory(5)
    for name, topic in (("fn-alpha", "alpha"), ("fn-beta", "beta")):
        sub, path = _subscription(gcp, name, topic)
        bridge.route(sub, path, f"{endpoint.url}/projects/{gcp.project}/topics/{topic}")
    bridge.start()
    ids = {"alpha": [f"a{i}" for i in range(8)], "beta": [f"b{i}" for i in range(8)]}
    for topic, topic_ids in ids.items():
        _publish(gcp, topic, topic_ids)

    # The gate holds every request: the bridge fills the function's five slots, and no more.
    wait_for(lambda: endpoint.in_flight == 5, timeout_s=30)
    endpoint.gate.set()
    wait_for(lambda: len(endpoint.seen) >= 16, timeout_s=30)

    assert endpoint.peak == 5
    assert bridge.peak("fn") == 5
    assert sorted(endpoint.ids()) == sorted(ids["alpha"] + ids["beta"])  # each once: a 2xx acknowledges
    assert bridge.delivered == 16
    path, body = next((p, b) for p, b in endpoint.seen if b["message"]["attributes"]["id"] == "a0")
    assert path == f"/projects/{gcp.project}/topics/alpha"
    assert body["subscription"] == f"projects/{gcp.project}/subscriptions/fn-alpha"
    assert json.loads(base64.b64decode(body["message"]["data"])) == {"id": "a0"}
    assert body["message"]["messageId"] == body["message"]["message_id"]
    assert body["message"]["publishTime"].endswith("Z")
    assert body["deliveryAttempt"] == 1


def test_a_failed_delivery_is_redelivered_then_dead_lettered_and_an_answered_one_is_not(
    gcp: Gcp, endpoint: Endpoint, bridge_factory: Any
) -> None:
    gcp.topic("gamma")
    sub, path = _subscription(gcp, "fn-gamma", "gamma", max_delivery_attempts=5)
    dlq_pull = gcp.pull_subscription(sub.dead_letter_topic, "dlq-pull")
    endpoint.fail_ids = {"bad"}
    endpoint.gate.set()
    bridge = bridge_factory(3)
    bridge.route(sub, path, f"{endpoint.url}/projects/{gcp.project}/topics/gamma")
    bridge.start()
    _publish(gcp, "gamma", ["good", "bad"])

    client = pubsub_v1.SubscriberClient()
    dead = wait_for(lambda: client.pull(subscription=dlq_pull, max_messages=10).received_messages, timeout_s=60)

    assert [m.message.attributes["id"] for m in dead] == ["bad"]
    assert dead[0].message.attributes["CloudPubSubDeadLetterSourceDeliveryCount"] == "5"
    attempts = [b.get("deliveryAttempt") for _, b in endpoint.seen if b["message"]["attributes"]["id"] == "bad"]
    assert attempts == [1, 2, 3, 4, 5]
    assert endpoint.ids().count("good") == 1  # acknowledged on its 204: never redelivered meanwhile
    assert bridge.failed == 5


def test_a_message_the_filter_drops_is_acknowledged_without_a_request(
    gcp: Gcp, endpoint: Endpoint, bridge_factory: Any
) -> None:
    gcp.topic("delta")
    sub, path = _subscription(gcp, "fn-delta", "delta", filter='attributes.event_type = "wanted"')
    endpoint.gate.set()
    bridge = bridge_factory(2)
    bridge.route(sub, path, f"{endpoint.url}/projects/{gcp.project}/topics/delta")
    bridge.start()
    _publish(gcp, "delta", ["skip"], event_type="other")
    _publish(gcp, "delta", ["take"], event_type="wanted")

    wait_for(lambda: bridge.filtered == 1 and endpoint.ids() == ["take"], timeout_s=30)
    assert bridge.delivered == 1


def test_the_stack_with_concurrent_delivery_pulls_every_subscription_and_sizes_the_servers(
    gcp: Gcp, endpoint: Endpoint
) -> None:
    endpoint.gate.set()
    port = {k: int(str(getattr(gcp.hosts, k)).rsplit(":", 1)[1]) for k in ("pubsub", "firestore", "storage")}
    stack = Stack(project=gcp.project, ports=Ports(**port), use_lock=False, delivery="concurrent", max_concurrency=3)
    stack.function_urls = dict.fromkeys(stack.topology.functions, endpoint.url)
    try:
        stack.provision()
        _publish(gcp, "probes", ["p1"])
        wait_for(lambda: endpoint.ids() == ["p1"], timeout_s=30)
        assert endpoint.seen[0][0] == f"/projects/{gcp.project}/topics/probes"
        client = pubsub_v1.SubscriberClient()
        for s in stack.topology.subscriptions.values():
            got = client.get_subscription(subscription=client.subscription_path(gcp.project, s.name))
            assert got.push_config.push_endpoint == ""  # pulled by the bridge, not pushed by the emulator
            assert got.dead_letter_policy.max_delivery_attempts == s.max_delivery_attempts
        assert stack.push_filter is None  # the bridge applies the filters itself
        assert stack.function_env("invoices")["THREADS"] == "3"
        assert stack.concurrency("invoices") == 3
        assert Stack(use_lock=False).concurrency("invoices") == 80  # the topology's, uncapped
        assert "THREADS" not in Stack(use_lock=False).function_env("invoices")
    finally:
        stack.stop()
    with pytest.raises(ValueError, match="delivery"):
        Stack(delivery="fast")
