"""Thresholds (progressive billing) on the emulators: concurrent and redelivered aggregator batches cross each
threshold once; the threshold invoices never move the subscription's period; the period's final invoice bills
the full usage and credits exactly what the threshold invoices billed."""

from __future__ import annotations

import concurrent.futures
import datetime as dt
import random
from typing import Any

from shared import clients
from shared.billing.catalog import CatalogStore, CreatePrice, CreateProduct
from shared.domain.calendar import Cadence, Unit
from shared.domain.meters import Aggregation, Event, Meter
from shared.domain.money import Money
from shared.events.billing import InvoicePaid, RenewalDue
from shared.events.publisher import PubSubPublisher
from shared.metering.store import THRESHOLDS, MeteredItem, MeteringStore, period_key
from shared.metering.thresholds import Thresholds, is_threshold_request
from shared.renewals import outcomes
from tests.fixtures.invoices import received
from tests.fixtures.renewals import Env
from tests.helpers import T0
from tests.infra.monitoring import counted, log_metrics
from tests.integration.renewals.test_items import P1, bill, catalog, issue, sub_doc, subscribe
from tests.integration.renewals.test_usage_billing import metered_subscription
from tests.logcapture import captured_lines

HOUR = dt.timedelta(hours=1)
THRESHOLD = 1000  # EUR 10.00


def _setup() -> tuple[MeteringStore, Thresholds]:
    store = metered_subscription("sub_thr", 1, threshold=THRESHOLD)
    return store, Thresholds(store, PubSubPublisher())


def _calls(prefix: str, n: int, at: dt.datetime) -> list[Event]:
    return [Event(f"{prefix}{i}", "cus_items", "api_call", at + dt.timedelta(minutes=i)) for i in range(n)]


def _requests(on: Env) -> list[RenewalDue]:
    return [RenewalDue.model_validate(b) for a, b in on.pull("renewals-due") if a["event_type"] == "renewal.due"]


def _period0(store: MeteringStore) -> Any:
    cal = store.calendar("cus_items")
    assert cal is not None
    return cal.schedule.period_at(T0)


def _period_fields(doc: dict[str, Any]) -> tuple[Any, ...]:
    return (doc["status"], doc.get("paid_index"), doc["version"], doc.get("billing"), doc.get("open_due"))


def test_concurrent_batches_cross_once_and_the_close_credits_exactly_what_was_billed(env: Env) -> None:
    store, thresholds = _setup()
    [first] = bill(env, T0)
    issue(first, T0)
    before = _period_fields(sub_doc("sub_thr"))

    events = _calls("e", 60, T0 + dt.timedelta(days=3))  # 10 x 1.00 + 50 x 0.50 = EUR 35.00: threshold 3
    rnd = random.Random(5)
    rnd.shuffle(events)
    batches = [events[i : i + 7] for i in range(0, len(events), 7)]
    batches += rnd.sample(batches, 4)  # Pub/Sub redeliveries

    def aggregate(batch: list[Event]) -> None:  # what the aggregator does with one delivery (aggregator.on_batch)
        store.apply(batch)
        thresholds.after_batch(batch)

    with concurrent.futures.ThreadPoolExecutor(4) as pool:
        list(pool.map(aggregate, batches))
    requests = _requests(env)
    by_id = {r.request_id: r for r in requests}  # a request may be re-sent: the same request id, the same invoice
    assert all(r == by_id[r.request_id] for r in requests)
    indices = sorted(int(rid.rsplit(":", 1)[1]) for rid in by_id)
    assert indices[-1] == 3
    assert len(indices) == len(set(indices))
    pk = period_key(_period0(store))
    record = clients.firestore().collection(THRESHOLDS).document(f"cus_items~{pk}").get().to_dict()
    assert record is not None
    assert [e["index"] for e in record["invoices"]] == indices
    billed = sum(c.amount.amount for r in by_id.values() for c in r.charges)
    assert billed == record["billed_amount"]
    assert 3 * THRESHOLD <= billed <= 3500

    for r in by_id.values():  # issued and paid like any invoice, but not as the subscription's
        assert r.subscription_id is None
        assert is_threshold_request(r.request_id)
        inv = issue(r, T0 + dt.timedelta(days=4))
        assert inv["number"]
        assert inv["amount_due"] > 0
        assert inv["subscription_id"] is None
        paid = InvoicePaid(
            invoice_id=inv["invoice_id"],
            number=inv["number"],
            subscription_id="sub_thr",  # even a fact naming the subscription does not settle its period
            customer_id="cus_items",
            amount_paid=Money(inv["amount_due"], "EUR"),
            paid_at=T0 + dt.timedelta(days=5),
            collection="send_invoice",
            paid_by="operator",
        )
        assert outcomes.on_invoice_paid(received(paid, f"{paid.invoice_id}:paid"))["result"] == "unknown_attempt"
    assert _period_fields(sub_doc("sub_thr")) == before  # the period is not advanced by a threshold invoice

    for b in batches[:3]:  # redelivered again after the crossings: nothing new
        aggregate(b)
    assert _requests(env) == []

    [second] = bill(env, P1 + HOUR)  # the period's close on the renewal invoice
    usage = [c for c in second.charges if c.price_id == "api-eur"]
    full = [c for c in usage if c.amount.amount > 0]
    credits = [c for c in usage if c.amount.amount < 0]
    assert [(int(c.quantity), c.amount.amount) for c in full] == [(60, 3500)]
    assert sum(c.amount.amount for c in credits) == -billed  # exactly what was billed early, once
    inv = issue(second, P1 + HOUR)
    assert inv["subtotal"] == 1000 + 3500 - billed  # the seat in advance, the usage net of the threshold invoices

    thresholds.after_batch(_calls("after", 40, T0 + dt.timedelta(days=20)))  # a closed period: no threshold
    store.apply(_calls("late", 40, T0 + dt.timedelta(days=20)))
    assert thresholds.after_batch(_calls("late", 40, T0 + dt.timedelta(days=20))) == []
    assert _requests(env) == []


