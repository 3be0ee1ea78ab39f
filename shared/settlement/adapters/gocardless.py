"""GoCardless settlement intake: paid payouts and their payout items through the official SDK.

Source: ``GET /payouts?created_at[gte]&created_at[lt]&status=paid`` then ``GET /payout_items?payout=PO...``
(cursor pagination by ``after``). Items are only served for payouts of the last 6 months (older: HTTP 410),
so pull at least daily. A payout's ``amount`` is integer minor units; an item's ``amount`` is a signed
STRING in minor units with one decimal (``"-20.4"``: fees can be a fraction of a penny). Each item is
rounded half-even to whole minor units for its line, the exact sum is kept as Decimal, and the payout
closes with one ``rounding`` adjustment line (``<payout>:rounding``) when the payout amount is within one
minor unit of that exact sum: the line amounts then sum to the payout exactly. A larger difference is left
for reconciliation to report (nothing is forced to balance).

Money items are lines: payments (+), late failures, chargebacks and refunds (-). Fee items (GoCardless,
app and surcharge fees) become fee components of the line of the payment they link to in the same payout
(a fee refunded after a chargeback is a negative fee); a fee whose payment is not in the payout is a FEE
line of its own. Fee components are summed exactly per kind, then rounded. VAT on fees is included in the
fee item's amount; its ``taxes`` breakdown is not split out. Join keys: ``links.payment``
(``PM...``) as ``psp_payment_id``, ``links.refund`` (``RF...``) as ``psp_reference`` when present; the
payout's bank ``reference`` is the payout's bank reference. Line id = (payout, item type, link).
"""

from __future__ import annotations

import datetime as dt
import decimal
from collections.abc import Iterable
from decimal import Decimal
from typing import Any

from shared.config import ConfigError
from shared.settlement.adapters.common import (
    LineIds,
    Where,
    bounded,
    currency,
    fees_of,
    make_line,
    parse_decimal,
    parse_int,
    parse_iso,
    text,
)
from shared.settlement.config import gocardless_settings
from shared.settlement.lines import LineType, Payout, SettlementBatch, SettlementLine

PAGE_LIMIT = 500
FEES = frozenset({"gocardless_fee", "app_fee", "surcharge_fee"})
# item type -> (line type, required sign: +1, -1 or 0 for either)
TYPES: dict[str, tuple[LineType, int]] = {
    "payment_paid_out": (LineType.CAPTURE, 1),
    "payment_failed": (LineType.ADJUSTMENT, -1),
    "payment_charged_back": (LineType.CHARGEBACK, -1),
    "payment_refunded": (LineType.REFUND, -1),
    "refund": (LineType.REFUND, -1),
    "refund_funds_returned": (LineType.ADJUSTMENT, 1),
    "revenue_share": (LineType.ADJUSTMENT, 0),
    **dict.fromkeys(FEES, (LineType.FEE, 0)),
}


def client(account: str) -> Any:
    """The official SDK client for ``account`` (``GOCARDLESS_API_BASE`` points it at a stub in tests)."""
    cfg = gocardless_settings(account)
    if not cfg.access_token:
        raise ConfigError(f"GOCARDLESS_ACCESS_TOKEN is not set for account {account!r}")
    import gocardless_pro

    if cfg.api_base:
        return gocardless_pro.Client(access_token=cfg.access_token, base_url=cfg.api_base)
    return gocardless_pro.Client(access_token=cfg.access_token, environment=cfg.environment)


