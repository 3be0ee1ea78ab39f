"""Webhooks on the whole local stack: a signed webhook in, the raw archive in Firestore, one canonical
event received by a subscriber; the same webhook again, and concurrently, still one event."""

from __future__ import annotations

import concurrent.futures
import io
import json
import re
import time
import uuid
from collections.abc import Callable
from contextlib import redirect_stdout
from pathlib import Path
from typing import Any

import requests

from infra.local.acts import DemoContext
from infra.local.acts import webhooks as act
from infra.local.stack import Stack
from shared import clients
from shared.events import Received, parse_message
from shared.events.envelope import make_event_id
from shared.psp import signing
from shared.webhooks.store import COLLECTION, record_id
from tests.helpers import drain_messages, pull_subscription, wait_for

# How long a PSP-like sender retries a 409 (another request holds the notification's lease, until the
# final write lands): generous under load, and below the 30 s lease so a retry never takes it over.
RETRY_409_S = 25.0


def _received(path: str) -> list[Received[Any]]:
    """Everything waiting on our subscription, parsed. The topic is shared with the rest of the session's
    stack (a consumer of an earlier test may re-announce its own fact late), so callers keep only theirs."""
    return [parse_message(m.data, dict(m.attributes), m.message_id) for m in drain_messages(path)]


def _deliver_until_not_409(post: Callable[[], int]) -> int:
    """What a PSP does: retry while the answer is 409 ``in_progress``; the last status."""
    deadline = time.monotonic() + RETRY_409_S
    status = post()
    while status == 409 and time.monotonic() < deadline:
        time.sleep(0.05)
        status = post()
    return status


def _one_publication(mine: list[Received[Any]], event_type: str, fact_key: str) -> Received[Any]:
    """The fact was published exactly once, under its stable event id.

    Distinct Pub/Sub message ids count publishes: our pull subscription may get the same message twice
    (at-least-once delivery, e.g. an acknowledgement that came after the deadline under load), which is not
    a second publish; another fact's message is filtered out by the caller."""
    assert mine, "the fact was never published"
    assert len({r.message_id for r in mine}) == 1, [(r.message_id, r.envelope.event_id) for r in mine]
    assert {(r.envelope.event_id, r.envelope.idempotency_key) for r in mine} == {
        (make_event_id(event_type, fact_key), fact_key)
    }
    return mine[0]


def test_signed_webhook_archived_and_published_once_despite_duplicates(stack_env: Stack) -> None:
    path = pull_subscription(stack_env.project, "payment-events", "e2e-webhooks")
    evt = f"evt_e2e_{uuid.uuid4().hex[:10]}"
    body = json.dumps(
        {
            "id": evt,
            "type": "payment_intent.succeeded",
            "created": int(time.time()),
            "livemode": False,
            "data": {
                "object": {
                    "id": f"pi_{evt}",
                    "amount_received": 1234,
                    "currency": "eur",
                    "metadata": {"invoice_id": "INV-E2E-1"},
                    "card": {"cvc": "999"},
                }
            },
        },
        separators=(",", ":"),
    ).encode()
    url = stack_env.function_urls["webhooks"] + "/stripe"

    def deliver() -> int:
        headers = {
            "Stripe-Signature": signing.stripe_header(body, act.STRIPE_SECRET),
            "Content-Type": "application/json",
        }
        return _deliver_until_not_409(lambda: requests.post(url, data=body, headers=headers, timeout=60).status_code)

    assert deliver() == 200
    ref = clients.firestore().collection(COLLECTION).document(record_id("stripe", "default", evt))
    # The final state is written right after the answer (shared.webhooks.store.DeferredFinishes).
    rec = wait_for(lambda: (r := ref.get().to_dict() or {}).get("state") == "published" and r)
    assert rec["state"] == "published"
    assert '"cvc":"[CVC]"' in rec["raw"]
    assert rec["received_at"]
    fact_key = f"stripe:default:pi_{evt}:payment.succeeded"

    def mine() -> list[Received[Any]]:
        return [r for r in _received(path) if r.envelope.idempotency_key == fact_key]

    messages = wait_for(mine)
    # Again, and eight at once: all acknowledged, none republished. A publish is acknowledged by Pub/Sub
    # before its 200, so once every answer is in, whatever was published is already on our subscription.
    assert deliver() == 200
    with concurrent.futures.ThreadPoolExecutor(8) as pool:
        assert set(pool.map(lambda _: deliver(), range(8))) == {200}
    messages += mine()
    msg = _one_publication(messages, "payment.succeeded", fact_key)
    assert msg.envelope.event_type == "payment.succeeded"
    assert msg.event.refs.invoice_id == "INV-E2E-1"


