"""Operate subscriptions and renewals (operator command), on the local stack or a real project.

    python -m shared.ops.subscriptions create sub_42 --customer cus-42 --country DE --seller acme-de \\
        --amount 1500 --currency EUR --interval month --zone Europe/Berlin --psp stripe --method pm_card_visa
    python -m shared.ops.subscriptions create-items sub_43 --customer cus-1 --seller acme-de --item seat-eur:3 \
        [--item support-eur:1] [--coupon spring | --promotion-code SPRING26] [--days-until-due 30] [--clock]
    python -m shared.ops.subscriptions items sub_43 --item seat-eur:5 --item support-eur:1 [--clock]  # prorated
    python -m shared.ops.subscriptions discount sub_43 (--coupon spring | --promotion-code SPRING26)
    python -m shared.ops.subscriptions list [--customer cus-1] [--limit 20] [--starting-after CURSOR]
    python -m shared.ops.subscriptions clock show|set 2026-01-31T09:00:00Z|advance --days 1 --hours 2
    python -m shared.ops.subscriptions tick [--clock | --now 2026-02-01T09:00:00Z]   # fan-out billing tick
    python -m shared.ops.subscriptions show sub_42        # the subscription, its charge attempts, invoices
    python -m shared.ops.subscriptions cancel sub_42 [--at-period-end]
    python -m shared.ops.subscriptions migrate sub_42 [--dry-run]   # plan lines -> catalog items (before/after)
    python -m shared.ops.subscriptions preview sub_42 [--clock]     # the upcoming invoice, no side effect
    python -m shared.ops.subscriptions migrate-price --from pro-eur --to pro-eur-2027 (sub_42 ... | --all) [--dry-run]

Commands call the same service code the functions run (Firestore and Pub/Sub with the caller's
credentials; ``*_EMULATOR_HOST`` honoured). The test clock is a Firestore document
(``renewals_test_clock/default``); a tick carrying an explicit ``now`` is only honoured by a renewals
function deployed with ``RENEWALS_ALLOW_TEST_CLOCK=1`` (never in production). ``tick`` without
``--clock``/``--now`` is exactly what Cloud Scheduler publishes: renewals uses the publish time.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import sys
from typing import TYPE_CHECKING, Any, TextIO

if TYPE_CHECKING:
    from shared.events.publisher import Publisher

CLOCK = ("renewals_test_clock", "default")


def _parse_time(raw: str) -> dt.datetime:
    t = dt.datetime.fromisoformat(raw.replace("Z", "+00:00"))
    if t.tzinfo is None:
        raise argparse.ArgumentTypeError(f"{raw!r} needs a time zone (e.g. a trailing Z)")
    return t.astimezone(dt.UTC)


def _iso(t: dt.datetime) -> str:
    return t.astimezone(dt.UTC).isoformat().replace("+00:00", "Z")


def clock_now() -> dt.datetime | None:
    from shared import clients

    snap = clients.firestore().collection(CLOCK[0]).document(CLOCK[1]).get()
    d = snap.to_dict() or {}
    t = d.get("now")
    return t.astimezone(dt.UTC) if isinstance(t, dt.datetime) else None


def set_clock(t: dt.datetime) -> dt.datetime:
    from shared import clients

    clients.firestore().collection(CLOCK[0]).document(CLOCK[1]).set({"now": t})
    return t


def publish_tick(now: dt.datetime | None, publisher: Publisher | None = None) -> str:
    """A fan-out tick on billing-ticks; ``now`` only when driving the test clock."""
    from shared.events.publisher import RawMessage, default_publisher

    body = json.dumps({"now": _iso(now)} if now else {}).encode()
    attrs = {"event_type": "billing.tick", "producer": "ops"}
    return (publisher or default_publisher()).publish_raw([RawMessage("billing-ticks", body, attrs)])[0]


def show(sub_id: str) -> dict[str, Any]:
    from google.cloud.firestore_v1.base_query import FieldFilter

    from shared import clients
    from shared.subscriptions import service

    out = service.SubscriptionService().get(sub_id, with_attempts=True)
    q = clients.firestore().collection("invoices").where(filter=FieldFilter("subscription_id", "==", sub_id))
    keep = ("number", "status", "total", "amount_due", "period_start", "period_end", "finalized_at", "paid_at")
    out["invoices"] = service._iso(
        [{"id": s.id, **{k: v for k, v in (s.to_dict() or {}).items() if k in keep}} for s in q.stream()]
    )
    return out


def _create(a: argparse.Namespace) -> dict[str, Any]:
    from shared.subscriptions import commands, service

    body: dict[str, Any] = {
        "subscription_id": a.id,
        "customer": {"id": a.customer, "name": a.name or a.customer, "country": a.country},
        "seller_entity": a.seller,
        "plan": {
            "id": a.plan,
            "currency": a.currency,
            "interval": a.interval,
            "interval_count": a.count,
            "lines": [{"description": a.plan, "unit_amount": {"amount": a.amount, "currency": a.currency}}],
        },
        "anchor_zone": a.zone,
        "trial_days": a.trial_days,
        "collection": a.collection,
    }
    if a.method:
        body["payment_method"] = {"psp": a.psp, "customer_ref": a.psp_customer, "method_ref": a.method}
    start = a.start_at or (clock_now() if a.clock else None)
    if start is not None:
        body["start_at"] = _iso(start)
    status, out = service.SubscriptionService().create(commands.CreateSubscription.model_validate(body))
    return {"http_status": status, **out}


def _item(raw: str) -> dict[str, Any]:
    price, _, qty = raw.rpartition(":")
    if not price or not qty.isdigit():
        raise argparse.ArgumentTypeError(f"{raw!r}: expected PRICE:QUANTITY, e.g. seat-eur:3")
    return {"price": price, "quantity": int(qty)}


def _discount(a: argparse.Namespace) -> dict[str, Any] | None:
    if a.coupon and a.promotion_code:
        raise ValueError("give --coupon or --promotion-code, not both")
    if a.coupon:
        return {"coupon": a.coupon}
    return {"promotion_code": a.promotion_code} if a.promotion_code else None


def _items_commands(a: argparse.Namespace) -> Any:
    """create-items, items, discount and list: the API's models and the service the function runs."""
    from shared.billing.pagination import PageRequest
    from shared.subscriptions import commands, service

    svc = service.SubscriptionService()
    at = clock_now() if getattr(a, "clock", False) else None
    when = {"at": _iso(at)} if at else {}
    if a.cmd == "list":
        return svc.list_subscriptions(PageRequest(limit=a.limit, cursor=a.starting_after), customer=a.customer)
    if a.cmd == "items":
        return svc.change_items(a.id, commands.ChangeItems.model_validate({"items": a.item, **when}))
    if a.cmd == "discount":
        return svc.apply_discount(a.id, commands.ApplyDiscount.model_validate({**(_discount(a) or {}), **when}))
    body: dict[str, Any] = {
        "subscription_id": a.id,
        "customer": a.customer,
        "seller_entity": a.seller,
        "items": a.item,
        "trial_days": a.trial_days,
    }
    if a.days_until_due is not None:
        body |= {"collection": "send_invoice", "days_until_due": a.days_until_due}
    if (d := _discount(a)) is not None:
        body["discount"] = d
    if at is not None:
        body["start_at"] = _iso(at)
    status, out = svc.create_with_items(commands.CreateItemsSubscription.model_validate(body))
    return {"http_status": status, **out}


