"""The credit balance on the emulator: immutable entries, never applied twice, never negative, under parallel
applications and redeliveries."""

from __future__ import annotations

import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from shared.billing.credit import CreditStore
from shared.domain.credit import CreditEntry, check_ledger
from shared.domain.money import Money
from tests.integration.billing.conftest import Client, customer_body

EUR = "EUR"


def _customer(api: Client, cid: str = "cus-1", currency: str = EUR) -> None:
    api.ok("POST", "/customers", customer_body(id=cid, currency=currency))


def _ledger(api: Client, cid: str) -> list[dict[str, Any]]:
    out, cursor = [], None
    while True:
        page = api.ok(
            "GET", f"/customers/{cid}/balance_entries?limit=100" + (f"&starting_after={cursor}" if cursor else "")
        )
        out += page["data"]
        if not page["has_more"]:
            return out
        cursor = page["next_cursor"]


def _parallel(n: int, fn: Callable[[int], Any]) -> list[Any]:
    start = threading.Barrier(n)

    def run(i: int) -> Any:
        start.wait()
        return fn(i)

    with ThreadPoolExecutor(n) as pool:
        return list(pool.map(run, range(n)))


def test_grant_apply_reverse_and_the_balance_is_the_sum(api: Client) -> None:
    _customer(api)
    g = api(
        "POST", "/customers/cus-1/credit_grants", {"amount": {"amount": 5000, "currency": EUR}, "reason": "goodwill"}
    )
    assert g.status == 201
    assert g.body["balance_after"] == {"amount": 5000, "currency": EUR}
    store = CreditStore()
    assert store.apply_credit("cus-1", "in_1", Money(3000, EUR)) == Money(3000, EUR)
    assert store.apply_credit("cus-1", "in_2", Money(3000, EUR)) == Money(2000, EUR)  # capped at the balance
    assert store.apply_credit("cus-1", "in_3", Money(3000, EUR)) == Money(0, EUR)
    assert store.credit_from_note("cus-1", "cn_1", Money(700, EUR)) == Money(700, EUR)
    assert store.credit_from_note("cus-1", "cn_1", Money(700, EUR)) == Money(700, EUR)  # redelivered: once
    r = api("POST", "/customers/cus-1/balance_entries/application:in_2/reversal", {"reason": "invoice voided"})
    assert (r.status, r.body["amount"]) == (201, {"amount": 2000, "currency": EUR})
    assert store.apply_credit("cus-1", "in_2", Money(3000, EUR)) == Money(0, EUR)  # a void is final
    assert api.ok("GET", "/customers/cus-1")["balance"] == {"amount": 2700, "currency": EUR}
    entries = _ledger(api, "cus-1")
    assert sorted(e["kind"] for e in entries) == ["application", "application", "credit_note", "grant", "reversal"]
    assert sum(e["amount"]["amount"] for e in entries) == 2700


def test_grants_are_refused_precisely(api: Client) -> None:
    _customer(api)
    cases = [
        ("/customers/ghost/credit_grants", {"amount": {"amount": 1, "currency": EUR}}, 404, "customer_not_found"),
        ("/customers/cus-1/credit_grants", {"amount": {"amount": 1, "currency": "USD"}}, 422, "currency_mismatch"),
        ("/customers/cus-1/credit_grants", {"amount": {"amount": 0, "currency": EUR}}, 422, "invalid_amount"),
        ("/customers/cus-1/credit_grants", {"amount": {"amount": -5, "currency": EUR}}, 422, "invalid_request"),
    ]
    for path, body, status, code in cases:
        a = api("POST", path, body)
        assert (a.status, a.body["error"]) == (status, code), body
    api.ok("POST", "/customers/cus-1/credit_grants", {"amount": {"amount": 100, "currency": EUR}})
    CreditStore().apply_credit("cus-1", "in_1", Money(100, EUR))
    grant = next(e for e in _ledger(api, "cus-1") if e["kind"] == "grant")
    a = api("POST", f"/customers/cus-1/balance_entries/{grant['id']}/reversal", {})
    assert (a.status, a.body["error"]) == (409, "not_reversible")  # its credit is spent


def test_parallel_applications_never_exceed_the_balance(api: Client) -> None:
    _customer(api)
    api.ok("POST", "/customers/cus-1/credit_grants", {"amount": {"amount": 10_000, "currency": EUR}})
    store = CreditStore()
    applied = _parallel(12, lambda i: store.apply_credit("cus-1", f"in_{i}", Money(1_500, EUR)).amount)
    assert sum(applied) == 10_000  # 6 invoices fully, one partly (1000), the rest nothing
    assert sorted(applied) == [0] * 5 + [1_000] + [1_500] * 6
    assert store.balance("cus-1") == Money(0, EUR)
    _check(api, "cus-1")


def test_parallel_and_redelivered_applications_of_one_invoice_apply_once(api: Client) -> None:
    _customer(api)
    api.ok("POST", "/customers/cus-1/credit_grants", {"amount": {"amount": 1_000, "currency": EUR}})
    store = CreditStore()
    applied = _parallel(10, lambda i: store.apply_credit("cus-1", "in_1", Money(600, EUR)).amount)
    assert applied == [600] * 10
    assert store.apply_credit("cus-1", "in_1", Money(600, EUR)) == Money(600, EUR)  # a late redelivery
    assert store.balance("cus-1") == Money(400, EUR)
    assert [e["kind"] for e in _ledger(api, "cus-1")].count("application") == 1
    _check(api, "cus-1")


def test_credit_in_another_currency_pays_nothing(api: Client) -> None:
    _customer(api)
    api.ok("POST", "/customers/cus-1/credit_grants", {"amount": {"amount": 1_000, "currency": EUR}})
    assert CreditStore().apply_credit("cus-1", "in_usd", Money(600, "USD")) == Money(0, "USD")


def _check(api: Client, cid: str) -> None:
    """The stored ledger in write order holds the domain's invariants and sums to the balance."""
    from shared import clients

    snaps = clients.firestore().collection("customers").document(cid).collection("balance_entries").order_by("seq")
    entries = [CreditEntry.model_validate((s.to_dict() or {})["entry"]) for s in snaps.stream()]
    check_ledger(entries, EUR)
    assert sum(e.amount.amount for e in entries) == CreditStore().balance(cid).amount
