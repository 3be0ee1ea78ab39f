"""Renewals across the real local stack: HTTP API -> Firestore, ticks -> planner -> renewals-due,
invoice-events -> collector -> Stripe SDK -> (stub) -> payment-events -> outcomes -> subscription-events.

The invoices function is another team's; these tests publish InvoiceFinalized themselves so they never
depend on it (the benchmark and the demo run the full tick-to-paid path).
"""

from __future__ import annotations

import base64
import concurrent.futures
import datetime as dt
import uuid
from typing import Any

import requests

from infra.local.acts import renewals as act
from infra.local.stack import Stack
from shared import clients
from shared.domain.money import Money
from shared.events import build_message, publish
from shared.events.billing import InvoiceFinalized, PaymentMethodRef
from tests.helpers import drain, pull_subscription, settle, wait_for

FAR = dt.datetime(2031, 5, 31, 9, 0, tzinfo=dt.UTC)  # a clock no other test ticks at


def _sub(sub_id: str) -> dict[str, Any]:
    return clients.firestore().collection("subscriptions").document(sub_id).get().to_dict() or {}


def _create(stack: Stack, sub_id: str, *, start: dt.datetime, collection: str = "charge_automatically") -> None:
    body = act.subscription_body(sub_id, "pm_card_visa") | {"start_at": start.isoformat(), "collection": collection}
    r = requests.post(stack.function_urls["subscriptions"] + "/subscriptions", json=body, timeout=20)
    assert r.status_code == 201, r.text


def test_overlapping_ticks_publish_one_renewal_due(stack_env: Stack) -> None:
    sub_id = f"sub_e2e_tick_{uuid.uuid4().hex[:6]}"
    start = FAR + dt.timedelta(days=uuid.uuid4().int % 300)
    _create(stack_env, sub_id, start=start, collection="send_invoice")  # nothing to charge here
    dues = pull_subscription(stack_env.project, "renewals-due", "e2e")
    for _ in range(3):  # overlapping / repeated scheduler ticks at the same instant
        act.tick(start)
    wait_for(lambda: _sub(sub_id).get("billing"))
    got: list[dict[str, Any]] = []

    def mine() -> int:
        got.extend(b for _, b in drain(dues) if b["subscription_id"] == sub_id)
        return len(got)

    # The planner writes ``billing`` BEFORE it publishes: wait for the message, then for any duplicate of it.
    wait_for(mine, timeout_s=60)
    assert settle(mine, quiet_s=2.0) == 1
    assert got[0]["request_id"] == f"{sub_id}:{start.isoformat().replace('+00:00', 'Z')}"


def test_duplicate_and_concurrent_invoice_finalized_charge_once_and_activate(stack_env: Stack) -> None:
    sub_id = f"sub_e2e_pay_{uuid.uuid4().hex[:6]}"
    start = FAR + dt.timedelta(days=400 + uuid.uuid4().int % 300)
    _create(stack_env, sub_id, start=start)
    events = pull_subscription(stack_env.project, "subscription-events", "e2e")
    inv_id = f"inv_e2e_{uuid.uuid4().hex[:8]}"
    money = Money(1500, "EUR")
    inv = InvoiceFinalized(
        invoice_id=inv_id,
        number="E2E-1",
        subscription_id=sub_id,
        customer_id=f"cus-{sub_id}",
        request_id=f"{sub_id}:{start.isoformat()}",
        period_start=start,
        period_end=start + dt.timedelta(days=30),
        subtotal=money,
        tax=Money(0, "EUR"),
        total=money,
        amount_due=money,
        collection="charge_automatically",
        payment_method=PaymentMethodRef(psp="stripe", customer_ref=f"cus_{sub_id}", method_ref="pm_card_visa"),
        finalized_at=start,
    )
    charges_before = act.stub().charges()
    # Through the real topic twice (a producer retry) ...
    for _ in range(2):
        publish(inv, idempotency_key=f"{inv_id}:finalized", occurred_at=start)
    # ... and the same push straight at the function 6 times at once (Pub/Sub redelivery races).
    data, attrs = build_message(inv, idempotency_key=f"{inv_id}:finalized", occurred_at=start)
    url = f"{stack_env.function_urls['renewals']}/projects/{stack_env.project}/topics/invoice-events"
    body = {
        "message": {"data": base64.b64encode(data).decode(), "attributes": attrs, "messageId": "m-dup"},
        "subscription": f"projects/{stack_env.project}/subscriptions/manual",
    }

    def deliver() -> int:
        status = 0
        for _ in range(100):
            status = requests.post(url, json=body, timeout=20).status_code
            if status < 300:
                break
        return status

    with concurrent.futures.ThreadPoolExecutor(6) as pool:
        assert all(s < 300 for s in pool.map(lambda _: deliver(), range(6)))
    doc = wait_for(lambda: (d := _sub(sub_id)).get("paid_index") == 0 and d)
    assert doc["status"] == "active"
    assert settle(lambda: act.stub().charges() - charges_before) == 1
    keys = {r["key"] for r in act.stub().requests if r.get("metadata[invoice_id]") == inv_id}
    assert keys == {f"renewal-{inv_id}-1"}
    versions = {(b["version"], b["reason"]) for _, b in drain(events) if b["subscription_id"] == sub_id}
    assert (2, "renewed") in versions
    assert all(v <= 2 for v, _ in versions)
