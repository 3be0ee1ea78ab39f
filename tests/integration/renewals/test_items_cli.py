"""The operator's commands for subscriptions with items, and the paginated list of subscriptions (API and CLI)."""

from __future__ import annotations

import io
import json
from typing import Any

import pytest

from shared.billing.coupons import CouponStore
from shared.subscriptions.service import SubscriptionService
from tests.fixtures.renewals import Env
from tests.helpers import T0
from tests.integration.renewals.test_api import call
from tests.integration.renewals.test_items import catalog, subscribe


def run(*argv: str) -> tuple[int, Any]:
    from shared.ops.subscriptions import main

    out = io.StringIO()
    code = main(list(argv), out=out)
    return code, json.loads(out.getvalue())


def test_operator_creates_changes_discounts_and_lists_subscriptions_with_items(env: Env) -> None:
    from shared.ops.subscriptions import set_clock

    catalog(coupon={"id": "ten", "percent_off": "10", "duration": "forever"})
    set_clock(T0)
    code, s = run("create-items", "sub_cli", "--customer", "cus_items", "--seller", "acme-de",
                  "--item", "seat-eur:3", "--item", "support-eur:1", "--days-until-due", "30", "--clock")  # fmt: skip
    assert (code, s["http_status"], s["collection"], s["days_until_due"]) == (0, 201, "send_invoice", 30)
    assert [(i["price"]["id"], i["quantity"]) for i in s["items"]] == [("seat-eur", 3), ("support-eur", 1)]
    code, s = run("items", "sub_cli", "--item", "seat-eur:5", "--item", "support-eur:1", "--clock")
    assert (code, s["items"][0]["quantity"]) == (0, 5)
    code, s = run("discount", "sub_cli", "--coupon", "ten", "--clock")
    assert (code, [d["coupon"]["id"] for d in s["discounts"]]) == (0, ["ten"])
    assert CouponStore().show_coupon("ten")["times_redeemed"] == 1
    assert run("discount", "sub_cli", "--coupon", "ghost")[1]["error"] == "unknown_coupon"
    with pytest.raises(SystemExit) as bad:  # PRICE:QUANTITY
        run("create-items", "x", "--customer", "cus_items", "--seller", "acme-de", "--item", "seat-eur")
    assert bad.value.code == 2

    subscribe("sub_b", [("seat-eur", 1)])
    subscribe("sub_c", [("support-eur", 1)])
    code, first = run("list", "--customer", "cus_items", "--limit", "2")
    assert (code, first["has_more"], len(first["data"])) == (0, True, 2)
    code, rest = run("list", "--customer", "cus_items", "--starting-after", first["next_cursor"])
    seen = [x["id"] for x in first["data"] + rest["data"]]
    assert sorted(seen) == ["sub_b", "sub_c", "sub_cli"]  # each exactly once
    assert rest["has_more"] is False


def test_the_subscriptions_list_is_cursor_paginated_over_http(env: Env) -> None:
    catalog()
    for i in range(5):
        subscribe(f"sub_l{i}", [("seat-eur", 1 + i)])
    page: dict[str, Any] = {"next_cursor": None}
    seen: list[str] = []
    while True:
        q = "/subscriptions?customer=cus_items&limit=2" + (
            f"&starting_after={page['next_cursor']}" if page["next_cursor"] else ""
        )
        status, page = call("GET", q)
        assert status == 200, page
        seen += [x["id"] for x in page["data"]]
        if not page["has_more"]:
            break
    assert sorted(seen) == [f"sub_l{i}" for i in range(5)]
    assert len(seen) == 5
    assert call("GET", "/subscriptions?customer=nobody")[1]["data"] == []
    assert call("GET", "/subscriptions?limit=0")[0] == 400
    assert call("GET", "/subscriptions?starting_after=junk")[0] == 400
    status, cursor_page = call("GET", "/subscriptions?customer=cus_items&limit=1")
    other = call("GET", f"/subscriptions?customer=other&starting_after={cursor_page['next_cursor']}")
    assert other[0] == 400  # a cursor is valid for its own list only
    assert SubscriptionService().get("sub_l0")["id"] == "sub_l0"
