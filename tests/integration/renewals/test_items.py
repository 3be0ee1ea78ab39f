"""Subscriptions with items on the emulators: catalog -> planner -> composed invoices (discounts, credit, due dates)."""

from __future__ import annotations

import concurrent.futures
import datetime as dt
from typing import Any

import pytest

from shared import clients
from shared.billing.catalog import CatalogStore, CreatePrice, CreateProduct
from shared.billing.coupons import CouponStore, CreateCoupon
from shared.billing.credit import ENTRIES, CreateCreditGrant, CreditStore
from shared.billing.customers import CreateCustomer, CustomerStore
from shared.domain.calendar import Period
from shared.domain.catalog import Price
from shared.domain.money import Money
from shared.domain.pricing import Item, item_change
from shared.events.billing import InvoicePaid, RenewalDue
from shared.invoicing.allocator import NumberAllocator
from shared.invoicing.repository import INVOICES, invoice_id_for
from shared.invoicing.service import InvoiceService
from shared.renewals import outcomes, planner, repository
from shared.renewals.config import renewal_settings
from shared.subscriptions.commands import ApplyDiscount, ChangeItems, CreateItemsSubscription
from shared.subscriptions.service import ServiceError, SubscriptionService
from tests.fixtures.invoices import due_msg, received
from tests.fixtures.renewals import Env
from tests.helpers import T0

MONTHLY = {"interval": "month", "interval_count": 1}
P1 = dt.datetime(2026, 2, 28, 9, 0, tzinfo=dt.UTC)  # period boundaries of a subscription anchored at T0 (UTC)
P2 = dt.datetime(2026, 3, 31, 9, 0, tzinfo=dt.UTC)
P3 = dt.datetime(2026, 4, 30, 9, 0, tzinfo=dt.UTC)


def catalog(customer: str = "cus_items", *, coupon: dict[str, Any] | None = None) -> None:
    """A customer (DE, EUR, 19 % VAT), seats at 10.00 and support at 5.00 a month, optionally a coupon."""
    CustomerStore().create(CreateCustomer(id=customer, legal_name="Ada GmbH", country="DE", currency="EUR"))
    cat = CatalogStore()
    for prod, price, amount in (("seat", "seat-eur", "1000"), ("support", "support-eur", "500")):
        cat.create_product(CreateProduct(id=prod, name=prod.title()))
        cat.create_price(
            CreatePrice.model_validate(
                {
                    "id": price,
                    "product": prod,
                    "currency": "EUR",
                    "recurring": MONTHLY,
                    "pricing": {"model": "per_unit", "unit_amount": amount},
                }
            )
        )
    if coupon is not None:
        CouponStore().create_coupon(CreateCoupon.model_validate(coupon))


def subscribe(sub_id: str, items: list[tuple[str, int]], **extra: Any) -> dict[str, Any]:
    body = {
        "subscription_id": sub_id,
        "customer": extra.pop("customer", "cus_items"),
        "seller_entity": "acme-de",
        "items": [{"price": p, "quantity": q} for p, q in items],
        "start_at": T0.isoformat(),
        "collection": "send_invoice",
        "days_until_due": 365,  # no overdue unless a test asks for it
        **extra,
    }
    status, out = SubscriptionService().create_with_items(CreateItemsSubscription.model_validate(body))
    assert status == 201
    return out


def bill(env: Env, now: dt.datetime) -> list[RenewalDue]:
    cfg = renewal_settings()
    for shard in range(cfg.shards):
        planner.run_shard(shard, now, cfg)
    return [RenewalDue.model_validate(b) for a, b in env.pull("renewals-due") if a["event_type"] == "renewal.due"]


def invoices_at(now: dt.datetime) -> InvoiceService:
    db = clients.firestore()
    return InvoiceService(db=db, allocator=NumberAllocator(db), clock=lambda: now)


def issue(due: RenewalDue, now: dt.datetime) -> dict[str, Any]:
    invoices_at(now).on_renewal_due(due_msg(due))
    return invoice(due.request_id)


def invoice(request_id: str) -> dict[str, Any]:
    return clients.firestore().collection(INVOICES).document(invoice_id_for(request_id)).get().to_dict() or {}


def sub_doc(sub_id: str) -> dict[str, Any]:
    return repository.subs().document(sub_id).get().to_dict() or {}


def price(price_id: str) -> Price:
    return CatalogStore().price(price_id)


