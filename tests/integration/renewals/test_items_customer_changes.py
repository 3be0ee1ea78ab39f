"""A subscription references its customer: a change of the customer (default payment method, address, tax id)
reaches the next invoice, never an issued one. On the emulators, through the API."""

from __future__ import annotations

from typing import Any

from tests.fixtures.renewals import Env, pay
from tests.helpers import T0
from tests.integration.billing.conftest import Client, customer_body
from tests.integration.renewals.test_items import P1, bill, catalog, issue, sub_doc, subscribe

STRIPE = {
    "psp": "stripe",
    "customer_ref": "cus_S",
    "payment_methods": [{"method_ref": "pm_1", "type": "card"}, {"method_ref": "pm_2", "type": "sepa_debit"}],
}


def test_the_next_renewal_charges_the_customers_current_default_and_bills_its_current_address(env: Env) -> None:
    api = Client()
    catalog()
    api.ok("POST", "/customers", customer_body(id="cus_pm", psp_accounts=[STRIPE]))
    auto: dict[str, Any] = {"customer": "cus_pm", "collection": "charge_automatically", "days_until_due": None}
    follows = subscribe("sub_follows", [("seat-eur", 1)], **auto)
    own_method = {"psp": "stripe", "customer_ref": "cus_S", "method_ref": "pm_1"}
    subscribe("sub_own", [("seat-eur", 1)], **auto, payment_method=own_method)
    assert follows["customer_id"] == "cus_pm"
    assert sub_doc("sub_follows")["payment_method"]["method_ref"] == "pm_1"  # the customer's default
    first = {d.subscription_id: d for d in bill(env, T0)}
    inv0 = issue(first["sub_follows"], T0)
    pay(inv0)
    pay(issue(first["sub_own"], T0))
    assert inv0["buyer"]["address_lines"][0] == "Unter den Linden 1"

    changed = {
        "default_payment_method": {"psp": "stripe", "method_ref": "pm_2"},
        "address": {"line1": "Friedrichstr. 2", "city": "Berlin", "postal_code": "10117"},
    }
    api.ok("POST", "/customers/cus_pm", changed)
    assert sub_doc("sub_follows")["payment_method"]["method_ref"] == "pm_2"
    assert sub_doc("sub_own")["payment_method"]["method_ref"] == "pm_1"  # its own method, not the customer's
    nxt = {d.subscription_id: d for d in bill(env, P1)}
    assert nxt["sub_follows"].payment_method is not None
    assert (nxt["sub_follows"].payment_method.method_ref, nxt["sub_follows"].payment_method.customer_ref) == (
        "pm_2",
        "cus_S",
    )
    assert nxt["sub_own"].payment_method is not None
    assert nxt["sub_own"].payment_method.method_ref == "pm_1"
    inv1 = issue(nxt["sub_follows"], P1)
    assert inv1["buyer"]["address_lines"][0] == "Friedrichstr. 2"
    assert issue(first["sub_follows"], T0)["buyer"]["address_lines"][0] == "Unter den Linden 1"  # frozen

    # A cleared default leaves the subscription with the method it had.
    api.ok("POST", "/customers/cus_pm", {"default_payment_method": None})
    assert sub_doc("sub_follows")["payment_method"]["method_ref"] == "pm_2"
