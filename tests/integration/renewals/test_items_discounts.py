"""Promotion codes a customer types, applied when a subscription with items is created or later, on the emulators.

Every restriction is checked at redemption (expiry, limits under concurrency, fixed-coupon currency, products,
the code's customer, first time, minimum amount), and a reference that does not exist is a precise 422.
"""

from __future__ import annotations

import concurrent.futures
from typing import Any

from shared.billing.coupons import CouponStore, CreateCoupon, CreatePromotionCode
from shared.billing.customers import CreateCustomer, CustomerStore
from tests.fixtures.renewals import Env
from tests.helpers import T0
from tests.integration.renewals.test_api import call
from tests.integration.renewals.test_items import bill, catalog, issue


def body(sub_id: str, customer: str = "cus_items", items: Any = (("seat-eur", 2),), **extra: Any) -> dict[str, Any]:
    return {
        "subscription_id": sub_id,
        "customer": customer,
        "seller_entity": "acme-de",
        "items": [{"price": p, "quantity": q} for p, q in items],
        "start_at": T0.isoformat(),
        "collection": "send_invoice",
        "days_until_due": 30,
        **extra,
    }


def code(**fields: Any) -> None:
    CouponStore().create_code(CreatePromotionCode.model_validate(fields))


def coupon(**fields: Any) -> None:
    CouponStore().create_coupon(CreateCoupon.model_validate(fields))


def test_a_typed_promotion_code_is_applied_at_creation_with_its_restrictions(env: Env) -> None:
    catalog(coupon={"id": "welcome", "percent_off": "20", "duration": "repeating", "duration_in_periods": 2})
    CustomerStore().create(CreateCustomer(id="cus_other", legal_name="Bob KG", country="DE", currency="EUR"))
    code(code="Welcome-26", coupon="welcome", first_time_only=True, minimum_amount={"amount": 2000, "currency": "EUR"})
    status, out = call("POST", "/subscriptions", body("sub_promo", discount={"promotion_code": "welcome-26"}))
    assert status == 201, out
    (d,) = out["discounts"]
    assert (d["coupon"]["id"], d["promotion_code"], d["start_period"]) == ("welcome", "WELCOME-26", 0)
    (first,) = bill(env, T0)
    inv = issue(first, T0)
    assert (inv["subtotal"], inv["discount"]) == (2000, 400)  # 20 % of 2 x 10.00, before tax

    # Below the code's minimum (the first period's items before discounts): refused, nothing redeemed.
    status, out = call(
        "POST",
        "/subscriptions",
        body("sub_small", "cus_other", (("support-eur", 1),), discount={"promotion_code": "WELCOME-26"}),
    )
    assert (status, out["error"]) == (409, "minimum_amount")
    # First time only: cus_items has an invoice now.
    status, out = call(
        "POST", "/subscriptions", body("sub_again", items=(("seat-eur", 3),), discount={"promotion_code": "WELCOME-26"})
    )
    assert (status, out["error"]) == (409, "first_time_only")
    assert CouponStore().show_code("welcome-26")["times_redeemed"] == 1
    assert call("GET", "/subscriptions/sub_small")[0] == 404  # a refused redemption creates no subscription


def test_coupon_restrictions_and_unknown_references_at_creation(env: Env) -> None:
    catalog()
    coupon(id="seats-only", percent_off="10", applies_to_products=["seat"])
    coupon(id="usd-5", amount_off={"amount": 500, "currency": "USD"})
    coupon(id="gone", percent_off="10", redeem_by="2026-01-01T00:00:00Z")
    code(code="SEATS", coupon="seats-only")
    cases = {
        "products_not_covered": ({"coupon": "seats-only"}, (("support-eur", 1),)),
        "currency_mismatch": ({"coupon": "usd-5"}, (("seat-eur", 1),)),
        "coupon_expired": ({"coupon": "gone"}, (("seat-eur", 1),)),
    }
    for n, (reason, (discount, items)) in enumerate(cases.items()):
        status, out = call("POST", "/subscriptions", body(f"sub_r{n}", items=items, discount=discount))
        assert (status, out["error"]) == (409, reason)
    status, out = call("POST", "/subscriptions", body("sub_u1", discount={"coupon": "ghost"}))
    assert (status, out["error"]) == (422, "unknown_coupon")
    status, out = call("POST", "/subscriptions", body("sub_u2", discount={"promotion_code": "NOPE"}))
    assert (status, out["error"]) == (422, "unknown_promotion_code")
    status, out = call("POST", "/subscriptions", body("sub_u3", customer="ghost"))
    assert (status, out["error"]) == (422, "unknown_customer")
    status, out = call("POST", "/subscriptions", body("sub_u4", items=(("ghost-price", 1),)))
    assert (status, out["error"]) == (422, "unknown_price")
    # The restricted coupon covers a subscription with a seat among its items; attaching later too.
    status, out = call("POST", "/subscriptions", body("sub_mix", items=(("seat-eur", 1), ("support-eur", 1))))
    assert status == 201
    status, out = call("POST", "/subscriptions/sub_mix/discounts", {"promotion_code": "seats"})
    assert (status, [x["coupon"]["id"] for x in out["discounts"]]) == (200, ["seats-only"])
    status, out = call("POST", "/subscriptions/sub_mix/discounts", {"coupon": "ghost"})
    assert (status, out["error"]) == (422, "unknown_coupon")
    assert [c for c in ("seats-only", "usd-5", "gone") if CouponStore().show_coupon(c)["times_redeemed"]] == [
        "seats-only"
    ]


def test_parallel_subscriptions_never_redeem_a_code_beyond_its_limit(env: Env) -> None:
    catalog(coupon={"id": "launch", "percent_off": "50", "max_redemptions": 10})
    code(code="LAUNCH", coupon="launch", max_redemptions=3)
    n = 8
    for i in range(n):
        CustomerStore().create(CreateCustomer(id=f"cus_p{i}", legal_name=f"P{i} GmbH", country="DE", currency="EUR"))

    def create(i: int) -> tuple[int, Any]:
        return call("POST", "/subscriptions", body(f"sub_p{i}", f"cus_p{i}", discount={"promotion_code": "launch"}))

    with concurrent.futures.ThreadPoolExecutor(n) as pool:
        results = list(pool.map(create, range(n)))
    created = [out for status, out in results if status == 201]
    refused = [out["error"] for status, out in results if status != 201]
    assert len(created) == 3
    assert refused == ["promotion_exhausted"] * (n - 3)
    assert all(out["discounts"][0]["promotion_code"] == "LAUNCH" for out in created)
    assert CouponStore().show_code("LAUNCH")["times_redeemed"] == 3
    assert CouponStore().show_coupon("launch")["times_redeemed"] == 3
    # A retried creation of a created subscription redeems nothing again.
    sub_id = created[0]["id"]
    i = int(sub_id.removeprefix("sub_p"))
    assert call("POST", "/subscriptions", body(sub_id, f"cus_p{i}", discount={"promotion_code": "launch"}))[0] == 200
    assert CouponStore().show_code("LAUNCH")["times_redeemed"] == 3