def _stamp(t: dt.datetime) -> str:
    return t.astimezone(dt.UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def pull(client: Any, *, account: str, since: dt.datetime, until: dt.datetime) -> SettlementBatch:
    """Paid payouts created in ``[since, until)`` with every item each one holds."""
    params = {"created_at[gte]": _stamp(since), "created_at[lt]": _stamp(until), "status": "paid", "limit": PAGE_LIMIT}
    lines: list[SettlementLine] = []
    payouts: list[Payout] = []
    for po in client.payouts.all(params=params):
        payout = payout_from_api(po.attributes, account=account)
        items = client.payout_items.all(params={"payout": payout.payout_id, "limit": PAGE_LIMIT})
        lines.extend(lines_from_items(po.attributes, (i.attributes for i in items), account=account))
        payouts.append(payout)
    return SettlementBatch(lines=tuple(lines), payouts=tuple(payouts))


def payout_from_api(po: dict[str, Any], *, account: str) -> Payout:
    where = Where(f"gocardless:payouts/{str(po.get('id'))[:64]}")
    arrival = po.get("arrival_date")
    return Payout(
        psp="gocardless",
        account=account,
        payout_id=text(po.get("id"), where, "id", required=True) or "",
        currency=currency(po.get("currency"), where, "currency"),
        amount=parse_int(po.get("amount"), where, "amount"),
        arrival_date=dt.date.fromisoformat(arrival) if isinstance(arrival, str) and arrival else None,
        bank_reference=text(po.get("reference"), where, "reference"),
    )


def _tenths(raw: object, where: Where) -> Decimal:
    """An item amount: minor units with at most one decimal (GoCardless's documented precision)."""
    value = parse_decimal(raw, where, "amount")
    if value != value.quantize(Decimal("0.1"), rounding=decimal.ROUND_DOWN):
        raise where.error(f"more than one decimal in minor units: {raw!s:.32}", "amount")
    return value


def _minor(value: Decimal, where: Where, field: str) -> int:
    return bounded(int(value.to_integral_value(rounding=decimal.ROUND_HALF_EVEN)), where, field)


def lines_from_items(po: dict[str, Any], items: Iterable[dict[str, Any]], *, account: str) -> list[SettlementLine]:
    """The items of one payout as lines, plus the rounding line that closes the payout (see module doc)."""
    base = Where(f"gocardless:payout_items?payout={str(po.get('id'))[:64]}")
    payout_id = text(po.get("id"), base, "id", required=True) or ""
    code = currency(po.get("currency"), base, "currency")
    booked = parse_iso(po.get("created_at"), base, "created_at")
    ids = LineIds()
    exact = Decimal(0)
    drafts: list[dict[str, Any]] = []  # one per money item, in order; fees are attached to them
    by_payment: dict[str, dict[str, Any]] = {}
    fee_items: list[tuple[Where, str, Decimal, str | None]] = []
    for n, item in enumerate(items, start=1):
        where = base.at(n)
        kind = text(item.get("type"), where, "type", required=True, max_len=64) or ""
        line_type, sign = TYPES.get(kind, (LineType.ADJUSTMENT, 0))  # a new item type is booked, never dropped
        amount = _tenths(item.get("amount"), where)
        if sign and amount * sign < 0:
            raise where.error(f"{kind} must be {'positive' if sign > 0 else 'negative'}, got {amount}", "amount")
        exact += amount
        raw_links = item.get("links")
        links: dict[str, Any] = raw_links if isinstance(raw_links, dict) else {}
        payment = text(links.get("payment"), where, "links.payment", max_len=64)
        refund = text(links.get("refund"), where, "links.refund", max_len=64)
        if line_type is LineType.FEE:
            fee_items.append((where, kind, amount, payment))
            continue
        draft = {"where": where, "kind": kind, "type": line_type, "gross": amount, "fees": {}}
        draft |= {"payment": payment, "refund": refund}
        drafts.append(draft)
        if payment:
            by_payment.setdefault(payment, draft)
    for where, kind, amount, payment in fee_items:
        target = by_payment.get(payment or "")
        if target is None:  # a fee without its payment in this payout: a fee line of its own
            target = {"where": where, "kind": kind, "type": LineType.FEE, "gross": Decimal(0), "fees": {}}
            target |= {"payment": payment, "refund": None}
            drafts.append(target)
            if payment:
                by_payment[payment] = target
        target["fees"][kind] = target["fees"].get(kind, Decimal(0)) - amount  # a debit item is a positive fee
    lines = []
    for d in drafts:
        where = d["where"]
        gross = _minor(d["gross"], where, "amount")
        fees = fees_of({k: _minor(v, where, "amount") for k, v in d["fees"].items()})
        lines.append(
            make_line(
                where,
                psp="gocardless",
                account=account,
                line_id=ids(f"{payout_id}:{d['kind']}:{d['refund'] or d['payment'] or ''}"),
                type=d["type"],
                psp_reference=d["refund"] or d["payment"],
                psp_payment_id=d["payment"],
                currency=code,
                gross=gross,
                fees=fees,
                net=gross - sum(f.amount for f in fees),
                payout_id=payout_id,
                booked_at=booked,
            )
        )
    payout_amount = parse_int(po.get("amount"), base, "amount")
    rounding = payout_amount - sum(ln.net for ln in lines)
    if rounding and abs(payout_amount - exact) < 1:
        lines.append(
            make_line(
                base,
                psp="gocardless",
                account=account,
                line_id=f"{payout_id}:rounding",
                type=LineType.ADJUSTMENT,
                currency=code,
                gross=rounding,
                net=rounding,
                payout_id=payout_id,
                booked_at=booked,
            )
        )
    return lines
