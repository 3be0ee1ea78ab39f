"""Walking skeleton: HTTP -> Pub/Sub push -> consumer -> Firestore, with duplicates as no-ops.

This is the template for e2e tests: drive the real functions over HTTP, let the real Pub/Sub
emulator push, and read the outcome from the real Firestore emulator.
"""

from __future__ import annotations

import base64
import concurrent.futures
import datetime as dt
import uuid

import requests

from infra.local.stack import Stack
from shared import clients
from shared.events import build_message, publish
from shared.events.probe import ProbeRequested
from tests.helpers import settle, wait_for


def _probe_doc(probe_id: str) -> dict[str, object] | None:
    snap = clients.firestore().collection("probes").document(probe_id).get()
    return snap.to_dict() if snap.exists else None


def _handled(probe_id: str) -> int:
    snap = clients.firestore().collection("probe_stats").document(probe_id).get()
    return int((snap.to_dict() or {}).get("handled", 0))


def test_http_request_reaches_consumer_through_push(stack_env: Stack) -> None:
    probe_id = f"p-{uuid.uuid4().hex[:8]}"
    r = requests.post(stack_env.function_urls["probe"], json={"probe_id": probe_id, "note": "hello"}, timeout=60)
    assert r.status_code == 202, r.text
    doc = wait_for(lambda: _probe_doc(probe_id))
    assert doc is not None
    assert doc["note"] == "hello"
    assert doc["message_id"] == r.json()["message_id"]
    assert settle(lambda: _handled(probe_id)) == 1


def test_duplicate_publish_is_a_no_op(stack_env: Stack) -> None:
    """The same fact published twice (a producer retry) is recorded once."""
    probe_id = f"p-{uuid.uuid4().hex[:8]}"
    for _ in range(2):
        r = requests.post(stack_env.function_urls["probe"], json={"probe_id": probe_id}, timeout=60)
        assert r.status_code == 202
    wait_for(lambda: _probe_doc(probe_id))
    assert settle(lambda: _handled(probe_id)) == 1


def test_redelivered_and_concurrent_pushes_count_once(stack_env: Stack) -> None:
    """Pub/Sub at-least-once: the same push body delivered 8 times at once, then again later."""
    probe_id = f"p-{uuid.uuid4().hex[:8]}"
    data, attrs = build_message(
        ProbeRequested(probe_id=probe_id, note="dup"), idempotency_key=probe_id, occurred_at=dt.datetime.now(dt.UTC)
    )
    url = f"{stack_env.function_urls['probe_sink']}/projects/{stack_env.project}/topics/probes"
    body = {
        "message": {"data": base64.b64encode(data).decode(), "attributes": attrs, "messageId": "m-1"},
        "subscription": f"projects/{stack_env.project}/subscriptions/manual",
    }

    def deliver_until_acked() -> int:
        for _ in range(50):  # what Pub/Sub does: redeliver until a 2xx
            status = requests.post(url, json=body, timeout=60).status_code
            if status < 300:
                return status
        return status

    with concurrent.futures.ThreadPoolExecutor(8) as pool:
        statuses = list(pool.map(lambda _: deliver_until_acked(), range(8)))
    assert all(s < 300 for s in statuses), statuses
    assert _handled(probe_id) == 1
    # A late duplicate through the real topic as well.
    publish(
        ProbeRequested(probe_id=probe_id, note="dup"), idempotency_key=probe_id, occurred_at=dt.datetime.now(dt.UTC)
    )
    assert settle(lambda: _handled(probe_id)) == 1


def test_bad_requests_get_precise_4xx(stack_env: Stack) -> None:
    url = stack_env.function_urls["probe"]
    assert requests.get(url, timeout=10).status_code == 405
    assert requests.post(url, data="x", headers={"content-type": "text/plain"}, timeout=10).status_code == 415
    assert requests.post(url, data="{", headers={"content-type": "application/json"}, timeout=10).status_code == 400
    r = requests.post(url, json={"probe_id": "bad id with spaces"}, timeout=10)
    assert r.status_code == 400
    assert r.json()["error"] == "invalid_probe"
