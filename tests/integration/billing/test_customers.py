"""Customers through the API on the emulator: stored as their own documents, validated, referenced by invoices."""

from __future__ import annotations

from typing import Any

from shared.billing.customers import CustomerStore
from tests.integration.billing.conftest import Client, customer_body


def test_a_customer_is_created_shown_and_frozen_as_an_invoice_buyer(api: Client) -> None:
    created = api("POST", "/customers", customer_body())
    assert created.status == 201, created.body
    c = created.body
    assert c["id"].startswith("cus_")
    assert c["tax_ids"] == [{"type": "eu_vat", "value": "DE123456789"}]  # normalised
    assert c["balance"] == {"amount": 0, "currency": "EUR"}
    assert api.ok("GET", f"/customers/{c['id']}") == c
    stored = CustomerStore().get(c["id"])
    party = stored.party()
    assert (party.name, party.country, party.vat_id, party.email) == (
        "Ada Lovelace GmbH",
        "DE",
        "DE123456789",
        "billing@ada.example",
    )
    assert party.address_lines == ("Unter den Linden 1", "10117 Berlin")
    pm = stored.default_payment_method()
    assert pm is not None
    assert (pm.psp, pm.customer_ref, pm.method_ref) == ("stripe", "cus_X", "pm_1")


def test_customer_fields_are_validated_precisely(api: Client) -> None:
    cases: dict[str, dict[str, Any]] = {
        "bad vat id": {"tax_ids": [{"type": "eu_vat", "value": "DE12345"}]},
        "unknown zone": {"time_zone": "Mars/Olympus"},
        "unknown currency": {"currency": "XXY"},
        "bad email": {"invoice_email": "nobody"},
        "default not stored": {"default_payment_method": {"psp": "stripe", "method_ref": "pm_2"}},
        "lowercase country": {"country": "de"},
    }
    for what, over in cases.items():
        a = api("POST", "/customers", customer_body(**over))
        assert (a.status, a.body["error"]) == (422, "invalid_request"), what
    a = api("POST", "/customers", customer_body(psp_accounts=[{"psp": "nopsp"}], default_payment_method=None))
    assert (a.status, a.body["error"]) == (422, "unknown_psp")
    assert api.ok("GET", "/customers")["data"] == []


def test_update_replaces_given_fields_and_never_the_currency(api: Client) -> None:
    c = api.ok("POST", "/customers", customer_body(id="cus-1"))
    out = api.ok("POST", "/customers/cus-1", {"invoice_email": "ap@ada.example", "tax_exempt": True})
    assert (out["invoice_email"], out["tax_exempt"], out["legal_name"]) == ("ap@ada.example", True, c["legal_name"])
    a = api("POST", "/customers/cus-1", {"currency": "USD"})
    assert (a.status, a.body["error"]) == (422, "invalid_request")
    a = api("POST", "/customers/cus-1", {"psp_accounts": []})  # the default method would dangle
    assert (a.status, a.body["error"]) == (422, "invalid_request")
    assert api("POST", "/customers/nope", {"tax_exempt": True}).status == 404


def test_an_explicit_id_is_created_once(api: Client) -> None:
    assert api("POST", "/customers", customer_body(id="cus-7")).status == 201
    assert api("POST", "/customers", customer_body(id="cus-7")).status == 200
    a = api("POST", "/customers", customer_body(id="cus-7", legal_name="Other"))
    assert (a.status, a.body["error"]) == (409, "resource_exists")
