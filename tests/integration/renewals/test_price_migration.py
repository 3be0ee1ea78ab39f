"""A price never changes; a new price replaces it for existing subscriptions only by an explicit, previewable move.

On the emulators: the API refuses to edit a price, subscriptions keep renewing at their price after it is
archived (grandfathering), the operator previews the move (items and upcoming invoice before/after, nothing
written), applies it (API or CLI, once), and the next invoice is the first at the new price.
"""

from __future__ import annotations

import io
import json

from shared.billing.catalog import CatalogStore, CreatePrice
from tests.fixtures.renewals import Env
from tests.helpers import T0
from tests.integration.renewals.test_api import call
from tests.integration.renewals.test_items import MONTHLY, P1, P2, bill, catalog, issue, sub_doc, subscribe


def new_price(price_id: str, amount: str, currency: str = "EUR", recurring: dict[str, object] = MONTHLY) -> None:
    body = {
        "id": price_id,
        "product": "seat",
        "currency": currency,
        "recurring": recurring,
        "pricing": {"model": "per_unit", "unit_amount": amount},
    }
    CatalogStore().create_price(CreatePrice.model_validate(body))


def cli(*argv: str) -> tuple[int, dict[str, object]]:
    from shared.ops.subscriptions import main

    out = io.StringIO()
    code = main(list(argv), out=out)
    return code, json.loads(out.getvalue())


def test_an_archived_price_keeps_renewing_until_an_operator_moves_the_subscription(env: Env) -> None:
    catalog()
    subscribe("sub_mig", [("seat-eur", 2), ("support-eur", 1)])
    subscribe("sub_support", [("support-eur", 1)])
    inv0 = issue(next(d for d in bill(env, T0) if d.subscription_id == "sub_mig"), T0)
    assert inv0["subtotal"] == 2500

    # A used price is never edited: a new amount is a new price; the old one is archived.
    status, out = call("POST", "/prices/seat-eur", {"pricing": {"model": "per_unit", "unit_amount": "1200"}})
    assert (status, out["error"]) == (422, "price_immutable")
    new_price("seat-eur-2027", "1200")
    assert call("POST", "/prices/seat-eur", {"active": False})[0] == 200

    # Grandfathered: the next period is billed at the archived price.
    inv1 = issue(next(d for d in bill(env, P1) if d.subscription_id == "sub_mig"), P1)
    assert [ln["amount"] for ln in inv1["lines"]] == [2000, 500]

    # The preview of the move: items and upcoming invoice before and after; nothing written.
    stored = sub_doc("sub_mig")
    move = {"from_price": "seat-eur", "to_price": "seat-eur-2027", "dry_run": True, "at": P1.isoformat()}
    status, shown = call("POST", "/subscriptions/sub_mig/migrate-price", move)
    assert status == 200, shown
    assert [i["price"]["id"] for i in shown["after"]["items"]] == ["seat-eur-2027", "support-eur"]
    assert shown["after"]["items"][0]["quantity"] == 2
    before, after = shown["before"]["upcoming_invoice"], shown["after"]["upcoming_invoice"]
    assert (before["subtotal"]["amount"], after["subtotal"]["amount"]) == (2500, 2900)
    assert before["period_start"] == after["period_start"] == P2.isoformat().replace("+00:00", "Z")
    assert sub_doc("sub_mig") == stored
    code, listed = cli("migrate-price", "--from", "seat-eur", "--to", "seat-eur-2027", "--all", "--dry-run")
    assert code == 0
    assert [r["subscription"] for r in listed["subscriptions"]] == ["sub_mig"]  # type: ignore[attr-defined]
    assert sub_doc("sub_mig") == stored

    # Applied by the operator, once; the next invoice is the first at the new price and equals the preview.
    code, done = cli("migrate-price", "--from", "seat-eur", "--to", "seat-eur-2027", "sub_mig")
    assert code == 0
    assert done["subscriptions"][0]["migrated"] is True  # type: ignore[index]
    code, again = cli("migrate-price", "--from", "seat-eur", "--to", "seat-eur-2027", "sub_mig")
    assert (code, again["subscriptions"][0]["migrated"]) == (0, False)  # type: ignore[index]
    inv2 = issue(next(d for d in bill(env, P2) if d.subscription_id == "sub_mig"), P2)
    assert [ln["amount"] for ln in inv2["lines"]] == [2400, 500]
    assert (inv2["subtotal"], inv2["total"]) == (after["subtotal"]["amount"], after["total"]["amount"])


def test_a_price_move_is_refused_precisely(env: Env) -> None:
    catalog()
    subscribe("sub_ref", [("seat-eur", 1)])
    new_price("seat-usd", "1100", currency="USD")
    new_price("seat-yearly", "10000", recurring={"interval": "year", "interval_count": 1})
    new_price("seat-new", "1100")
    cases = [
        ({"from_price": "seat-eur", "to_price": "ghost"}, 422, "unknown_price"),
        ({"from_price": "seat-eur", "to_price": "seat-usd"}, 422, "incompatible_price"),
        ({"from_price": "seat-eur", "to_price": "seat-yearly"}, 422, "incompatible_price"),
        ({"from_price": "support-eur", "to_price": "seat-new"}, 409, "price_not_on_subscription"),
    ]
    for move, status, error in cases:
        got, out = call("POST", "/subscriptions/sub_ref/migrate-price", move)
        assert (got, out["error"]) == (status, error), move
    got, out = call("POST", "/subscriptions/ghost/migrate-price", {"from_price": "a", "to_price": "seat-new"})
    assert (got, out["error"]) == (404, "subscription_not_found")
    assert call("GET", "/subscriptions/sub_ref/migrate-price")[0] == 405
    code, out = cli("migrate-price", "--from", "seat-eur", "--to", "seat-usd", "sub_ref")
    assert (code, out["refused"]) == (1, 1)
    assert sub_doc("sub_ref")["items"][0]["price"]["id"] == "seat-eur"