def _migrate_price(ap: argparse.ArgumentParser, a: argparse.Namespace) -> dict[str, Any]:
    """One answer per subscription (``migrated``/``dry_run`` with before/after, or the refusal's code)."""
    from shared.subscriptions import service
    from shared.subscriptions.commands import MigratePrice

    svc = service.SubscriptionService()
    if bool(a.ids) == a.all:
        ap.error("give subscription ids or --all")
    ids = svc.subscriptions_with_price(a.from_price) if a.all else a.ids
    body = MigratePrice(from_price=a.from_price, to_price=a.to_price, dry_run=a.dry_run)
    results = []
    for sub_id in ids:
        try:
            results.append(svc.migrate_price(sub_id, body))
        except service.ServiceError as exc:
            results.append({"subscription": sub_id, "error": exc.code, "detail": exc.detail})
    refused = sum(1 for r in results if "error" in r)
    return {"from_price": a.from_price, "to_price": a.to_price, "subscriptions": results, "refused": refused}


def _items_parsers(sub: Any) -> None:
    ci = sub.add_parser("create-items", help="create a subscription of catalog prices for a billing customer")
    ci.add_argument("id")
    ci.add_argument("--customer", required=True)
    ci.add_argument("--seller", required=True, help="legal entity issuing the invoices")
    ci.add_argument("--item", type=_item, action="append", required=True, help="PRICE:QUANTITY (repeatable)")
    ci.add_argument("--days-until-due", type=int, help="bill by send_invoice (default: charge the default method)")
    ci.add_argument("--trial-days", type=int, default=0)
    it = sub.add_parser("items", help="the items from now on (prorated)")
    it.add_argument("id")
    it.add_argument("--item", type=_item, action="append", required=True, help="PRICE:QUANTITY (repeatable)")
    dc = sub.add_parser("discount", help="attach a coupon or a promotion code from the next period")
    dc.add_argument("id")
    for p in (ci, dc):
        p.add_argument("--coupon")
        p.add_argument("--promotion-code")
    for p in (ci, it, dc):
        p.add_argument("--clock", action="store_true", help="at the test clock's time")
    ls = sub.add_parser("list", help="subscriptions newest first")
    ls.add_argument("--customer")
    ls.add_argument("--limit", type=int, default=20)
    ls.add_argument("--starting-after")