def test_an_auto_collected_threshold_invoice_is_charged_once_and_leaves_the_period_alone(env: Env) -> None:
    from shared.events.billing import InvoiceFinalized
    from shared.events.payments import OurRefs, PaymentSucceeded
    from shared.renewals import repository
    from shared.renewals.entry import handle_push
    from tests.fixtures.renewals import push

    catalog()
    cat = CatalogStore()
    cat.create_product(CreateProduct(id="api", name="API calls"))
    body = {"id": "api-eur", "product": "api", "currency": "EUR", "recurring": {"interval": "month"}}
    cat.create_price(CreatePrice.model_validate(body | {"pricing": {"model": "per_unit", "unit_amount": "100"}}))
    pm = {"psp": "stripe", "customer_ref": "cus_auto", "method_ref": "pm_card_visa"}
    subscribe("sub_auto", [("seat-eur", 1)], collection="charge_automatically", days_until_due=None, payment_method=pm)
    store = MeteringStore()
    store.create_meter(Meter(id="calls", event_name="api_call", aggregation=Aggregation.COUNT))
    store.attach(
        "cus_items",
        subscription_id="sub_auto",
        start=T0,
        zone="UTC",
        cadence=Cadence(Unit.MONTH),
        items=[MeteredItem(price=cat.price("api-eur"), meter="calls")],
        threshold=THRESHOLD,
    )
    [first] = bill(env, T0)
    issue(first, T0)
    for a, b in env.pull("invoice-events"):  # the period's own invoice is charged and renews the subscription
        if a["event_type"] == "invoice.finalized":
            handle_push(push(InvoiceFinalized.model_validate(b), f"{b['invoice_id']}:finalized"))
    before, charges = _period_fields(sub_doc("sub_auto")), env.stripe.charges()
    events = _calls("e", 12, T0 + dt.timedelta(days=3))
    store.apply(events)
    assert len(Thresholds(store, PubSubPublisher()).after_batch(events)) == 1
    [due] = _requests(env)
    assert (due.collection, due.payment_method, due.subscription_id) == (
        "charge_automatically",
        first.payment_method,
        None,
    )
    inv = issue(due, T0 + dt.timedelta(days=3))
    assert inv["total"] > 0
    [fin] = [b for a, b in env.pull("invoice-events") if a["event_type"] == "invoice.finalized"]
    for _ in range(2):  # a redelivery charges nothing more
        handle_push(push(InvoiceFinalized.model_validate(fin), f"{fin['invoice_id']}:finalized"))
    assert env.stripe.charges() == charges + 1
    attempt = repository.attempts().document(f"{inv['invoice_id']}:1").get().to_dict() or {}
    assert (attempt["claim"], attempt["status"], attempt["subscription_id"]) == ("charged", "succeeded", None)
    fact = PaymentSucceeded(  # the PSP's webhook for that charge: our references name no subscription
        psp="stripe",
        psp_event_id="evt_thr",
        psp_payment_id=attempt["result"]["psp_payment_id"],
        livemode=False,
        refs=OurRefs(invoice_id=inv["invoice_id"], attempt_id=f"{inv['invoice_id']}:1"),
        psp_created_at=T0 + dt.timedelta(days=3),
    )
    handle_push(push(fact, fact.fact_key()))
    assert _period_fields(sub_doc("sub_auto")) == before  # neither the charge nor its fact moved the period


def test_usage_a_line_cannot_price_is_logged_not_redelivered_forever(env: Env, monkeypatch: Any) -> None:
    """A total beyond what a line prices cannot cross a threshold: the batch (already counted) is answered and
    the error logged, instead of a nack that would only end in the dead-letter topic."""
    from shared.domain.pricing import PricingError

    store, thresholds = _setup()
    [first] = bill(env, T0)
    issue(first, T0)
    batch = _calls("big", 3, T0 + dt.timedelta(days=3))
    store.apply(batch)

    def beyond(customer: str, period: Any) -> list[str]:
        raise PricingError("quantity beyond 10^12 units")

    monkeypatch.setattr(thresholds, "check", beyond)
    with captured_lines() as lines:
        assert thresholds.after_batch(batch) == []
    blocked = log_metrics()["billing_blocked"]
    (line,) = counted(blocked, lines)
    assert (blocked.labels_of(line), line["customer"]) == ({"stage": "usage_threshold"}, "cus_items")
    assert _requests(env) == []
