"""The billing operator command on the emulator: the same stores as the API."""

from __future__ import annotations

import io
import json
from typing import Any

from shared.ops.billing import main
from tests.integration.billing.conftest import Client


def run(*argv: str) -> tuple[int, Any]:
    buf = io.StringIO()
    code = main(list(argv), out=buf)
    return code, json.loads(buf.getvalue())


def test_operator_manages_customers_catalog_coupons_and_credit(api: Client) -> None:
    code, c = run("customers", "create", "cus-ops", "--legal-name", "Ada GmbH", "--country", "DE",
                  "--currency", "EUR", "--vat-id", "DE123456789", "--zone", "Europe/Berlin")  # fmt: skip
    assert (code, c["http_status"], c["id"], c["tax_ids"][0]["value"]) == (0, 201, "cus-ops", "DE123456789")
    assert run("customers", "show", "cus-ops")[1]["legal_name"] == "Ada GmbH"
    assert [x["id"] for x in run("customers", "list")[1]["data"]] == ["cus-ops"]
    assert run("products", "create", "pro", "--name", "Pro")[0] == 0
    code, p = run("prices", "create", "pro-eur", "--product", "pro", "--currency", "EUR", "--unit-amount", "1500",
                  "--interval", "month")  # fmt: skip
    assert (code, p["pricing"], p["recurring"]["interval"]) == (
        0,
        {"model": "per_unit", "unit_amount": "1500"},
        "month",
    )
    assert run("prices", "deactivate", "pro-eur")[1]["active"] is False
    assert run("prices", "list", "--product", "pro")[1]["data"][0]["id"] == "pro-eur"
    code, cp = run("coupons", "create", "spring", "--percent-off", "10", "--max-redemptions", "5")
    assert (code, cp["percent_off"], cp["max_redemptions"]) == (0, "10", 5)
    assert run("promotion-codes", "create", "SPRING26", "--coupon", "spring")[1]["coupon"] == "spring"
    assert run("promotion-codes", "show", "spring26")[1]["id"] == "SPRING26"
    code, g = run("credit", "grant", "cus-ops", "--amount", "700", "--reason", "goodwill")
    assert (code, g["amount"]) == (0, {"amount": 700, "currency": "EUR"})
    code, b = run("credit", "balance", "cus-ops")
    assert (code, b["balance"], len(b["data"])) == (0, {"amount": 700, "currency": "EUR"}, 1)
    assert api.ok("GET", "/customers/cus-ops")["balance"]["amount"] == 700  # the API sees the same records


def test_operator_errors_are_reported_with_their_code(api: Client) -> None:
    assert run("prices", "create", "--product", "ghost", "--currency", "EUR", "--unit-amount", "1") == (
        1,
        {"error": "unknown_product", "detail": "no product 'ghost'"},
    )
    code, out = run("customers", "create", "--legal-name", "X", "--country", "DE", "--currency", "EURO")
    assert (code, out["error"]) == (2, "invalid_request")
    assert run("customers", "show", "ghost")[0] == 1


def test_operator_updates_customers_and_products_and_reverses_a_grant(api: Client) -> None:
    run("customers", "create", "cus-up", "--legal-name", "Ada GmbH", "--country", "DE", "--currency", "EUR")
    code, c = run("customers", "update", "cus-up", "--email", "ap@ada.example", "--json", '{"tax_exempt": true}')
    assert (code, c["invoice_email"], c["tax_exempt"], c["currency"]) == (0, "ap@ada.example", True, "EUR")
    code, out = run("customers", "update", "cus-up", "--json", '{"currency": "USD"}')
    assert (code, out["error"]) == (2, "invalid_request")  # the currency never changes
    run("products", "create", "pro", "--name", "Pro")
    assert run("products", "update", "pro", "--name", "Pro+")[1]["name"] == "Pro+"
    code, g = run("credit", "grant", "cus-up", "--amount", "300", "--reason", "by mistake")
    code, r = run("credit", "reverse", "cus-up", "--entry", g["id"], "--reason", "given by mistake")
    assert (code, r["kind"], r["amount"]["amount"], r["reverses"]) == (0, "reversal", -300, g["id"])
    assert run("credit", "balance", "cus-up")[1]["balance"]["amount"] == 0
    assert run("credit", "reverse", "cus-up", "--entry", "ghost")[1]["error"] == "balance_entry_not_found"
