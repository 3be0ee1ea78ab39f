"""The final usage invoice of an ended metered subscription, on the emulators: billed once after the grace (repeated
and concurrent ticks), up to an immediate cancel, nothing for zero usage, threshold invoices credited, the usage API
equal to what the close bills; and the billing reason of every kind of invoice."""

from __future__ import annotations

import concurrent.futures
import datetime as dt

from shared.events.billing import InvoiceFinalized, RenewalDue
from shared.events.publisher import PubSubPublisher
from shared.invoicing.issuing import finalized_event
from shared.metering.thresholds import Thresholds
from shared.renewals import planner
from shared.renewals.config import renewal_settings
from shared.subscriptions.commands import CancelSubscription
from shared.subscriptions.service import SubscriptionService
from tests.fixtures.renewals import Env, pay
from tests.helpers import T0
from tests.integration.renewals.test_items import P1, P2, bill, issue, sub_doc
from tests.integration.renewals.test_usage_billing import _calls, metered_subscription

HOUR = dt.timedelta(hours=1)
DAY = dt.timedelta(days=1)


def _cancel(sub_id: str, at: dt.datetime, *, at_period_end: bool) -> None:
    SubscriptionService().cancel(sub_id, CancelSubscription(at_period_end=at_period_end, at=at))


def _usage(due: RenewalDue) -> list[tuple[int, int]]:
    return [(int(c.quantity), c.amount.amount) for c in due.charges if c.price_id == "api-eur"]


def test_cancel_at_period_end_bills_the_last_period_once_after_the_grace_under_concurrent_ticks(env: Env) -> None:
    store = metered_subscription("sub_end", 1)
    [first] = bill(env, T0)
    pay(issue(first, T0), T0, collection="send_invoice")
    store.apply(_calls("a", 12, T0 + 3 * DAY))
    _cancel("sub_end", T0 + 5 * DAY, at_period_end=True)

    assert bill(env, P1) == []  # the boundary: the subscription ends now, its final invoice waits for the grace
    doc = sub_doc("sub_end")
    assert (doc["status"], doc["canceled_at"], doc.get("usage_final")) == ("canceled", P1, None)
    assert bill(env, P1 + HOUR / 2) == []

    def tick(_: int) -> None:
        cfg = renewal_settings()
        for shard in range(cfg.shards):
            planner.run_shard(shard, P1 + HOUR, cfg)

    with concurrent.futures.ThreadPoolExecutor(4) as pool:  # overlapping ticks, then repeated ones
        list(pool.map(tick, range(4)))
    tick(0)
    requests = bill(env, P1 + HOUR)
    assert len({r.request_id for r in requests}) == 1
    final = requests[0]
    assert all(r == final for r in requests)  # a re-send is the same request
    assert final.request_id == f"sub_end:{P1.isoformat().replace('+00:00', 'Z')}:final"
    assert final.billing_reason == "subscription_final"
    assert final.items == ()  # no fee in advance: the subscription ended
    assert _usage(final) == [(12, 1100)]
    inv = issue(final, P1 + HOUR)
    assert (inv["subtotal"], inv["billing_reason"]) == (1100, "subscription_final")
    assert issue(final, P1 + 2 * HOUR)["number"] == inv["number"]  # a redelivery is the same invoice
    assert sub_doc("sub_end")["usage_final"]["request_id"] == final.request_id
    cal = store.calendar("cus_items")
    assert cal is not None
    assert (cal.ended_at, cal.final_request) == (P1, final.request_id)

    pay(inv, P1 + 2 * HOUR, collection="send_invoice")
    assert sub_doc("sub_end")["due_at"] is None  # nothing left to bill
    assert bill(env, P2 + HOUR) == []


def test_an_immediate_cancel_bills_the_partial_period_after_the_grace_and_late_usage_is_reported(env: Env) -> None:
    store = metered_subscription("sub_now", 1)
    [first] = bill(env, T0)
    pay(issue(first, T0), T0, collection="send_invoice")
    store.apply(_calls("a", 5, T0 + 3 * DAY))
    end = T0 + 10 * DAY
    _cancel("sub_now", end, at_period_end=False)
    assert sub_doc("sub_now")["status"] == "canceled"

    assert bill(env, end + HOUR / 2) == []  # mid-period: the grace counts from the cancel, not the period's end
    [final] = bill(env, end + HOUR)
    assert final.request_id.endswith(":final")
    assert _usage(final) == [(5, 500)]
    inv = issue(final, end + HOUR)
    assert inv["subtotal"] == 500
    pay(inv, end + 2 * HOUR, collection="send_invoice")

    store.apply(_calls("late", 3, end - DAY))  # after the final close: counted, reported, billed by no invoice
    usage = store.current_usage("cus_items", at=end + 3 * HOUR)
    assert usage["ended_at"] == end.isoformat().replace("+00:00", "Z")
    [late] = usage["late_unbilled"]
    assert late["amount"] == {"amount": 300, "currency": "EUR"}
    assert "5 -> 8 units" in late["lines"][0]["description"]
    assert bill(env, P1 + HOUR) == []
    assert bill(env, P2 + HOUR) == []


