"""Products and prices on the emulator: references checked, prices immutable once created, several currencies."""

from __future__ import annotations

from typing import Any

from shared.billing.catalog import CatalogStore
from tests.integration.billing.conftest import Client

GRADUATED = {
    "model": "graduated",
    "tiers": [{"up_to": 5, "unit_amount": 700}, {"up_to": 10, "unit_amount": "650"}, {"unit_amount": 600}],
}


def price_body(**over: Any) -> dict[str, Any]:
    body = {
        "product": "pro",
        "currency": "EUR",
        "recurring": {"interval": "month"},
        "pricing": {"model": "per_unit", "unit_amount": "1500"},
    }
    return body | over


def test_a_product_has_prices_in_several_currencies(api: Client) -> None:
    assert api("POST", "/products", {"id": "pro", "name": "Pro"}).status == 201
    eur = api.ok("POST", "/prices", price_body())
    jpy = api.ok("POST", "/prices", price_body(currency="JPY", pricing={"model": "per_unit", "unit_amount": 2000}))
    kwd = api.ok("POST", "/prices", price_body(currency="KWD", pricing=GRADUATED))
    listed = api.ok("GET", "/prices?product=pro")["data"]
    assert {p["currency"] for p in listed} == {"EUR", "JPY", "KWD"}
    assert kwd["pricing"]["tiers"][1]["unit_amount"] == "650"  # decimals are strings, never floats
    assert CatalogStore().price(jpy["id"]).pricing.model == "per_unit"  # the domain's model, read back
    assert eur["product"] == "pro"


def test_a_price_names_an_existing_product_and_a_valid_currency(api: Client) -> None:
    a = api("POST", "/prices", price_body(product="ghost"))
    assert (a.status, a.body["error"]) == (422, "unknown_product")
    api.ok("POST", "/products", {"id": "pro", "name": "Pro"})
    for bad in ({"currency": "XXY"}, {"currency": "eur"}, {"pricing": {"model": "per_unit", "unit_amount": 1.5}}):
        a = api("POST", "/prices", price_body(**bad))
        assert (a.status, a.body["error"]) == (422, "invalid_request"), bad
    assert api.ok("GET", "/prices")["data"] == []


def test_a_price_never_changes_its_amount_but_can_be_deactivated(api: Client) -> None:
    api.ok("POST", "/products", {"id": "pro", "name": "Pro"})
    price = api.ok("POST", "/prices", price_body(id="pro-eur"))
    for change in (
        {"pricing": {"model": "per_unit", "unit_amount": "1600"}},
        {"currency": "USD"},
        {"recurring": {"interval": "year"}},
        {"active": False, "pricing": GRADUATED},
    ):
        a = api("POST", "/prices/pro-eur", change)
        assert (a.status, a.body["error"]) == (422, "price_immutable"), change
    assert api.ok("GET", "/prices/pro-eur") == price
    out = api.ok("POST", "/prices/pro-eur", {"active": False, "nickname": "2025 list price"})
    assert (out["active"], out["nickname"], out["pricing"]) == (False, "2025 list price", price["pricing"])
    assert api("POST", "/prices/missing", {"active": False}).status == 404


def test_products_are_renamed_and_archived(api: Client) -> None:
    api.ok("POST", "/products", {"id": "pro", "name": "Pro"})
    out = api.ok("POST", "/products/pro", {"name": "Pro 2", "active": False})
    assert (out["name"], out["active"]) == ("Pro 2", False)
    a = api("POST", "/products/pro", {"name": None})
    assert (a.status, a.body["error"]) == (422, "invalid_request")