def test_quantity_change_mid_period_is_prorated_exactly_once(env: Env) -> None:
    catalog()
    subscribe("sub_seats", [("seat-eur", 2), ("support-eur", 1)])
    (first,) = bill(env, T0)
    inv0 = issue(first, T0)
    assert [(ln["description"], ln["amount"]) for ln in inv0["lines"]] == [("2 x seat", 2000), ("1 x support", 500)]
    assert (inv0["subtotal"], inv0["tax"], inv0["total"]) == (2500, 475, 2975)  # 19 % per line, DE to DE

    at = T0 + dt.timedelta(days=14)
    SubscriptionService().change_items(
        "sub_seats",
        ChangeItems.model_validate(
            {
                "items": [{"price": "seat-eur", "quantity": 5}, {"price": "support-eur", "quantity": 1}],
                "at": at.isoformat(),
            }
        ),
    )
    period0 = Period(0, T0, P1)
    expected = item_change(
        Item(price=price("seat-eur"), quantity=2), Item(price=price("seat-eur"), quantity=5), period0, at
    )
    assert [ln.amount.amount for ln in expected] == [-1000, 2500]  # 14 of 28 days: half of 20.00 back, half of 50.00

    (second,) = bill(env, P1)
    assert len(second.charges) == 2
    inv1 = issue(second, P1)
    issue(second, P1)  # a redelivery: the same invoice
    prorations = [(ln["kind"], ln["amount"]) for ln in inv1["lines"] if ln["kind"] == "proration"]
    assert prorations == [("proration", -1000), ("proration", 2500)]
    assert inv1["subtotal"] == 5000 + 500 - 1000 + 2500
    assert sub_doc("sub_seats")["pending_charges"] == []
    (third,) = bill(env, P2)
    inv2 = issue(third, P2)
    assert [ln["kind"] for ln in inv2["lines"]] == ["recurring", "recurring"]  # prorations billed once, not again
    assert inv2["subtotal"] == 5500
    assert bill(env, P2) == []


def test_repeating_coupon_discounts_exactly_three_periods(env: Env) -> None:
    coupon = {"id": "launch", "percent_off": "10", "duration": "repeating", "duration_in_periods": 3}
    catalog(coupon=coupon)
    subscribe("sub_coupon", [("seat-eur", 3)], discount={"coupon": "launch"})
    discounts = []
    for now in (T0, P1, P2, P3):
        (due,) = bill(env, now)
        inv = issue(due, now)
        discounts.append((inv["discount"], inv["total"]))
        assert inv["lines"][0]["discount"] == inv["discount"]  # shown per line
    assert discounts == [(300, 3213), (300, 3213), (300, 3213), (0, 3570)]
    assert CouponStore().coupon_doc("launch")["times_redeemed"] == 1


def test_coupon_shown_on_the_pdf_and_carried_into_a_credit_note(env: Env) -> None:
    from shared.events.payments import PaymentRefunded
    from shared.invoicing.documents import build_credit_note_doc
    from shared.invoicing.entities import seller

    catalog(coupon={"id": "half", "percent_off": "50", "duration": "forever"})
    subscribe("sub_pdf", [("seat-eur", 1)], discount={"coupon": "half"})
    (due,) = bill(env, T0)
    inv = issue(due, T0)
    assert inv["discounts"] == [{"discount_id": "sub_pdf-half", "coupon_id": "half", "amount": 500}]
    assert inv["pdf_sha256"]
    refund = PaymentRefunded.model_validate(
        {
            "psp": "stripe",
            "psp_event_id": "evt_r",
            "psp_payment_id": "pi_r",
            "livemode": False,
            "refund_id": "re_1",
            "refunded": {"amount": inv["total"], "currency": "EUR"},
            "full": True,
            "psp_created_at": T0.isoformat(),
        }
    )
    note = build_credit_note_doc(inv, "cn_1", Money(inv["total"], "EUR"), refund, s=seller("acme-de"), now=T0)
    assert (note["subtotal"], note["discount"], note["total"]) == (1000, 500, 595)
    assert note["lines"][0]["discounts"][0]["coupon_id"] == "half"


def test_credit_applied_once_under_redelivery_and_parallel_finalizations(env: Env) -> None:
    catalog()
    CreditStore().grant("cus_items", CreateCreditGrant(amount=Money(1000, "EUR")), entry_id="goodwill")
    subscribe("sub_credit", [("seat-eur", 1)])
    (due,) = bill(env, T0)
    with concurrent.futures.ThreadPoolExecutor(6) as pool:
        list(pool.map(lambda _: invoices_at(T0).on_renewal_due(due_msg(due)), range(6)))
    inv = issue(due, T0)  # and a late redelivery
    assert (inv["total"], inv["credit_applied"], inv["amount_due"]) == (1190, 1000, 190)
    assert CreditStore().balance("cus_items") == Money(0, "EUR")
    entries = clients.firestore().collection("customers").document("cus_items").collection(ENTRIES).stream()
    assert sorted(e.id for e in entries) == ["application:" + inv["invoice_id"], "goodwill"]
    finalized = [b for a, b in env.pull("invoice-events") if a["event_type"] == "invoice.finalized"]
    assert {(b["credit_applied"]["amount"], b["amount_due"]["amount"]) for b in finalized} == {(1000, 190)}
    (nxt,) = bill(env, P1)
    assert issue(nxt, P1)["credit_applied"] == 0  # the balance is spent: never applied twice