def _parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(prog="python -m shared.ops.subscriptions", description=__doc__)
    sub = ap.add_subparsers(dest="cmd", required=True)
    c = sub.add_parser("create", help="create a subscription")
    c.add_argument("id")
    c.add_argument("--customer", required=True)
    c.add_argument("--name")
    c.add_argument("--country", required=True)
    c.add_argument("--seller", required=True, help="legal entity issuing the invoices")
    c.add_argument("--plan", default="plan")
    c.add_argument("--amount", type=int, required=True, help="minor units per period")
    c.add_argument("--currency", required=True)
    c.add_argument("--interval", choices=["day", "week", "month", "year"], default="month")
    c.add_argument("--count", type=int, default=1)
    c.add_argument("--zone", default="Etc/UTC")
    c.add_argument("--trial-days", type=int, default=0)
    c.add_argument("--collection", choices=["charge_automatically", "send_invoice"], default="charge_automatically")
    c.add_argument("--psp", default="stripe")
    c.add_argument("--psp-customer")
    c.add_argument("--method", help="stored payment method id at the PSP")
    c.add_argument("--start-at", type=_parse_time)
    c.add_argument("--clock", action="store_true", help="start at the test clock's time")
    _items_parsers(sub)
    k = sub.add_parser("clock", help="the test clock")
    k.add_argument("action", choices=["show", "set", "advance"])
    k.add_argument("time", nargs="?", type=_parse_time)
    k.add_argument("--days", type=int, default=0)
    k.add_argument("--hours", type=int, default=0)
    t = sub.add_parser("tick", help="publish a billing tick (fan-out over shards)")
    g = t.add_mutually_exclusive_group()
    g.add_argument("--now", type=_parse_time)
    g.add_argument("--clock", action="store_true", help="tick at the test clock's time")
    s = sub.add_parser("show", help="a subscription with its charge attempts and invoices")
    s.add_argument("id")
    m = sub.add_parser("migrate", help="move a subscription of plan lines to catalog items")
    m.add_argument("id")
    m.add_argument("--dry-run", action="store_true", help="print the before/after, write nothing")
    p = sub.add_parser("migrate-price", help="move subscriptions' item of one price to a new price (next period)")
    p.add_argument("ids", nargs="*", help="subscriptions to move (or --all)")
    p.add_argument("--from", dest="from_price", required=True)
    p.add_argument("--to", dest="to_price", required=True)
    p.add_argument("--all", action="store_true", help="every subscription holding the --from price")
    p.add_argument(
        "--dry-run", action="store_true", help="print items and upcoming invoices before/after, write nothing"
    )
    v = sub.add_parser("preview", help="the upcoming invoice (items, discounts, prorations, tax, credit)")
    v.add_argument("id")
    v.add_argument("--clock", action="store_true", help="as of the test clock's time")
    x = sub.add_parser("cancel", help="cancel now or at period end")
    x.add_argument("id")
    x.add_argument("--at-period-end", action="store_true")
    return ap


def main(argv: list[str] | None = None, out: TextIO = sys.stdout) -> int:
    ap = _parser()
    a = ap.parse_args(argv)

    from shared.subscriptions import service
    from shared.subscriptions.commands import CancelSubscription

    try:
        if a.cmd == "create":
            result: Any = _create(a)
        elif a.cmd == "clock":
            now = clock_now()
            if a.action == "set":
                if a.time is None:
                    ap.error("clock set needs a time")
                now = set_clock(a.time)
            elif a.action == "advance":
                if now is None:
                    ap.error("the test clock is not set; use `clock set` first")
                now = set_clock(now + dt.timedelta(days=a.days, hours=a.hours))
            result = {"test_clock": _iso(now) if now else None}
        elif a.cmd == "tick":
            at = a.now or (clock_now() if a.clock else None)
            if a.clock and at is None:
                ap.error("the test clock is not set")
            result = {"message_id": publish_tick(at), "now": _iso(at) if at else "publish time"}
        elif a.cmd == "show":
            result = show(a.id)
        elif a.cmd == "migrate":
            result = service.SubscriptionService().migrate_to_items(a.id, dry_run=a.dry_run)
        elif a.cmd in ("create-items", "items", "discount", "list"):
            result = _items_commands(a)
        elif a.cmd == "migrate-price":
            result = _migrate_price(ap, a)
        elif a.cmd == "preview":
            result = service.SubscriptionService().preview(a.id, clock_now() if a.clock else None)
        else:
            result = service.SubscriptionService().cancel(a.id, CancelSubscription(at_period_end=a.at_period_end))
    except service.ServiceError as exc:
        print(json.dumps({"error": exc.code, "detail": exc.detail}, default=str), file=out)
        return 1
    except ValueError as exc:  # a request the API's models refuse (a ValidationError is one)
        print(json.dumps({"error": "invalid_request", "detail": str(exc)}), file=out)
        return 2
    print(json.dumps(result, indent=2, default=str), file=out)
    return 1 if a.cmd == "migrate-price" and result["refused"] else 0


if __name__ == "__main__":
    raise SystemExit(main())
