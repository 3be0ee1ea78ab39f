"""Act 92: subscriptions of catalog items: a coupon, a mid-period quantity change, a credit, one send_invoice customer.

Builds a small catalog (seats at 12.00 and support at 5.00 a month, a 20 % coupon for 2 periods) and subscribes
two customers with items through the subscriptions API: Ada (coupon, charged automatically on the default card
stored on her customer, through the Stripe-shaped stub of act 30) and Bob, billed by ``send_invoice`` (25 days to
pay, never pays: past due, still invoiced, then unpaid under the dunning policy). Ada gets a 10.00 EUR credit and
more seats mid-period; the test clock renews both. The invoices function composes each invoice (discounts per
line, prorations, tax, credit applied once); the act prints them and a preview. Played after the others: its
ticks renew only what is due, and no earlier act counts on what it creates.
"""

from __future__ import annotations

import datetime as dt
import json
import time
import urllib.request
from typing import Any

from infra.local.acts import DemoContext
from infra.local.acts.renewals import post, tick

ORDER = 92
TITLE = "Billing: items from the catalog, coupon, proration, credit balance, send_invoice"

T0 = dt.datetime(2026, 1, 31, 9, 0, tzinfo=dt.UTC)
BOUNDARIES = (T0, dt.datetime(2026, 2, 28, 9, 0, tzinfo=dt.UTC), dt.datetime(2026, 3, 31, 9, 0, tzinfo=dt.UTC))


def build_catalog(tag: str) -> None:
    """Customers, products, prices and a coupon (explicit ids: replaying the act creates nothing twice)."""
    from shared.billing.catalog import CatalogStore, CreatePrice, CreateProduct
    from shared.billing.coupons import CouponStore, CreateCoupon
    from shared.billing.credit import CreateCreditGrant, CreditStore
    from shared.billing.customers import CreateCustomer, CustomerStore
    from shared.domain.money import Money

    customers = CustomerStore()
    card = {"psp": "stripe", "customer_ref": f"cus_{tag}_ada", "payment_methods": [{"method_ref": "pm_card_visa"}]}
    ada: dict[str, Any] = {
        "id": f"{tag}-ada",
        "legal_name": "Ada GmbH",
        "country": "DE",
        "currency": "EUR",
        "psp_accounts": [card],
    }
    ada["default_payment_method"] = {"psp": "stripe", "method_ref": "pm_card_visa"}
    customers.create(CreateCustomer.model_validate(ada))
    customers.create(CreateCustomer(id=f"{tag}-bob", legal_name="Bob KG", country="DE", currency="EUR"))
    cat = CatalogStore()
    for prod, amount in (("seat", "1200"), ("support", "500")):
        cat.create_product(CreateProduct(id=f"{tag}-{prod}", name=prod.title()))
        cat.create_price(
            CreatePrice.model_validate(
                {
                    "id": f"{tag}-{prod}-eur",
                    "product": f"{tag}-{prod}",
                    "currency": "EUR",
                    "recurring": {"interval": "month"},
                    "pricing": {"model": "per_unit", "unit_amount": amount},
                    "nickname": prod.title(),
                }
            )
        )
    coupon = {"id": f"{tag}-launch", "percent_off": "20", "duration": "repeating", "duration_in_periods": 2}
    CouponStore().create_coupon(CreateCoupon.model_validate(coupon))
    CreditStore().grant(f"{tag}-ada", CreateCreditGrant(amount=Money(1000, "EUR")), entry_id=f"{tag}-goodwill")


def get(url: str) -> dict[str, Any]:
    with urllib.request.urlopen(url, timeout=20) as r:  # noqa: S310 (loopback)
        return dict(json.loads(r.read()))


def wait_invoices(sub_ids: list[str], count: int, timeout_s: float = 60.0) -> list[dict[str, Any]]:
    """The finalized invoices (PDF stored) of ``sub_ids`` once there are ``count`` of them."""
    from google.cloud.firestore_v1.base_query import FieldFilter

    from shared import clients

    q = clients.firestore().collection("invoices").where(filter=FieldFilter("subscription_id", "in", sub_ids))
    deadline = time.monotonic() + timeout_s
    while True:
        docs = [d.to_dict() or {} for d in q.stream()]
        done = [d for d in docs if d.get("pdf_sha256")]
        if len(done) >= count:
            return sorted(done, key=lambda d: (d["subscription_id"], d.get("period_index") or 0))
        if time.monotonic() > deadline:
            raise TimeoutError(f"{len(done)} of {count} invoices finalized within {timeout_s}s")
        time.sleep(0.3)


def wait_paid(sub_id: str, count: int, timeout_s: float = 60.0) -> None:
    """Until ``count`` invoices of ``sub_id`` are paid (a charge of a card runs after its invoice is finalized)."""
    from google.cloud.firestore_v1.base_query import FieldFilter

    from shared import clients

    q = clients.firestore().collection("invoices").where(filter=FieldFilter("subscription_id", "==", sub_id))
    deadline = time.monotonic() + timeout_s
    while sum(1 for d in q.stream() if (d.to_dict() or {}).get("status") == "paid") < count:
        if time.monotonic() > deadline:
            raise TimeoutError(f"{sub_id}: {count} invoices not paid within {timeout_s}s")
        time.sleep(0.3)


