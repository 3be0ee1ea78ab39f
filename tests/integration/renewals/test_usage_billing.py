"""Usage on the renewal invoice, on the emulators: the planner waits the grace period, then bills the ended
period's usage in arrears with the next period's fee in advance; late usage lands on the next invoice once."""

from __future__ import annotations

import datetime as dt

from shared.billing.catalog import CatalogStore, CreatePrice, CreateProduct
from shared.domain.calendar import Cadence, Unit
from shared.domain.meters import Aggregation, Event, Meter
from shared.domain.pricing import LineKind
from shared.metering.store import MeteredItem, MeteringStore
from tests.fixtures.renewals import Env
from tests.helpers import T0
from tests.integration.renewals.test_items import P1, P2, bill, catalog, issue, subscribe

HOUR = dt.timedelta(hours=1)


def _calls(prefix: str, n: int, at: dt.datetime) -> list[Event]:
    return [Event(f"{prefix}{i}", "cus_items", "api_call", at + dt.timedelta(minutes=i)) for i in range(n)]


def metered_subscription(sub_id: str, seats: int, threshold: int | None = None) -> MeteringStore:
    """The catalog, a subscription with ``seats`` seats and the API calls metered on a graduated EUR price
    (10 at 1.00, then 0.50), monthly from T0 in UTC; ``threshold`` for progressive billing."""
    catalog()
    cat = CatalogStore()
    cat.create_product(CreateProduct(id="api", name="API calls"))
    tiers = [{"up_to": 10, "unit_amount": "100"}, {"unit_amount": "50"}]
    body = {"id": "api-eur", "product": "api", "currency": "EUR", "recurring": {"interval": "month"}}
    cat.create_price(CreatePrice.model_validate(body | {"pricing": {"model": "graduated", "tiers": tiers}}))
    subscribe(sub_id, [("seat-eur", seats)])
    store = MeteringStore()
    store.create_meter(Meter(id="calls", event_name="api_call", aggregation=Aggregation.COUNT))
    store.attach(
        "cus_items",
        subscription_id=sub_id,
        start=T0,
        zone="UTC",
        cadence=Cadence(Unit.MONTH),
        items=[MeteredItem(price=cat.price("api-eur"), meter="calls")],
        threshold=threshold,
    )
    return store


def test_usage_in_arrears_with_the_fee_in_advance_after_the_grace_and_late_usage_once(env: Env) -> None:
    store = metered_subscription("sub_usage", 2)
    [first] = bill(env, T0)
    assert not first.charges  # no usage behind the first invoice
    issue(first, T0)
    store.apply(_calls("a", 12, T0 + dt.timedelta(days=3)))

    assert bill(env, P1) == []  # the boundary passed, the grace did not: nothing is billed yet
    [second] = bill(env, P1 + HOUR)
    usage = [c for c in second.charges if c.price_id == "api-eur"]
    assert [(int(c.quantity), c.amount.amount, c.period_end) for c in usage] == [(12, 1100, P1)]
    assert "tier 1: 10 units; tier 2: 2 units" in usage[0].description
    assert [(i.price_id, i.period_start) for i in second.items] == [("seat-eur", P1)]  # the fee in advance
    inv = issue(second, P1 + HOUR)
    assert [(line["price_id"], line["amount"]) for line in inv["lines"]] == [("seat-eur", 2000), ("api-eur", 1100)]
    assert inv["subtotal"] == 3100  # one invoice: the fee of the new period and the usage of the ended one

    store.apply(_calls("late", 4, P1 - dt.timedelta(hours=5)))  # after the close: period 0 is late
    store.apply(_calls("late", 4, P1 - dt.timedelta(hours=5)))  # redelivered
    store.apply(_calls("b", 2, P1 + dt.timedelta(days=2)))
    [third] = bill(env, P2 + HOUR)
    got = sorted(
        (str(c.period_start), int(c.quantity), c.amount.amount, c.kind, c.description[:5]) for c in third.charges
    )
    assert got == [(str(T0), 4, 200, LineKind.RECURRING, "Late "), (str(P1), 2, 200, LineKind.RECURRING, "Usage")]