def test_zero_usage_ends_without_a_final_invoice(env: Env) -> None:
    metered_subscription("sub_zero", 1)
    [first] = bill(env, T0)
    pay(issue(first, T0), T0, collection="send_invoice")
    _cancel("sub_zero", T0 + 5 * DAY, at_period_end=True)
    assert bill(env, P1) == []
    assert bill(env, P1 + HOUR) == []  # the close ran: nothing to bill, no invoice
    doc = sub_doc("sub_zero")
    assert (doc["status"], doc["usage_final"]["amount"], doc["due_at"]) == ("canceled", 0, None)
    assert bill(env, P1 + 2 * HOUR) == []


def test_threshold_invoices_of_the_last_period_are_credited_on_the_final_as_the_usage_api_shows(env: Env) -> None:
    store = metered_subscription("sub_thr_end", 1, threshold=1000)
    [first] = bill(env, T0)
    pay(issue(first, T0), T0, collection="send_invoice")
    events = _calls("e", 40, T0 + 3 * DAY)  # 10 x 1.00 + 30 x 0.50 = EUR 25.00: thresholds 1 and 2 in one invoice
    store.apply(events)
    Thresholds(store, PubSubPublisher()).after_batch(events)
    early = _requests(env)
    assert {r.billing_reason for r in early} == {"subscription_threshold"}
    billed = sum(c.amount.amount for r in early for c in r.charges)
    assert billed == 2500
    store.apply(_calls("f", 20, T0 + 4 * DAY))  # EUR 35.00 in all; no threshold checked since

    end = T0 + 10 * DAY
    usage = store.current_usage("cus_items", at=end)
    [line] = usage["items"]
    assert (line["amount"]["amount"], line["threshold_billed"]["amount"]) == (3500, billed)
    assert usage["threshold_billed"]["amount"] == billed
    assert usage["remaining_amount"]["amount"] == line["remaining"]["amount"] == 3500 - billed

    _cancel("sub_thr_end", end, at_period_end=False)
    [final] = bill(env, end + HOUR)
    usage_lines = [c.amount.amount for c in final.charges if c.price_id == "api-eur"]
    assert sorted(usage_lines) == [-billed, 3500]  # the full usage, and exactly what was billed early credited
    assert sum(usage_lines) == usage["remaining_amount"]["amount"]  # the usage API said so before the close


def test_the_billing_reason_of_every_kind_of_invoice(env: Env) -> None:
    store = metered_subscription("sub_why", 1, threshold=1000)
    [first] = bill(env, T0)
    assert first.billing_reason == "subscription_create"
    inv0 = issue(first, T0)
    assert inv0["billing_reason"] == "subscription_create"
    pay(inv0, T0, collection="send_invoice")
    store.apply(_calls("a", 15, T0 + 3 * DAY))
    Thresholds(store, PubSubPublisher()).after_batch(_calls("a", 15, T0 + 3 * DAY))
    [thr] = _requests(env)
    assert thr.billing_reason == "subscription_threshold"
    assert issue(thr, T0 + 3 * DAY)["billing_reason"] == "subscription_threshold"
    [second] = bill(env, P1 + HOUR)
    assert second.billing_reason == "subscription_cycle"
    inv1 = issue(second, P1 + HOUR)
    assert finalized_event(inv1).billing_reason == "subscription_cycle"  # carried by invoice.finalized
    fin = [b for a, b in env.pull("invoice-events") if a["event_type"] == "invoice.finalized"]
    assert {InvoiceFinalized.model_validate(b).billing_reason for b in fin} == {
        "subscription_create",
        "subscription_threshold",
        "subscription_cycle",
    }

    older = thr.model_copy(update={"billing_reason": None, "request_id": thr.request_id + "x"})  # an older producer
    assert issue(older, T0 + 4 * DAY)["billing_reason"] == "subscription_threshold"
    manual = second.model_copy(
        update={"billing_reason": None, "request_id": "ops:credit-fix:1", "subscription_id": None, "items": ()}
    )
    assert issue(manual, P1 + 2 * HOUR)["billing_reason"] == "manual"


def _requests(env: Env) -> list[RenewalDue]:
    return [RenewalDue.model_validate(b) for a, b in env.pull("renewals-due") if a["event_type"] == "renewal.due"]


def test_a_subscription_whose_customer_usage_moved_to_another_ends_without_closing_it(env: Env) -> None:
    from shared.domain.calendar import Cadence, Unit

    store = metered_subscription("sub_old", 1)
    [first] = bill(env, T0)
    pay(issue(first, T0), T0, collection="send_invoice")
    store.apply(_calls("a", 5, T0 + 3 * DAY))
    cal = store.calendar("cus_items")
    assert cal is not None
    month = Cadence(Unit.MONTH)
    store.attach("cus_items", subscription_id="sub_new", start=T0, zone="UTC", cadence=month, items=cal.items)
    end = T0 + 10 * DAY
    _cancel("sub_old", end, at_period_end=False)
    assert bill(env, end + HOUR) == []  # the usage is the new subscription's to bill
    after = store.calendar("cus_items")
    assert after is not None
    assert (after.subscription_id, after.ended_at) == ("sub_new", None)
    assert store.current_usage("cus_items", at=end)["items"][0]["quantity"] == "5"
