"""``Idempotency-Key`` on the emulator: replay, mismatch, concurrent requests, a failed first request."""

from __future__ import annotations

import json
import threading
from concurrent.futures import ThreadPoolExecutor

from shared.billing.customers import CreateCustomer, CustomerStore
from shared.billing.idempotency import derived_id
from tests.integration.billing.conftest import Answer, Client, customer_body


def test_same_key_same_body_replays_the_stored_answer(api: Client) -> None:
    first = api("POST", "/customers", customer_body(), key="k-1")
    assert first.status == 201
    # Same request with other key order and spacing: the stored answer, status included.
    raw = b'{"currency":"EUR",  ' + json.dumps(customer_body())[1:].encode()
    again = api.raw("POST", "/customers", raw, {"Idempotency-Key": "k-1"})
    assert (again.status, again.body) == (201, first.body)
    assert again.headers.get("Idempotent-Replayed") == "true"
    assert len(api.ok("GET", "/customers")["data"]) == 1


def test_same_key_other_request_is_refused_and_runs_nothing(api: Client) -> None:
    api.ok("POST", "/customers", customer_body(), key="k-1")
    other = api("POST", "/customers", customer_body(legal_name="Someone Else"), key="k-1")
    assert (other.status, other.body["error"]) == (422, "idempotency_key_reused")
    product = api("POST", "/products", {"name": "Pro"}, key="k-1")  # another route, same key
    assert (product.status, product.body["error"]) == (422, "idempotency_key_reused")
    assert len(api.ok("GET", "/customers")["data"]) == 1
    assert api.ok("GET", "/products")["data"] == []


def test_a_refused_first_request_stores_nothing_under_its_key(api: Client) -> None:
    price = {"product": "pro", "currency": "EUR", "pricing": {"model": "per_unit", "unit_amount": 1}}
    a = api("POST", "/prices", price, key="p")
    assert (a.status, a.body["error"]) == (422, "unknown_product")
    api.ok("POST", "/products", {"id": "pro", "name": "Pro"})
    a = api("POST", "/prices", price, key="p")
    assert a.status == 201  # the retry ran


def test_concurrent_requests_with_one_key_create_one_resource(api: Client) -> None:
    n = 8
    start = threading.Barrier(n)

    def run(_: int) -> Answer:
        start.wait()
        return api("POST", "/customers", customer_body(), key="k-par")

    with ThreadPoolExecutor(n) as pool:
        answers = list(pool.map(run, range(n)))
    created = [a for a in answers if a.status == 201]
    assert {a.status for a in answers} <= {201, 409}
    assert all(a.body["error"] == "idempotency_key_in_use" for a in answers if a.status == 409)
    assert len({a.body["id"] for a in created}) == 1
    assert len(api.ok("GET", "/customers")["data"]) == 1


def test_a_crash_after_the_write_gives_the_same_resource_on_retry(api: Client) -> None:
    """The id derives from the key: a retry after a write whose claim was never completed finds that customer."""
    body = CreateCustomer.model_validate(customer_body())
    written = CustomerStore().create(body, derived_id=derived_id("cus", "k-crash"))[1]  # the process died here
    again = api("POST", "/customers", customer_body(), key="k-crash")
    assert (again.status, again.body["id"]) == (200, written["id"])
    assert [c["id"] for c in api.ok("GET", "/customers")["data"]] == [written["id"]]


def test_bad_keys_are_400(api: Client) -> None:
    for key in ("x" * 256, "caf\u00e9"):
        a = api.raw("POST", "/customers", json.dumps(customer_body()).encode(), {"Idempotency-Key": key})
        assert (a.status, a.body["error"]) == (400, "invalid_idempotency_key")
