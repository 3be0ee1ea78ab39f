"""One subscription with items through the real local stack: the billing store (catalog, coupon, credit), the
subscriptions API, ticks -> planner -> renewals-due -> invoices function (composition, credit at finalization)."""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Any

import requests

from infra.local.acts import renewals as act
from infra.local.acts.billing import build_catalog
from infra.local.stack import Stack
from shared import clients
from shared.domain.calendar import Anchor, Cadence, Schedule, Unit
from shared.domain.subscriptions import request_id
from shared.invoicing.repository import invoice_id_for
from tests.helpers import wait_for

FAR = dt.datetime(2033, 1, 10, 9, 0, tzinfo=dt.UTC)  # a clock no other test ticks at


def _invoice(sub_id: str, start: dt.datetime) -> dict[str, Any] | None:
    snap = clients.firestore().collection("invoices").document(invoice_id_for(request_id(sub_id, start))).get()
    d = snap.to_dict() if snap.exists else None
    return d if d and d.get("pdf_sha256") else None


def test_items_subscription_is_invoiced_from_the_catalog_with_coupon_proration_and_credit(stack_env: Stack) -> None:
    tag = f"e2e{uuid.uuid4().hex[:6]}"
    build_catalog(tag)  # seats 12.00, support 5.00, coupon 20 % for 2 periods, 10.00 EUR credit for <tag>-ada
    start = FAR + dt.timedelta(days=uuid.uuid4().int % 300)
    sub_id = f"{tag}-sub"
    api = stack_env.function_urls["subscriptions"] + "/subscriptions"
    body = {
        "subscription_id": sub_id,
        "customer": f"{tag}-ada",
        "seller_entity": "acme-de",
        "items": [{"price": f"{tag}-seat-eur", "quantity": 2}],
        "discount": {"coupon": f"{tag}-launch"},
        "start_at": start.isoformat(),
        "collection": "send_invoice",
        "days_until_due": 30,
    }
    r = requests.post(api, json=body, timeout=20)
    assert r.status_code == 201, r.text
    act.tick(start)
    first = wait_for(lambda: _invoice(sub_id, start), timeout_s=60)
    # 2 x 12.00 = 24.00, -20 % = 19.20, +19 % VAT 3.65 = 22.85; the 10.00 credit pays part of it.
    assert (first["subtotal"], first["discount"], first["tax"], first["total"]) == (2400, 480, 365, 2285)
    assert (first["credit_applied"], first["amount_due"]) == (1000, 1285)
    assert first["due_at"] == start + dt.timedelta(days=30)

    nxt = Schedule(Anchor.at(start, "Etc/UTC"), Cadence(Unit.MONTH)).period(1).start
    half = start + (nxt - start) / 2
    r = requests.post(
        f"{api}/{sub_id}/items",
        json={"items": [{"price": f"{tag}-seat-eur", "quantity": 4}], "at": half.isoformat()},
        timeout=20,
    )
    assert r.status_code == 200, r.text
    preview = requests.get(f"{api}/{sub_id}/preview", timeout=20).json()
    act.tick(nxt)
    second = wait_for(lambda: _invoice(sub_id, nxt), timeout_s=60)
    kinds = [ln["kind"] for ln in second["lines"]]
    assert kinds == ["recurring", "proration", "proration"]  # the change, billed once on this invoice
    assert second["credit_applied"] == 0  # the credit was used by the first invoice
    assert preview["total"]["amount"] == second["total"]
