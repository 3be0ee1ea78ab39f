"""Webhooks on the whole local stack: a signed webhook in, the raw archive in Firestore, one canonical
event received by a subscriber; the same webhook again, and concurrently, still one event."""

from __future__ import annotations

import concurrent.futures
import io
import json
import re
import time
import uuid
from contextlib import redirect_stdout
from pathlib import Path

import requests

from infra.local.acts import DemoContext
from infra.local.acts import webhooks as act
from infra.local.stack import Stack
from shared import clients
from shared.events import parse_message
from shared.psp import signing
from shared.webhooks.store import COLLECTION, record_id
from tests.helpers import pull, pull_subscription, wait_for


def _pull(path: str) -> list[object]:
    return [m.message for m in pull(path, max_messages=50, timeout_s=5)]


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
        for _ in range(50):
            status = requests.post(url, data=body, headers=headers, timeout=10).status_code
            if status != 409:  # 409: the same notification is in flight; retry like a PSP
                return status
            time.sleep(0.05)
        return status

    assert deliver() == 200
    ref = clients.firestore().collection(COLLECTION).document(record_id("stripe", "default", evt))
    # The final state is written right after the answer (shared.webhooks.store.DeferredFinishes).
    rec = wait_for(lambda: (r := ref.get().to_dict() or {}).get("state") == "published" and r)
    assert rec["state"] == "published"
    assert '"cvc":"[CVC]"' in rec["raw"]
    assert rec["received_at"]
    messages = wait_for(lambda: _pull(path))
    # Again, and eight at once: all acknowledged, none republished.
    assert deliver() == 200
    with concurrent.futures.ThreadPoolExecutor(8) as pool:
        assert set(pool.map(lambda _: deliver(), range(8))) == {200}
    time.sleep(1.0)
    messages += _pull(path)
    assert len(messages) == 1
    msg = parse_message(messages[0].data, dict(messages[0].attributes), messages[0].message_id)  # type: ignore[attr-defined]
    assert msg.envelope.event_type == "payment.succeeded"
    assert msg.event.refs.invoice_id == "INV-E2E-1"  # type: ignore[attr-defined]


def test_concurrent_first_deliveries_publish_once(stack_env: Stack) -> None:
    path = pull_subscription(stack_env.project, "payment-events", "e2e-webhooks")
    body = json.dumps(
        {
            "id": f"EV{uuid.uuid4().hex[:10].upper()}",
            "created_at": "2026-11-20T10:00:00Z",
            "resource_type": "payments",
            "action": "confirmed",
            "links": {"payment": f"PM{uuid.uuid4().hex[:8].upper()}"},
        }
    ).encode()
    body = json.dumps({"events": [json.loads(body)]}).encode()
    headers = {
        "Webhook-Signature": signing.hex_hmac(body, act.ENV["GOCARDLESS_WEBHOOK_SECRETS"]),
        "Content-Type": "application/json",
    }
    url = stack_env.function_urls["webhooks"] + "/gocardless"

    def deliver(_: int) -> int:
        for _ in range(100):
            status = requests.post(url, data=body, headers=headers, timeout=10).status_code
            if status != 409:
                return status
            time.sleep(0.05)
        return status

    with concurrent.futures.ThreadPoolExecutor(8) as pool:
        assert set(pool.map(deliver, range(8))) == {200}
    messages = wait_for(lambda: _pull(path))
    time.sleep(1.0)
    messages += _pull(path)
    assert len(messages) == 1


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
