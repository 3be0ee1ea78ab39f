"""Usage through the real local stack: the usage function (HTTP) -> usage-events -> push -> the aggregator
function (Firestore) -> the current usage route; a retried batch counts once. No ticks: the renewal side is
covered on the emulators (tests/integration/renewals/test_usage_billing.py) and by the demo act."""

from __future__ import annotations

import datetime as dt
import uuid
from pathlib import Path
from typing import Any

import requests

from infra.local.acts import DemoContext
from infra.local.acts import usage as act
from infra.local.stack import Stack
from shared.domain.calendar import Cadence, Unit
from shared.domain.catalog import Price
from shared.metering.store import MeteredItem, MeteringStore
from tests.helpers import wait_for


def test_batches_through_the_stack_are_counted_once_and_rated(stack_env: Stack) -> None:
    tag = f"e2e{uuid.uuid4().hex[:6]}"
    url = stack_env.function_urls["usage"]
    meter = {"id": f"{tag}-gb", "event_name": "stored", "aggregation": "max", "property": "gb", "group_by": "region"}
    assert requests.post(f"{url}/meters", json=meter, timeout=20).status_code == 201
    start = dt.datetime.now(dt.UTC) - dt.timedelta(days=1)
    price = Price.model_validate(
        {
            "id": f"{tag}-gb-eur",
            "product_id": "storage",
            "currency": "EUR",
            "recurring": {"interval": "month"},
            "pricing": {"model": "per_unit", "unit_amount": "10"},
        }
    )
    MeteringStore().attach(
        f"{tag}-cus",
        subscription_id=f"{tag}-sub",
        start=start,
        zone="America/New_York",
        cadence=Cadence(Unit.MONTH),
        items=[MeteredItem(price=price, meter=f"{tag}-gb")],
    )
    events = [
        {
            "id": f"s{i}",
            "customer": f"{tag}-cus",
            "event_name": "stored",
            "timestamp": (start + dt.timedelta(minutes=i)).isoformat(),
            "properties": {"gb": f"{i}.5", "region": ["eu", "us"][i % 2]},
        }
        for i in range(200)
    ]
    for _ in range(2):  # the producer retries the whole batch
        answer = requests.post(f"{url}/events", json={"events": events}, timeout=20).json()
        assert answer["accepted"] == 200

    def usage() -> dict[str, Any] | None:
        u = requests.get(f"{url}/customers/{tag}-cus/usage", timeout=20).json()
        return u if [i["quantity"] for i in u["items"]] == ["198.5", "199.5"] else None

    got = wait_for(usage, timeout_s=60)
    assert got is not None
    assert [(i["group"], i["amount"]["amount"]) for i in got["items"]] == [("eu", 1985), ("us", 1995)]
    assert got["estimated_amount"] == {"amount": 3980, "currency": "EUR"}


def test_the_usage_act_ends_with_one_final_invoice_after_the_grace(stack_env: Stack, tmp_path: Path) -> None:
    """The demo act through the stack: the renewals after the grace, the late adjustment, and the mid-period cancel
    billed on a final invoice (the act itself checks that nothing is invoiced before the grace has run)."""
    ctx = DemoContext(stack=stack_env, output_dir=tmp_path)
    act.play(ctx)
    invoices = ctx.facts["usage"]["invoices"]
    assert [d.get("billing_reason") for d in invoices] == [
        "subscription_create",
        "subscription_cycle",
        "subscription_cycle",
        "subscription_final",
    ]
    final = invoices[-1]
    assert final["request_id"].endswith(":final")
    assert [(ln["description"][:6], ln["amount"]) for ln in final["lines"]] == [("Usage ", 20)]  # 40 calls at 0.5 ct
    assert len({d["invoice_id"] for d in invoices}) == 4