def test_concurrent_first_deliveries_publish_once(stack_env: Stack) -> None:
    path = pull_subscription(stack_env.project, "payment-events", "e2e-webhooks")
    payment = f"PM{uuid.uuid4().hex[:8].upper()}"
    body = json.dumps(
        {
            "id": f"EV{uuid.uuid4().hex[:10].upper()}",
            "created_at": "2026-11-20T10:00:00Z",
            "resource_type": "payments",
            "action": "confirmed",
            "links": {"payment": payment},
        }
    ).encode()
    body = json.dumps({"events": [json.loads(body)]}).encode()
    headers = {
        "Webhook-Signature": signing.hex_hmac(body, act.ENV["GOCARDLESS_WEBHOOK_SECRETS"]),
        "Content-Type": "application/json",
    }
    url = stack_env.function_urls["webhooks"] + "/gocardless"

    def deliver(_: int) -> int:
        return _deliver_until_not_409(lambda: requests.post(url, data=body, headers=headers, timeout=60).status_code)

    with concurrent.futures.ThreadPoolExecutor(8) as pool:
        assert set(pool.map(deliver, range(8))) == {200}
    # Every 200 came after the publish (if any) was acknowledged: one look at the subscription sees it all.
    fact_key = f"gocardless:default:{payment}:payment.succeeded"
    messages = [r for r in _received(path) if r.envelope.idempotency_key == fact_key]
    _one_publication(messages, "payment.succeeded", fact_key)


def test_demo_act_sends_every_psp_and_shows_canonical_events(stack_env: Stack, tmp_path: Path) -> None:
    out = io.StringIO()
    with redirect_stdout(out):
        act.play(DemoContext(stack=stack_env, output_dir=tmp_path))
    text = out.getvalue()
    assert "canonical events on payment-events: 7" in text, text
    for psp in ("stripe", "adyen", "paypal", "gocardless", "braintree", "checkout"):
        assert f" {psp} " in text, (psp, text)
    assert re.search(r"stripe \(redelivery\)\s+-> 200 .*\"duplicate\": 1", text), text
    assert re.search(r"stripe \(forged\)\s+-> 401", text), text


def test_precise_statuses_over_real_http(stack_env: Stack) -> None:
    base = stack_env.function_urls["webhooks"]
    j = {"Content-Type": "application/json"}
    assert requests.post(base + "/nope", data=b"{}", headers=j, timeout=10).status_code == 404
    assert requests.post(base + "/stripe/unknown-account", data=b"{}", headers=j, timeout=10).status_code == 404
    assert requests.get(base + "/stripe", timeout=10).status_code == 405
    big = b"x" * (1024 * 1024 + 1)
    assert requests.post(base + "/stripe", data=big, headers=j, timeout=10).status_code == 413
    chunked = requests.post(base + "/stripe", data=iter([big[:600_000], big[600_000:]]), headers=j, timeout=10)
    assert chunked.status_code == 413
    assert (
        requests.post(base + "/stripe", data=b"{}", headers={"Content-Type": "text/plain"}, timeout=10).status_code
        == 415
    )
    bad = requests.post(base + "/stripe", data=b"{}", headers={**j, "Stripe-Signature": "t=1,v1=00"}, timeout=10)
    assert (bad.status_code, bad.json()["error"]) == (401, "invalid_signature")
    gc = requests.post(base + "/gocardless", data=b"{}", headers={**j, "Webhook-Signature": "00"}, timeout=10)
    assert gc.status_code == 498
    junk = b'{"not": "an event"}'
    signed_junk = {**j, "Stripe-Signature": signing.stripe_header(junk, act.STRIPE_SECRET)}
    assert requests.post(base + "/stripe", data=junk, headers=signed_junk, timeout=10).status_code == 400


def test_large_signed_payload_arrives_whole(stack_env: Stack) -> None:
    """A body near the 1 MiB limit is read completely over a real socket (no short read breaks the HMAC)."""
    evt = f"evt_big_{uuid.uuid4().hex[:10]}"
    body = json.dumps(
        {
            "id": evt,
            "type": "customer.updated",
            "created": int(time.time()),
            "livemode": False,
            "data": {"object": {"id": "cus_1", "description": "y" * (1000 * 1024)}},
        },
        separators=(",", ":"),
    ).encode()
    assert 1000 * 1024 < len(body) <= 1024 * 1024
    headers = {"Content-Type": "application/json", "Stripe-Signature": signing.stripe_header(body, act.STRIPE_SECRET)}
    r = requests.post(stack_env.function_urls["webhooks"] + "/stripe", data=body, headers=headers, timeout=30)
    assert (r.status_code, r.json()["ignored"]) == (200, 1)
