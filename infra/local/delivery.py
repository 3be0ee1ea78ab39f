"""Concurrent push delivery on the local stack, as Pub/Sub push delivers a burst in the cloud.

The Pub/Sub emulator (0.8.x) runs two push loops per subscription; each pulls ONE message, POSTs it and
waits for the answer, so at most two deliveries of a subscription are in flight whatever the function
accepts. In the cloud a renewal run is a burst: push sends concurrently up to what the function's instances
accept (``concurrency`` per instance in ``infra/topology.yaml``), and the functions' group commits (numbering
batches, archive objects) amortise over it. A trickle measures something else.

:class:`DeliveryBridge` delivers the cloud's way. Every subscription stays an emulator subscription (a pull
one), so the emulator keeps its retry policy, delivery counts and dead-letter policy; the bridge pulls what
the function has room for and POSTs each message in the push envelope (``deliveryAttempt`` included, as
push sends it when a dead-letter policy is set) to the function's endpoint. At most ``limit`` deliveries per
function are in flight across all its subscriptions (one local process is one instance); a 2xx answer
acknowledges, anything else, or no answer within the ack deadline, nacks, so the emulator redelivers with
the subscription's backoff and dead-letters after ``max_delivery_attempts``. No ordering. A subscription's
filter is applied here: a message that does not match is acknowledged without a POST, as Pub/Sub does.
"""

from __future__ import annotations

import base64
import contextlib
import json
import threading
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

from infra.local.pushfilter import post
from infra.local.topology import Matcher, Subscription, compile_filter

# Idle polling: the emulator's own push loops look again every 100 ms when a subscription is empty.
IDLE_MIN_S, IDLE_MAX_S = 0.01, 0.1
MAX_PULL = 100  # messages per pull (the Pub/Sub Pull maximum is 1,000; a pull only takes what has room)


@dataclass
class _Route:
    sub: Subscription
    path: str  # projects/<p>/subscriptions/<name>
    endpoint: str  # the push endpoint (function URL + /projects/<p>/topics/<topic>)
    function: str
    matches: Matcher


@dataclass
class _Function:
    limit: int
    slots: threading.Semaphore
    pool: ThreadPoolExecutor
    in_flight: int = 0
    peak: int = 0  # most deliveries in flight at once (tests and the benchmark read it)


class DeliveryBridge:
    """Push deliveries for every routed subscription, up to each function's concurrency."""

    def __init__(self, subscriber: Any, limits: dict[str, int]) -> None:
        """``subscriber``: a ``SubscriberClient`` on the emulator; ``limits``: concurrency per function key."""
        self._sub = subscriber
        self._pull = subscriber.transport.pull  # the raw call: the client warns on every immediate pull
        self._functions = {
            k: _Function(n, threading.Semaphore(n), ThreadPoolExecutor(n, thread_name_prefix=f"push-{k}"))
            for k, n in limits.items()
            if n > 0
        }
        self._routes: dict[str, _Route] = {}
        self._threads: dict[str, threading.Thread] = {}
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self.delivered = 0  # POSTs answered 2xx
        self.failed = 0  # POSTs nacked (non-2xx, no answer)
        self.filtered = 0  # messages acknowledged without a POST

    def route(self, sub: Subscription, path: str, endpoint: str) -> None:
        if sub.function not in self._functions:
            raise ValueError(f"no concurrency limit for function {sub.function!r}")
        self._routes[path] = _Route(sub, path, endpoint, sub.function, compile_filter(sub.filter))

    def peak(self, function: str) -> int:
        return self._functions[function].peak

    def start(self) -> None:
        """Start pulling for every routed subscription not pulled yet (a second call adds new routes)."""
        for path, r in self._routes.items():
            if path not in self._threads:
                t = threading.Thread(target=self._pull_loop, args=(r,), name=f"pull-{r.sub.name}", daemon=True)
                t.start()
                self._threads[path] = t

    def close(self) -> None:
        self._stop.set()
        for t in self._threads.values():
            t.join(timeout=5)
        for f in self._functions.values():
            f.pool.shutdown(wait=False, cancel_futures=True)

    # -- pulling ------------------------------------------------------------------------------
    def _pull_loop(self, r: _Route) -> None:
        from google.pubsub_v1.types import PullRequest

        fn = self._functions[r.function]
        idle = IDLE_MIN_S
        while not self._stop.is_set():
            if not fn.slots.acquire(timeout=0.2):
                continue
            room = 1
            while room < MAX_PULL and fn.slots.acquire(blocking=False):
                room += 1
            try:
                resp = self._pull(
                    PullRequest(subscription=r.path, max_messages=room, return_immediately=True), timeout=10
                )
                msgs = list(resp.received_messages)
            except Exception:  # emulator stopping or busy: look again
                msgs = []
            for _ in range(room - len(msgs)):
                fn.slots.release()
            if not msgs:
                self._stop.wait(idle)
                idle = min(idle * 2, IDLE_MAX_S)
                continue
            idle = IDLE_MIN_S
            for m in msgs:
                fn.pool.submit(self._deliver, r, fn, m)

    # -- one delivery -------------------------------------------------------------------------
    def _deliver(self, r: _Route, fn: _Function, received: Any) -> None:
        try:
            msg = received.message
            if not r.matches(dict(msg.attributes)):
                with self._lock:
                    self.filtered += 1
                self._answer(r, received.ack_id, True)
                return
            with self._lock:
                fn.in_flight += 1
                fn.peak = max(fn.peak, fn.in_flight)
            ok = False
            try:
                ok = self._post(r, envelope(r.path, msg, received.delivery_attempt))
            finally:
                with self._lock:
                    fn.in_flight -= 1
                    if ok:
                        self.delivered += 1
                    else:
                        self.failed += 1
            self._answer(r, received.ack_id, ok)
        finally:
            fn.slots.release()

    def _post(self, r: _Route, body: bytes) -> bool:
        # Push waits for the answer up to the ack deadline; a later answer is a nack.
        status, _ = post(r.endpoint, body, {"content-type": "application/json"}, timeout=r.sub.ack_deadline_s)
        return 200 <= status < 300

    def _answer(self, r: _Route, ack_id: str, ok: bool) -> None:
        # An expired ack id or a stopping emulator fails the call: the message is redelivered, as by Pub/Sub.
        with contextlib.suppress(Exception):
            if ok:
                self._sub.acknowledge(subscription=r.path, ack_ids=[ack_id])
            else:  # a nack: the emulator redelivers after the retry policy's backoff, or dead-letters
                self._sub.modify_ack_deadline(subscription=r.path, ack_ids=[ack_id], ack_deadline_seconds=0)


def envelope(subscription: str, msg: Any, delivery_attempt: int) -> bytes:
    """The push request body, as the emulator's own push writes it (both spellings of the id and time)."""
    published = msg.publish_time.rfc3339() if msg.publish_time else ""
    message: dict[str, Any] = {
        "data": base64.b64encode(msg.data).decode(),
        "attributes": dict(msg.attributes),
        "messageId": msg.message_id,
        "message_id": msg.message_id,
        "publishTime": published,
        "publish_time": published,
    }
    if msg.ordering_key:
        message["orderingKey"] = msg.ordering_key
    body: dict[str, Any] = {"message": message, "subscription": subscription}
    if delivery_attempt:
        body["deliveryAttempt"] = delivery_attempt
    return json.dumps(body).encode()
