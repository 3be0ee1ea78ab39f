"""Act 94: usage-based billing: a meter, a batch of events through the usage endpoint, the aggregator, the
current usage, then the renewal invoice with the fee in advance and the usage in arrears after the grace, a
late event billed on the next invoice as an adjustment, and the subscription canceled mid-period: its last
usage on a final invoice after the grace.

The subscription starts two days ago (wall clock) so the events' timestamps are inside the accepted horizon;
the test clock of the ticks then moves past the period's end.
"""

from __future__ import annotations

import datetime as dt
import time
import uuid
from typing import Any

from infra.local.acts import DemoContext
from infra.local.acts.billing import get, wait_invoices
from infra.local.acts.renewals import post, tick

ORDER = 94
TITLE = "Usage: meters, batch ingestion, exact aggregation, current usage, usage on the renewal invoice"


def _catalog(tag: str) -> Any:
    from shared.billing.catalog import CatalogStore, CreatePrice, CreateProduct
    from shared.billing.customers import CreateCustomer, CustomerStore

    CustomerStore().create(CreateCustomer(id=f"{tag}-cus", legal_name="Cleo AG", country="DE", currency="EUR"))
    cat = CatalogStore()
    tiers = [{"up_to": 1000, "unit_amount": "0.5"}, {"unit_amount": "0.2"}]
    for prod, pricing in (
        ("platform", {"model": "per_unit", "unit_amount": "4900"}),
        ("api", {"model": "graduated", "tiers": tiers}),
    ):
        cat.create_product(CreateProduct(id=f"{tag}-{prod}", name=prod.title()))
        body = {"id": f"{tag}-{prod}-eur", "product": f"{tag}-{prod}", "currency": "EUR", "pricing": pricing}
        cat.create_price(CreatePrice.model_validate(body | {"recurring": {"interval": "month"}, "nickname": prod}))
    return cat.price(f"{tag}-api-eur")


def _events(tag: str, n: int, at: dt.datetime, prefix: str = "e") -> list[dict[str, Any]]:
    return [
        {
            "id": f"{prefix}{i}",
            "customer": f"{tag}-cus",
            "event_name": "api_call",
            "timestamp": (at + dt.timedelta(seconds=i)).isoformat(),
            "properties": {"region": ["eu", "us"][i % 2]},
        }
        for i in range(n)
    ]


def _wait_usage(url: str, quantity: str, timeout_s: float = 60.0) -> dict[str, Any]:
    deadline = time.monotonic() + timeout_s
    while True:
        u = get(url)
        if u["items"] and u["items"][0]["quantity"] == quantity:
            return u
        if time.monotonic() > deadline:
            raise TimeoutError(f"usage did not reach {quantity}: {u['items']}")
        time.sleep(0.3)