def status_of(sub_id: str, quiet_s: float = 2.0) -> str:
    from shared import clients

    time.sleep(quiet_s)  # the tick's fan-out lands asynchronously
    d = clients.firestore().collection("subscriptions").document(sub_id).get().to_dict() or {}
    return str(d.get("status"))


def _eur(v: int) -> str:
    from shared.domain.money import Money

    return str(Money(int(v), "EUR"))


def play(ctx: DemoContext) -> None:
    tag = f"bill{int(time.time())}"
    build_catalog(tag)
    ctx.say(f"  catalog: {tag}-seat-eur 12.00/month, {tag}-support-eur 5.00/month, coupon 20 % for 2 periods")
    ctx.say(f"  credit grant: 10.00 EUR to {tag}-ada")
    api = ctx.stack.function_urls["subscriptions"] + "/subscriptions"
    ada, bob = f"{tag}-sub-ada", f"{tag}-sub-bob"
    common = {"seller_entity": "acme-de", "start_at": T0.isoformat()}
    bodies: dict[str, dict[str, Any]] = {
        ada: {  # charge_automatically (the default) on the customer's default card
            **common,
            "subscription_id": ada,
            "customer": f"{tag}-ada",
            "items": [{"price": f"{tag}-seat-eur", "quantity": 3}, {"price": f"{tag}-support-eur", "quantity": 1}],
            "discount": {"coupon": f"{tag}-launch"},
        },
        bob: {
            **common,
            "subscription_id": bob,
            "customer": f"{tag}-bob",
            "items": [{"price": f"{tag}-seat-eur", "quantity": 1}],
            "collection": "send_invoice",
            "days_until_due": 25,
        },
    }
    for sid, body in bodies.items():
        status, out = post(api, body)
        ctx.say(f"  create {sid}: HTTP {status} status={out.get('status')} items={len(out.get('items') or [])}")
    tick(BOUNDARIES[0])
    wait_invoices([ada, bob], 2)
    wait_paid(ada, 1)  # charged on her default card: the period is paid before the next renews
    mid = T0 + dt.timedelta(days=14)
    items = [{"price": f"{tag}-seat-eur", "quantity": 5}, {"price": f"{tag}-support-eur", "quantity": 1}]
    status, out = post(f"{api}/{ada}/items", {"items": items, "at": mid.isoformat()})
    ctx.say(
        f"  {ada}: 3 -> 5 seats on {mid.date()}: HTTP {status}, {len(out.get('pending_charges') or [])} proration lines"
    )
    preview = get(f"{api}/{ada}/preview")
    ctx.say(
        f"  preview of {ada}'s next invoice: total {_eur(preview['total']['amount'])}, "
        f"credit {_eur(preview['credit_applied']['amount'])}, due {_eur(preview['amount_due']['amount'])}"
    )
    tick(BOUNDARIES[1])  # bob's first invoice is overdue: past due, and the period is invoiced all the same
    wait_invoices([ada, bob], 4)
    wait_paid(ada, 2)
    ctx.say(f"  after {BOUNDARIES[1].date()}: {bob} is {status_of(bob)} (invoice due on Feb 25 unpaid)")
    tick(BOUNDARIES[2])  # bob still has not paid, 7 days after the due date: the dunning policy's final status
    wait_invoices([ada, bob], 5)
    wait_paid(ada, 3)
    invoices = wait_invoices([ada, bob], 5)
    ctx.say("  invoices (composed by the invoices function):")
    for d in invoices:
        ctx.say(
            f"    {d['subscription_id']:<24} {d['number']:<18} subtotal {_eur(d['subtotal']):>11} "
            f"discount {_eur(d.get('discount', 0)):>10} tax {_eur(d['tax']):>10} total {_eur(d['total']):>11} "
            f"credit {_eur(d.get('credit_applied', 0)):>10} due {_eur(d['amount_due']):>11} "
            + (f"by {str(d['due_at'])[:10]}" if d.get("due_at") else f"charged: {d.get('status')}")
        )
        for ln in d["lines"]:
            off = f"  -{_eur(ln['discount'])}" if ln.get("discount") else ""
            ctx.say(f"        {ln['description'][:48]:<48} {_eur(ln['amount']):>11}{off}")
    from shared import clients

    state = {s: (clients.firestore().collection("subscriptions").document(s).get().to_dict() or {}) for s in bodies}
    for sid, d in state.items():
        ctx.say(f"  {sid}: {d.get('status')}, open invoices {[x['index'] for x in d.get('open_due') or []]}")
    ctx.facts["billing"] = {
        "subscriptions": list(bodies),
        "invoices": invoices,
        "status": {sid: d.get("status") for sid, d in state.items()},
    }
