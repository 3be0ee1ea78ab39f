"""Operate customers, the catalog, coupons and credit (operator command), on the local stack or a real project.

    python -m shared.ops.billing customers create [cus-1] --legal-name "Ada GmbH" --country DE --currency EUR \\
        [--email ap@ada.example] [--zone Europe/Berlin] [--vat-id DE123456789] [--json '{...}']
    python -m shared.ops.billing customers list [--limit 20] [--starting-after CURSOR] | show cus-1
    python -m shared.ops.billing customers update cus-1 [--email ...] [--json '{"default_payment_method": {...}}']
    python -m shared.ops.billing products create [pro] --name Pro | list | show pro | update pro --name "Pro+"
    python -m shared.ops.billing prices create [ID] --product pro --currency EUR --unit-amount 1500 [--interval month]
    python -m shared.ops.billing prices create --product pro --currency EUR --json '{"pricing": {"model": ...}}'
    python -m shared.ops.billing prices list [--product pro] | show ID | deactivate ID
    python -m shared.ops.billing coupons create [spring] (--percent-off 10 | --amount-off 500 --currency EUR) \\
        [--duration once|repeating|forever] [--periods 3] [--max-redemptions 100] [--redeem-by T]
    python -m shared.ops.billing promotion-codes create SPRING26 --coupon spring [--max-redemptions 50] | list | show
    python -m shared.ops.billing credit grant cus-1 --amount 500 [--reason goodwill]   # customer's currency
    python -m shared.ops.billing credit balance cus-1                                  # balance and its entries
    python -m shared.ops.billing credit reverse cus-1 --entry grant_... [--reason "given by mistake"]
    python -m shared.ops.billing credit note in_3f2a... [--amount 500] --reason "goodwill" [--key K]  # to the balance

Commands validate with the API's own request models and call the same stores the function runs (Firestore with
the caller's credentials; ``FIRESTORE_EMULATOR_HOST`` honoured). ``--json`` adds any other field of the request
(the API reference: ``GET /openapi.json``). Exit 0 with the JSON answer, 1 refused by the rules, 2 invalid input.
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any, TextIO

RESOURCES = ("customers", "products", "prices", "coupons", "promotion-codes")
ACTIONS = {"customers": ("update",), "products": ("update",), "prices": ("deactivate",)}  # beyond create/list/show


def _body(a: argparse.Namespace, **fields: Any) -> dict[str, Any]:
    body = {k: v for k, v in fields.items() if v is not None}
    if a.json:
        extra = json.loads(a.json)
        if not isinstance(extra, dict):
            raise ValueError("--json must be a JSON object")
        body |= extra
    return body


def _page(a: argparse.Namespace) -> Any:
    from shared.billing.pagination import PageRequest

    return PageRequest(limit=a.limit, cursor=a.starting_after)


def _customers(a: argparse.Namespace, svc: Any) -> Any:
    from shared.billing.customers import CreateCustomer

    if a.action == "create":
        tax_ids = [{"type": "eu_vat", "value": a.vat_id}] if a.vat_id else None
        body = _body(
            a,
            id=a.id,
            legal_name=a.legal_name,
            country=a.country,
            currency=a.currency,
            invoice_email=a.email,
            time_zone=a.zone,
            tax_ids=tax_ids,
        )
        status, out = svc.customers.create(CreateCustomer.model_validate(body))
        return {"http_status": status, **out}
    if a.action == "list":
        return svc.customers.list(_page(a)).body()
    if a.action == "update":
        from shared.billing.customers import UpdateCustomer

        update = UpdateCustomer.model_validate(
            _body(a, legal_name=a.legal_name, country=a.country, invoice_email=a.email, time_zone=a.zone)
        )
        return svc.customers.update(a.id, update, frozenset(update.model_fields_set))
    return svc.customers.show(a.id)


def _products(a: argparse.Namespace, svc: Any) -> Any:
    from shared.billing.catalog import CreateProduct

    if a.action == "create":
        status, out = svc.catalog.create_product(CreateProduct.model_validate(_body(a, id=a.id, name=a.name)))
        return {"http_status": status, **out}
    if a.action == "list":
        return svc.catalog.list_products(_page(a)).body()
    if a.action == "update":
        from shared.billing.catalog import UpdateProduct

        body = UpdateProduct.model_validate(_body(a, name=a.name))
        return svc.catalog.update_product(a.id, body, frozenset(body.model_fields_set))
    return svc.catalog.show_product(a.id)


def _prices(a: argparse.Namespace, svc: Any) -> Any:
    from shared.billing.catalog import CreatePrice, UpdatePrice

    if a.action == "create":
        pricing = {"model": "per_unit", "unit_amount": a.unit_amount} if a.unit_amount is not None else None
        recurring = {"interval": a.interval, "interval_count": a.count} if a.interval else None
        body = _body(a, id=a.id, product=a.product, currency=a.currency, pricing=pricing, recurring=recurring)
        status, out = svc.catalog.create_price(CreatePrice.model_validate(body))
        return {"http_status": status, **out}
    if a.action == "list":
        return svc.catalog.list_prices(_page(a), product=a.product).body()
    if a.action == "deactivate":
        return svc.catalog.update_price(a.id, UpdatePrice(active=False), frozenset({"active"}))
    return svc.catalog.show_price(a.id)


def _coupons(a: argparse.Namespace, svc: Any) -> Any:
    from shared.billing.coupons import CreateCoupon

    if a.action == "create":
        amount_off = {"amount": a.amount_off, "currency": a.currency} if a.amount_off is not None else None
        body = _body(
            a,
            id=a.id,
            percent_off=a.percent_off,
            amount_off=amount_off,
            duration=a.duration,
            duration_in_periods=a.periods,
            max_redemptions=a.max_redemptions,
            redeem_by=a.redeem_by,
        )
        status, out = svc.coupons.create_coupon(CreateCoupon.model_validate(body))
        return {"http_status": status, **out}
    if a.action == "list":
        return svc.coupons.list_coupons(_page(a)).body()
    return svc.coupons.show_coupon(a.id)


def _codes(a: argparse.Namespace, svc: Any) -> Any:
    from shared.billing.coupons import CreatePromotionCode

    if a.action == "create":
        body = _body(a, code=a.id, coupon=a.coupon, max_redemptions=a.max_redemptions, expires_at=a.expires_at)
        status, out = svc.coupons.create_code(CreatePromotionCode.model_validate(body))
        return {"http_status": status, **out}
    if a.action == "list":
        return svc.coupons.list_codes(_page(a), coupon=a.coupon).body()
    return svc.coupons.show_code(a.id)


def _credit(a: argparse.Namespace, svc: Any) -> Any:
    from shared.billing.credit import CreateCreditGrant

    if a.action == "grant":
        currency = svc.customers.get(a.customer).currency
        body = CreateCreditGrant.model_validate(
            {"amount": {"amount": a.amount, "currency": currency}, "reason": a.reason}
        )
        status, out = svc.credit.grant(a.customer, body)
        return {"http_status": status, **out}
    if a.action == "note":
        return _credit_note(a, svc)
    if a.action == "reverse":
        if not a.entry:
            raise ValueError("credit reverse needs --entry (the balance entry's id)")
        return svc.credit.reverse(a.customer, a.entry, reason=a.reason)
    balance = svc.credit.balance(a.customer)
    entries = svc.credit.list_entries(a.customer, _page(a)).body()
    return {"customer": a.customer, "balance": {"amount": balance.amount, "currency": balance.currency}, **entries}


def _credit_note(a: argparse.Namespace, svc: Any) -> Any:
    """A credit note on a paid invoice, credited to the customer's balance. Without ``--key`` the key derives from
    the invoice, amount and reason, so re-running the command after a crash issues nothing twice."""
    import hashlib

    from shared.billing.credit import CreateCreditNote
    from shared.billing.deps import BillingError
    from shared.invoicing.repository import INVOICES

    if not a.reason:
        raise ValueError("credit note needs --reason (it is printed on the note)")
    invoice_id = a.customer
    inv = svc.deps.db().collection(INVOICES).document(invoice_id).get().to_dict()
    if inv is None:
        raise BillingError(404, "invoice_not_found", invoice_id)
    amount = {"amount": a.amount, "currency": inv["currency"]} if a.amount is not None else None
    body = CreateCreditNote.model_validate({"amount": amount, "reason": a.reason})
    key = a.key or hashlib.sha256(f"{invoice_id}|{a.amount}|{a.reason}".encode()).hexdigest()[:32]
    status, out = svc.credit.credit_invoice(invoice_id, body, key=key)
    return {"http_status": status, **out}


def _parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(prog="python -m shared.ops.billing", description=__doc__)
    sub = ap.add_subparsers(dest="resource", required=True)
    for name in RESOURCES:
        r = sub.add_parser(name, help=f"create, list or show {name}")
        r.add_argument("action", choices=["create", "list", "show", *ACTIONS.get(name, ())])
        r.add_argument("id", nargs="?", help="the id (show; optional for create). Promotion codes: the code")
        r.add_argument("--json", help="more fields of the request, as a JSON object")
        r.add_argument("--limit", type=int, default=20)
        r.add_argument("--starting-after")
        if name == "customers":
            r.add_argument("--legal-name")
            r.add_argument("--country")
            r.add_argument("--currency")
            r.add_argument("--email")
            r.add_argument("--zone")
            r.add_argument("--vat-id")
        elif name == "products":
            r.add_argument("--name")
        elif name == "prices":
            r.add_argument("--product")
            r.add_argument("--currency")
            r.add_argument("--unit-amount", help="decimal minor units per unit (a string: '1500', '0.05')")
            r.add_argument("--interval", choices=["day", "week", "month", "year"])
            r.add_argument("--count", type=int, default=1)
        elif name == "coupons":
            r.add_argument("--percent-off")
            r.add_argument("--amount-off", type=int, help="minor units")
            r.add_argument("--currency")
            r.add_argument("--duration", choices=["once", "repeating", "forever"])
            r.add_argument("--periods", type=int)
            r.add_argument("--max-redemptions", type=int)
            r.add_argument("--redeem-by", help="RFC 3339, e.g. 2026-12-31T23:59:59Z")
        else:
            r.add_argument("--coupon")
            r.add_argument("--max-redemptions", type=int)
            r.add_argument("--expires-at")
    c = sub.add_parser("credit", help="grant credit, show a balance, credit an invoice to the balance")
    c.add_argument("action", choices=["grant", "balance", "note", "reverse"])
    c.add_argument("customer", help="the customer (grant, balance) or the paid invoice (note)")
    c.add_argument("--amount", type=int, help="minor units of the customer's (note: the invoice's) currency")
    c.add_argument("--reason")
    c.add_argument("--key", help="note: idempotency key (default: from invoice, amount and reason)")
    c.add_argument("--entry", help="reverse: the balance entry to reverse (its credit must be unspent)")
    c.add_argument("--limit", type=int, default=100)
    c.add_argument("--starting-after")
    return ap


HANDLERS = {
    "customers": _customers,
    "products": _products,
    "prices": _prices,
    "coupons": _coupons,
    "promotion-codes": _codes,
    "credit": _credit,
}


def main(argv: list[str] | None = None, out: TextIO = sys.stdout, service: Any = None) -> int:
    from pydantic import ValidationError

    from shared.billing.api import BillingService
    from shared.billing.deps import BillingError
    from shared.edge import EdgeError

    ap = _parser()
    a = ap.parse_args(argv)
    if a.action in ("show", "deactivate", "update") and not getattr(a, "id", "x"):
        ap.error(f"{a.action} needs an id")
    try:
        result = HANDLERS[a.resource](a, service or BillingService())
    except ValidationError as exc:
        detail = exc.errors(include_url=False, include_context=False, include_input=False)
        print(json.dumps({"error": "invalid_request", "detail": detail}, default=str), file=out)
        return 2
    except ValueError as exc:
        print(json.dumps({"error": "invalid_request", "detail": str(exc)}), file=out)
        return 2
    except (BillingError, EdgeError) as exc:
        print(json.dumps({"error": exc.code, "detail": exc.detail}, default=str), file=out)
        return 1
    print(json.dumps(result, indent=2, default=str), file=out)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