def play(ctx: DemoContext) -> None:
    from shared.domain.calendar import Cadence, Unit
    from shared.metering.store import MeteredItem, MeteringStore

    tag = f"use{uuid.uuid4().hex[:6]}"
    start = dt.datetime.now(dt.UTC).replace(microsecond=0) - dt.timedelta(days=2)
    api_price = _catalog(tag)
    usage = ctx.stack.function_urls["usage"]
    status, _ = post(f"{usage}/meters", {"id": f"{tag}-calls", "event_name": "api_call", "aggregation": "count"})
    ctx.say(f"  meter {tag}-calls (count of api_call): HTTP {status}; price {tag}-api-eur graduated 0.5 ct, 0.2 ct")
    subs = ctx.stack.function_urls["subscriptions"] + "/subscriptions"
    sid = f"{tag}-sub"
    body = {
        "subscription_id": sid,
        "customer": f"{tag}-cus",
        "seller_entity": "acme-de",
        "items": [{"price": f"{tag}-platform-eur", "quantity": 1}],
        "start_at": start.isoformat(),
        "collection": "send_invoice",
        "days_until_due": 365,  # never overdue within the act
    }
    ctx.say(f"  subscription {sid} (platform 49.00/month): HTTP {post(subs, body)[0]}")
    store = MeteringStore()
    cal = store.attach(
        f"{tag}-cus",
        subscription_id=sid,
        start=start,
        zone="Europe/Berlin",
        cadence=Cadence(Unit.MONTH),
        items=[MeteredItem(price=api_price, meter=f"{tag}-calls")],
    )
    tick(start)
    wait_invoices([sid], 1)
    events = _events(tag, 1500, start + dt.timedelta(hours=1))
    batch = [*events[:970], *events[:20], {"id": "bad", "customer": f"{tag}-cus"}]
    status, out = post(f"{usage}/events", {"events": batch})
    if status != 200:
        raise RuntimeError(f"usage endpoint answered {status}: {out}")
    ctx.say(
        f"  POST /events, 991 events: HTTP {status} accepted {out['accepted']}, duplicate {out['duplicate']}, "
        f"rejected {out['rejected']} ({out['errors'][-1]['reason'][:40]}...)"
    )
    status, out = post(f"{usage}/events", {"events": events[500:]})  # overlaps: a producer's retry
    ctx.say(f"  POST /events, 1,000 more (470 already sent): HTTP {status} accepted {out['accepted']}")
    current = _wait_usage(f"{usage}/customers/{tag}-cus/usage", "1500")
    item = current["items"][0]
    ctx.say(
        f"  current usage {current['period_start'][:10]}..{current['period_end'][:10]}: {item['quantity']} calls, "
        f"tiers {[t['units'] for t in item['tiers']]}, estimated {current['estimated_amount']['amount'] / 100:.2f} EUR"
    )
    end = cal.schedule.period(0).end
    tick(end)
    time.sleep(2)
    if len(wait_invoices([sid], 1)) != 1:
        raise RuntimeError("the renewal was invoiced before the usage grace ran out")
    ctx.say(f"  tick at the period end {end:%Y-%m-%d %H:%M}Z: no invoice yet (usage grace of 1 h)")
    tick(end + dt.timedelta(hours=1))
    inv = wait_invoices([sid], 2)[-1]
    for line in inv["lines"]:
        ctx.say(f"    {line['description'][:90]:90} {line['amount'] / 100:>8.2f}")
    ctx.say(f"  invoice {inv['number']}: total {inv['total'] / 100:.2f} EUR (fee in advance + usage in arrears)")
    late = _events(tag, 5, start + dt.timedelta(hours=20), prefix="late")
    status, out = post(f"{usage}/events", {"events": late})
    _wait_late(store, f"{tag}-cus")
    tick(cal.schedule.period(1).end + dt.timedelta(hours=1))
    inv = wait_invoices([sid], 3)[-1]
    adj = [x for x in inv["lines"] if x["description"].startswith("Late")]
    ctx.say(f"  5 late events (period already invoiced) -> next invoice {inv['number']}: {adj[0]['description'][:80]}")
    _final(ctx, store, cal, tag, subs)
    ctx.facts["usage"] = {"subscription": sid, "invoices": wait_invoices([sid], 4)}


def _final(ctx: DemoContext, store: Any, cal: Any, tag: str, subs: str) -> dict[str, Any]:
    """Cancel mid-period (test clock): the usage up to the cancel goes on a final invoice once the grace has run.

    The events of that period are ahead of the wall clock (the endpoint would refuse them as in the future):
    they are folded straight into the store, as the aggregator folds a batch.
    """
    from shared.domain.meters import Event

    sid = f"{tag}-sub"
    p2 = cal.schedule.period(2)
    at = p2.start + dt.timedelta(days=3)
    calls = [Event(f"fin{i}", f"{tag}-cus", "api_call", p2.start + dt.timedelta(days=1, seconds=i)) for i in range(40)]
    store.apply(calls)
    status, _ = post(f"{subs}/{sid}/cancel", {"at_period_end": False, "at": at.isoformat()})
    ctx.say(f"  40 calls, then canceled at {at:%Y-%m-%d %H:%M}Z (mid-period): HTTP {status}")
    tick(at + dt.timedelta(minutes=30))
    time.sleep(2)
    if len(wait_invoices([sid], 3)) != 3:
        raise RuntimeError("the final invoice was issued before the usage grace ran out")
    tick(at + dt.timedelta(hours=1))
    inv = wait_invoices([sid], 4)[-1]
    for line in inv["lines"]:
        ctx.say(f"    {line['description'][:90]:90} {line['amount'] / 100:>8.2f}")
    ctx.say(f"  final invoice {inv['number']} ({inv.get('billing_reason')}): total {inv['total'] / 100:.2f} EUR")
    return dict(inv)


def _wait_late(store: Any, customer: str, timeout_s: float = 60.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not getattr(store.calendar(customer), "late", ()):
        if time.monotonic() > deadline:
            raise TimeoutError("late events not aggregated")
        time.sleep(0.3)