def test_send_invoice_due_date_overdue_past_due_and_renewals_go_on(env: Env) -> None:
    catalog()
    subscribe("sub_due", [("seat-eur", 1)], days_until_due=25)  # overdue Feb 25, unpaid 7 days later (policy)

    def transitions() -> list[dict[str, Any]]:
        return [b for _, b in env.pull("subscription-events")]

    transitions()
    (due,) = bill(env, T0)
    inv0 = issue(due, T0)
    assert inv0["due_at"] == T0 + dt.timedelta(days=25)
    finalized = [b for a, b in env.pull("invoice-events") if a["event_type"] == "invoice.finalized"]
    assert finalized[0]["due_at"] == "2026-02-25T09:00:00Z"
    assert bill(env, T0 + dt.timedelta(days=24)) == []
    assert sub_doc("sub_due")["status"] == "active"
    assert bill(env, T0 + dt.timedelta(days=25)) == []
    assert sub_doc("sub_due")["status"] == "past_due"
    assert [(t["to_status"], t["reason"]) for t in transitions()] == [("past_due", "invoice_overdue")]
    (nxt,) = bill(env, P1)  # still invoiced while past due (Stripe's send_invoice behaviour)
    inv1 = issue(nxt, P1)
    assert sub_doc("sub_due")["status"] == "past_due"
    paid = InvoicePaid(
        invoice_id=inv0["invoice_id"],
        number=inv0["number"],
        subscription_id="sub_due",
        customer_id="cus_items",
        amount_paid=Money(inv0["amount_due"], "EUR"),
        paid_at=P1 + dt.timedelta(days=1),
        collection="send_invoice",
        paid_by="operator",
    )
    outcomes.on_invoice_paid(received(paid, f"{paid.invoice_id}:paid"))
    d = sub_doc("sub_due")
    assert d["status"] == "active"  # the overdue invoice is paid; the next one is not due yet
    assert [x["index"] for x in d["open_due"]] == [1]
    assert inv1["due_at"] == P1 + dt.timedelta(days=25)


def test_overdue_beyond_the_dunning_window_ends_unpaid(env: Env) -> None:
    catalog()
    subscribe("sub_late", [("seat-eur", 1)], days_until_due=0)
    (due,) = bill(env, T0)
    issue(due, T0)
    bill(env, T0 + dt.timedelta(minutes=1))
    assert sub_doc("sub_late")["status"] == "past_due"
    bill(env, T0 + dt.timedelta(days=7, minutes=1))  # default policy: retries over 7 days, then unpaid
    assert sub_doc("sub_late")["status"] == "unpaid"


def test_preview_equals_the_invoice_then_issued(env: Env) -> None:
    catalog(coupon={"id": "ten", "amount_off": {"amount": 300, "currency": "EUR"}, "duration": "forever"})
    CreditStore().grant("cus_items", CreateCreditGrant(amount=Money(400, "EUR")), entry_id="g1")
    subscribe("sub_preview", [("seat-eur", 2)])
    (due,) = bill(env, T0)
    issue(due, T0)  # the grant pays 400 of the first invoice
    CreditStore().grant("cus_items", CreateCreditGrant(amount=Money(250, "EUR")), entry_id="g2")
    svc = SubscriptionService()
    at = T0 + dt.timedelta(days=7)
    svc.apply_discount("sub_preview", ApplyDiscount(coupon="ten", at=at))
    svc.change_items(
        "sub_preview",
        ChangeItems.model_validate(
            {
                "items": [{"price": "seat-eur", "quantity": 3}, {"price": "support-eur", "quantity": 1}],
                "at": at.isoformat(),
            }
        ),
    )
    balance = CreditStore().balance("cus_items")
    preview = svc.preview("sub_preview", at=P1)
    assert CreditStore().balance("cus_items") == balance  # no side effect
    assert invoice(f"sub_preview:{P1.isoformat().replace('+00:00', 'Z')}") == {}
    (nxt,) = bill(env, P1)
    inv = issue(nxt, P1)
    assert preview["invoice_id"] == inv["invoice_id"]
    assert [
        (ln["description"], ln["amount"]["amount"], ln["discount"]["amount"], ln["tax"]["amount"])
        for ln in preview["lines"]
    ] == [(ln["description"], ln["amount"], ln["discount"], ln["tax"]) for ln in inv["lines"]]
    for key in ("subtotal", "discount", "tax", "total", "credit_applied", "amount_due"):
        assert preview[key]["amount"] == inv[key], key
    assert preview["discount"]["amount"] == 300
    assert preview["credit_applied"]["amount"] == 250


