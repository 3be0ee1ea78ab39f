"""Coupons and promotion codes on the emulator: references checked, redemption limits exact under parallel
redemptions, redeem-by dates, retried redemptions counted once."""

from __future__ import annotations

import datetime as dt
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

import pytest

from shared.billing.coupons import CouponStore
from shared.billing.deps import BillingError
from shared.domain.money import Money
from tests.integration.billing.conftest import Client, customer_body

T0 = dt.datetime(2026, 1, 15, tzinfo=dt.UTC)


def _redeem_all(n: int, redeem: Callable[[int], object]) -> list[str]:
    """Run ``redeem(i)`` in ``n`` threads released together; each answers "ok" or its refusal code."""
    start = threading.Barrier(n)

    def run(i: int) -> str:
        start.wait()
        try:
            redeem(i)
        except BillingError as exc:
            return exc.code
        return "ok"

    with ThreadPoolExecutor(n) as pool:
        return list(pool.map(run, range(n)))


def test_coupons_and_codes_check_their_references(api: Client) -> None:
    a = api("POST", "/coupons", {"id": "c1", "percent_off": "10", "applies_to_products": ["ghost"]})
    assert (a.status, a.body["error"]) == (422, "unknown_product")
    a = api("POST", "/promotion_codes", {"code": "SPRING", "coupon": "ghost"})
    assert (a.status, a.body["error"]) == (422, "unknown_coupon")
    api.ok("POST", "/coupons", {"id": "c1", "percent_off": "12.5", "duration": "repeating", "duration_in_periods": 3})
    a = api("POST", "/promotion_codes", {"code": "SPRING", "coupon": "c1", "customer": "ghost"})
    assert (a.status, a.body["error"]) == (422, "unknown_customer")
    both = {"percent_off": "10", "amount_off": {"amount": 5, "currency": "EUR"}}
    for bad in ({"percent_off": "0"}, {"percent_off": 12.5}, both):
        a = api("POST", "/coupons", bad)
        assert a.status == 422, bad
    code = api.ok("POST", "/promotion_codes", {"code": "Spring-26", "coupon": "c1"})
    assert (code["id"], code["code"], code["times_redeemed"]) == ("SPRING-26", "Spring-26", 0)
    assert api.ok("GET", "/promotion_codes/spring-26") == code
    a = api("POST", "/promotion_codes", {"code": "SPRING-26", "coupon": "c1", "max_redemptions": 2})
    assert (a.status, a.body["error"]) == (409, "resource_exists")  # unique whatever the case


def test_parallel_redemptions_never_exceed_max_redemptions(api: Client) -> None:
    api.ok("POST", "/coupons", {"id": "c5", "amount_off": {"amount": 500, "currency": "EUR"}, "max_redemptions": 5})
    store = CouponStore()
    out = _redeem_all(12, lambda i: store.redeem(f"sub_{i}", coupon_id="c5", customer_id=None, currency="EUR", at=T0))
    assert sorted(out) == ["coupon_exhausted"] * 7 + ["ok"] * 5
    assert api.ok("GET", "/coupons/c5")["times_redeemed"] == 5


def test_parallel_redemptions_through_a_code_respect_the_code_limit(api: Client) -> None:
    api.ok("POST", "/coupons", {"id": "c", "percent_off": "20"})
    api.ok("POST", "/promotion_codes", {"code": "VIP", "coupon": "c", "max_redemptions": 3})
    store = CouponStore()
    out = _redeem_all(8, lambda i: store.redeem(f"sub_{i}", code="vip", customer_id=None, currency="EUR", at=T0))
    assert sorted(out) == ["ok"] * 3 + ["promotion_exhausted"] * 5
    assert api.ok("GET", "/promotion_codes/VIP")["times_redeemed"] == 3
    assert api.ok("GET", "/coupons/c")["times_redeemed"] == 3


def test_a_redemption_retried_in_parallel_counts_once(api: Client) -> None:
    api.ok("POST", "/coupons", {"id": "c", "percent_off": "20", "max_redemptions": 10})
    store = CouponStore()
    out = _redeem_all(6, lambda i: store.redeem("sub_1", coupon_id="c", customer_id=None, currency="EUR", at=T0))
    assert out == ["ok"] * 6
    applied = store.redeem("sub_1", coupon_id="c", customer_id=None, currency="EUR", at=T0 + dt.timedelta(days=1))
    assert applied.applied_at == T0  # the first redemption, returned again
    assert api.ok("GET", "/coupons/c")["times_redeemed"] == 1


def test_redeem_by_expiry_customer_and_minimum_are_enforced(api: Client) -> None:
    api.ok("POST", "/customers", customer_body(id="cus-1"))
    api.ok("POST", "/coupons", {"id": "c", "percent_off": "20", "redeem_by": "2026-02-01T00:00:00Z"})
    body = {"code": "MIN", "coupon": "c", "customer": "cus-1", "minimum_amount": {"amount": 5000, "currency": "EUR"}}
    api.ok("POST", "/promotion_codes", body)
    store = CouponStore()
    with pytest.raises(BillingError, match="coupon_expired"):
        store.redeem("a", coupon_id="c", customer_id=None, currency="EUR", at=dt.datetime(2026, 2, 1, tzinfo=dt.UTC))
    with pytest.raises(BillingError, match="promotion_customer"):
        store.redeem("b", code="MIN", customer_id="cus-2", currency="EUR", at=T0, subtotal=Money(9000, "EUR"))
    with pytest.raises(BillingError, match="minimum_amount"):
        store.redeem("c", code="MIN", customer_id="cus-1", currency="EUR", at=T0, subtotal=Money(4999, "EUR"))
    applied = store.redeem("d", code="MIN", customer_id="cus-1", currency="EUR", at=T0, subtotal=Money(5000, "EUR"))
    assert (applied.coupon.id, applied.promotion_code) == ("c", "MIN")
    assert api.ok("GET", "/coupons/c")["times_redeemed"] == 1
