"""Stripe settlement intake: balance transactions per automatic payout (API) and the payout reconciliation CSV.

API source (:func:`pull`): the paid payouts whose ``arrival_date`` falls in the window, then
``GET /v1/balance_transactions?payout=po_...`` for each automatic one (``expand[]=data.source`` for the
payment intent and metadata). Manual and instant payouts cannot be itemised by Stripe: only the payout
itself is returned for them. API amounts are signed integer minor units already; ``fee_details`` become fee
components (``stripe_fee``, ``application_fee``, ``tax`` ...), ``exchange_rate`` and the expanded source's
amount/currency the presentment side.

File source (:func:`parse_report`): the itemised payout reconciliation report (``payout_reconciliation.*``,
``payout_reconciliation.by_id.itemized.*``): decimal major units, signed, one ``fee`` total per row.

Join keys: ``source`` (``ch_``/``re_``/``du_``) as ``psp_reference``, its ``payment_intent`` (or charge id)
as ``psp_payment_id`` (what the webhooks store), ``metadata[invoice_id]`` when the source carries it.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from typing import Any

from shared.config import ConfigError
from shared.settlement.adapters.common import (
    LineIds,
    Where,
    currency,
    dict_rows,
    fee_only,
    fees_of,
    make_line,
    minor_exact,
    parse_decimal,
    parse_int,
    parse_rate,
    text,
    utc_from_unix,
)
from shared.settlement.config import stripe_settings
from shared.settlement.lines import Fee, LineType, Payout, SettlementBatch, SettlementLine

PAGE_LIMIT = 100
# reporting_category -> line type; Stripe advises reporting_category over type. Anything else is an adjustment.
CATEGORIES = {
    "charge": LineType.CAPTURE,
    "refund": LineType.REFUND,
    "dispute": LineType.CHARGEBACK,
    "dispute_reversal": LineType.CHARGEBACK_REVERSAL,
    "fee": LineType.FEE,
    "payout": LineType.PAYOUT,
}


def client(account: str) -> Any:
    """The official SDK client for ``account`` (``STRIPE_API_BASE`` points it at a stub in tests)."""
    cfg = stripe_settings(account)
    if not cfg.api_key:
        raise ConfigError(f"STRIPE_API_KEY is not set for account {account!r}")
    import stripe

    return stripe.StripeClient(
        cfg.api_key, base_addresses={"api": cfg.api_base} if cfg.api_base else None, max_network_retries=2
    )


# -- API ---------------------------------------------------------------------------------------------
def pull(client: Any, *, account: str, since: dt.datetime, until: dt.datetime) -> SettlementBatch:
    """Paid payouts arriving in ``[since, until)`` and, for automatic ones, every balance transaction they hold."""
    params = {
        "arrival_date": {"gte": int(since.timestamp()), "lt": int(until.timestamp())},
        "status": "paid",
        "limit": PAGE_LIMIT,
    }
    lines: list[SettlementLine] = []
    payouts: list[Payout] = []
    for po in client.v1.payouts.list(params=params).auto_paging_iter():
        payout = po.to_dict()
        payouts.append(payout_from_api(payout, account=account))
        if not payout.get("automatic"):
            continue  # Stripe cannot itemise manual/instant payouts
        txns = client.v1.balance_transactions.list(
            params={"payout": payout["id"], "limit": PAGE_LIMIT, "expand": ["data.source"]}
        ).auto_paging_iter()
        lines.extend(lines_from_api((t.to_dict() for t in txns), account=account, payout_id=str(payout["id"])))
    return SettlementBatch(lines=tuple(lines), payouts=tuple(payouts))


def payout_from_api(po: dict[str, Any], *, account: str) -> Payout:
    where = Where(f"stripe:payouts/{str(po.get('id'))[:64]}")
    trace = po.get("trace_id") or {}
    return Payout(
        psp="stripe",
        account=account,
        payout_id=text(po.get("id"), where, "id", required=True) or "",
        currency=currency(po.get("currency"), where, "currency"),
        amount=parse_int(po.get("amount"), where, "amount"),
        arrival_date=utc_from_unix(po.get("arrival_date"), where, "arrival_date").date(),
        bank_reference=text(trace.get("value") if isinstance(trace, dict) else None, where, "trace_id.value"),
    )


def lines_from_api(txns: Iterable[dict[str, Any]], *, account: str, payout_id: str) -> list[SettlementLine]:
    """Balance transactions (``?payout=`` pages, source expanded) as lines of ``payout_id``."""
    out = []
    for t in txns:
        where = Where(f"stripe:balance_transactions?payout={payout_id}#{str(t.get('id'))[:64]}")
        code = currency(t.get("currency"), where, "currency")
        gross = parse_int(t.get("amount"), where, "amount")
        fee_total = parse_int(t.get("fee"), where, "fee")
        components: dict[str, int] = {}
        for i, d in enumerate(t.get("fee_details") or ()):
            if currency(d.get("currency"), where, f"fee_details[{i}].currency") != code:
                raise where.error("fee in another currency than the transaction", f"fee_details[{i}]")
            kind = text(d.get("type"), where, f"fee_details[{i}].type", required=True, max_len=64) or ""
            components[kind] = components.get(kind, 0) + parse_int(d.get("amount"), where, f"fee_details[{i}].amount")
        if not components:
            components["fee"] = fee_total  # no itemisation: the total is the one component
        elif sum(components.values()) != fee_total:
            raise where.error("fee_details do not sum to fee", "fee_details")
        fees = fees_of(components)
        kind = CATEGORIES.get(str(t.get("reporting_category")), LineType.ADJUSTMENT)
        src = t.get("source")
        obj: dict[str, Any] = src if isinstance(src, dict) else {}
        src_id = obj.get("id") if obj else src
        rate = parse_rate(t.get("exchange_rate"), where, "exchange_rate")
        presentment: dict[str, Any] = {}
        if rate is not None and obj.get("currency") and obj.get("amount") is not None:
            p = parse_int(obj.get("amount"), where, "source.amount")
            presentment = {
                "presentment_currency": currency(obj.get("currency"), where, "source.currency"),
                "presentment_amount": -abs(p) if gross < 0 else abs(p),
            }
        if kind is LineType.FEE:
            gross, fees = fee_only("stripe_fee", gross, fees)
        meta = obj.get("metadata")
        metadata: dict[str, Any] = meta if isinstance(meta, dict) else {}
        payment = obj.get("payment_intent") or obj.get("charge")
        if isinstance(payment, dict):
            payment = payment.get("id")
        if obj.get("object") == "charge" and not payment:
            payment = obj.get("id")
        out.append(
            make_line(
                where,
                psp="stripe",
                account=account,
                line_id=text(t.get("id"), where, "id", required=True),
                type=kind,
                psp_reference=text(src_id, where, "source"),
                psp_payment_id=text(payment, where, "source.payment_intent"),
                our_invoice_id=text(metadata.get("invoice_id"), where, "source.metadata.invoice_id"),
                our_reference=text(metadata.get("attempt_id"), where, "source.metadata.attempt_id"),
                currency=code,
                gross=gross,
                fees=fees,
                net=parse_int(t.get("net"), where, "net"),
                fx_rate=rate,
                payout_id=payout_id,
                booked_at=utc_from_unix(t.get("created"), where, "created"),
                available_at=utc_from_unix(t.get("available_on"), where, "available_on")
                if t.get("available_on")
                else None,
                **presentment,
            )
        )
    return out


# -- payout reconciliation report (CSV) ---------------------------------------------------------------
REPORT_COLUMNS = frozenset(
    {"balance_transaction_id", "currency", "gross", "fee", "net", "reporting_category", "automatic_payout_id"}
)


def _created(row: dict[str, str], where: Where) -> dt.datetime:
    for name in ("created_utc", "created"):
        if row.get(name):
            raw = row[name].strip()
            try:
                return dt.datetime.fromisoformat(raw).replace(tzinfo=dt.UTC)
            except ValueError:
                raise where.error(f"not a UTC timestamp: {raw[:40]!r}", name) from None
    raise where.error("missing", "created_utc")


def parse_report(data: bytes, *, account: str, source: str) -> SettlementBatch:
    """The itemised payout reconciliation CSV: one line per balance transaction, decimal major units."""
    lines = []
    ids = LineIds()
    for where, row in dict_rows(data, source, REPORT_COLUMNS):
        code = currency(row["currency"], where, "currency")
        gross = minor_exact(parse_decimal(row["gross"], where, "gross"), code, where, "gross")
        fee = minor_exact(parse_decimal(row["fee"], where, "fee"), code, where, "fee")
        net = minor_exact(parse_decimal(row["net"], where, "net"), code, where, "net")
        kind = CATEGORIES.get(row["reporting_category"].strip(), LineType.ADJUSTMENT)
        fees: tuple[Fee, ...] = fees_of({"fee": fee})
        if kind is LineType.FEE:
            gross, fees = fee_only("stripe_fee", gross, fees)
        presentment: dict[str, Any] = {}
        if row.get("customer_facing_currency", "").strip():
            pc = currency(row["customer_facing_currency"], where, "customer_facing_currency")
            pa = minor_exact(
                parse_decimal(row.get("customer_facing_amount"), where, "customer_facing_amount"),
                pc,
                where,
                "customer_facing_amount",
            )
            presentment = {"presentment_currency": pc, "presentment_amount": -abs(pa) if gross < 0 else abs(pa)}
        lines.append(
            make_line(
                where,
                psp="stripe",
                account=account,
                line_id=ids(text(row["balance_transaction_id"], where, "balance_transaction_id", required=True) or ""),
                type=kind,
                psp_reference=text(row.get("source_id") or row.get("charge_id"), where, "source_id"),
                psp_payment_id=text(row.get("payment_intent_id") or row.get("charge_id"), where, "payment_intent_id"),
                our_invoice_id=text(row.get("payment_metadata[invoice_id]"), where, "payment_metadata[invoice_id]"),
                our_reference=text(row.get("payment_metadata[attempt_id]"), where, "payment_metadata[attempt_id]"),
                currency=code,
                gross=gross,
                fees=fees,
                net=net,
                payout_id=text(row["automatic_payout_id"], where, "automatic_payout_id"),
                booked_at=_created(row, where),
                **presentment,
            )
        )
    return SettlementBatch(lines=tuple(lines))