def test_items_are_checked_at_creation(env: Env) -> None:
    catalog()
    with pytest.raises(ServiceError) as e:
        subscribe("sub_bad", [("nope", 1)])
    assert (e.value.status, e.value.code) == (422, "unknown_price")
    with pytest.raises(ServiceError) as e:
        subscribe("sub_bad", [("seat-eur", 1)], customer="cus_nobody")
    assert (e.value.status, e.value.code) == (422, "unknown_customer")
    with pytest.raises(ServiceError) as e:
        subscribe("sub_bad", [("seat-eur", 1)], discount={"coupon": "nope"})
    assert (e.value.status, e.value.code) == (422, "unknown_coupon")  # a reference of the body, like the others
    assert sub_doc("sub_bad") == {}


def test_items_routes_create_change_discount_and_preview(env: Env) -> None:
    from tests.integration.renewals.test_api import call

    catalog(coupon={"id": "five", "percent_off": "5", "duration": "forever"})
    body = {
        "subscription_id": "sub_http",
        "customer": "cus_items",
        "seller_entity": "acme-de",
        "items": [{"price": "seat-eur", "quantity": 2}],
        "start_at": T0.isoformat(),
        "collection": "send_invoice",
        "days_until_due": 14,
    }
    status, out = call("POST", "/subscriptions", body)
    assert (status, out["items"][0]["quantity"], out["days_until_due"]) == (201, 2, 14)
    assert call("POST", "/subscriptions", body)[0] == 200  # an identical replay
    status, out = call("POST", "/subscriptions/sub_http/discounts", {"coupon": "five"})
    assert (status, [d["coupon"]["id"] for d in out["discounts"]]) == (200, ["five"])
    status, out = call("POST", "/subscriptions/sub_http/items", {"items": [{"price": "seat-eur", "quantity": 4}]})
    assert (status, out["items"][0]["quantity"]) == (200, 4)
    status, preview = call("GET", "/subscriptions/sub_http/preview")
    assert status == 200
    assert (preview["subtotal"]["amount"], preview["discount"]["amount"]) == (4000, 200)
    assert preview["due_at"] == "2026-02-14T09:00:00Z"
    assert call("POST", "/subscriptions/sub_http/items", {"items": []})[0] == 422
    assert call("POST", "/subscriptions/sub_http/preview", {})[0] == 405


def test_migration_of_a_plan_subscription_keeps_renewing_with_the_same_amounts(env: Env) -> None:
    import io
    import json

    from shared.ops.subscriptions import main
    from shared.subscriptions.commands import ChangePlan, PlanIn
    from tests.fixtures.renewals import new_sub

    new_sub("sub_old", amount=1000)
    (first,) = bill(env, T0)
    old = issue(first, T0)
    paid = InvoicePaid(
        invoice_id=old["invoice_id"],
        number=old["number"],
        subscription_id="sub_old",
        customer_id="cus-sub_old",
        amount_paid=Money(old["amount_due"], "EUR"),
        paid_at=T0,
        collection="charge_automatically",
        paid_by="operator",
    )
    outcomes.on_invoice_paid(received(paid, f"{paid.invoice_id}:paid"))
    bigger = PlanIn.model_validate(
        {
            "id": "pro",
            "currency": "EUR",
            "interval": "month",
            "lines": [{"description": "Pro plan", "unit_amount": {"amount": 1000, "currency": "EUR"}, "quantity": 2}],
        }
    )
    SubscriptionService().change_plan("sub_old", ChangePlan(plan=bigger, at=T0 + dt.timedelta(days=14)))
    before = sub_doc("sub_old")
    out = io.StringIO()
    assert main(["migrate", "sub_old", "--dry-run"], out=out) == 0
    shown = json.loads(out.getvalue())
    assert shown["before"]["plan"]["lines"][0]["quantity"] == 2
    assert shown["after"]["items"][0]["quantity"] == 2
    assert [c["amount"]["amount"] for c in shown["after"]["pending_charges"]] == [-500, 1000]
    assert sub_doc("sub_old") == before  # a dry run writes nothing
    assert main(["migrate", "sub_old"], out=io.StringIO()) == 0
    assert main(["migrate", "sub_old"], out=io.StringIO()) == 0  # again: a no-op
    d = sub_doc("sub_old")
    assert (d["plan"], d["pending_lines"], len(d["pending_charges"])) == (None, [], 2)
    (nxt,) = bill(env, P1)
    assert nxt.items
    inv = issue(nxt, P1)
    assert [ln["amount"] for ln in inv["lines"]] == [2000, -500, 1000]
    assert inv["subtotal"] == 2500
    assert old["tax"] * 2 == inv["lines"][0]["tax"]  # the same per-line tax as the plan's invoice
