"""Braintree settlement intake: transactions by disbursement date through the official SDK.

Source: ``TransactionSearch.disbursement_date.between(first, last)`` (``POST .../transactions/
advanced_search_ids`` then ``advanced_search`` in pages of ids). Each disbursed transaction carries
``disbursement_details``: the settlement amount and currency (the line), the exchange rate, the disbursement
date. Amounts are decimal strings in major units (the SDK makes them Decimal); they are converted exactly
to the settlement currency's exponent. Direction from the transaction type: ``sale`` +, ``credit`` (refund) -.
The transaction ``amount``/``currency_iso_code`` is the presentment side when it differs from settlement.

Not covered, by Braintree's design: transactions carry no fee (fees are netted daily or billed monthly;
they need the payment-level fee report), and the disbursement object exists only in the ``disbursement``
webhook (it cannot be fetched later), so no :class:`Payout` is emitted here. Lines get the payout id
``<merchant_account_id>:<disbursement_date>``, the pair the disbursement webhook carries, for the join.
Disputes debit a later disbursement through the dispute objects, not transactions: not covered here.
Join keys: transaction ``id`` (the webhook's id) and, for refunds, ``refunded_transaction_id`` as the payment;
``order_id`` is our reference.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from typing import Any
from urllib.parse import urlsplit

from shared.config import ConfigError
from shared.settlement.adapters.common import (
    Where,
    currency,
    make_line,
    minor_exact,
    parse_decimal,
    parse_rate,
    text,
)
from shared.settlement.config import braintree_settings
from shared.settlement.lines import LineType, SettlementBatch, SettlementLine

SIGNS = {"sale": (LineType.CAPTURE, 1), "credit": (LineType.REFUND, -1)}


def client(account: str) -> Any:
    """A ``BraintreeGateway`` for ``account`` (``BRAINTREE_API_BASE`` points it at a stub in tests)."""
    cfg = braintree_settings(account)
    if not (cfg.merchant_id and cfg.public_key and cfg.private_key):
        raise ConfigError(f"BRAINTREE_MERCHANT_ID / _PUBLIC_KEY / _PRIVATE_KEY not set for account {account!r}")
    import braintree

    if cfg.api_base:
        url = urlsplit(cfg.api_base)
        env = braintree.Environment("stub", url.hostname, str(url.port or 80), "", False, None)
    else:
        env = braintree.Environment.parse_environment(cfg.environment)
    return braintree.BraintreeGateway(
        braintree.Configuration(
            environment=env, merchant_id=cfg.merchant_id, public_key=cfg.public_key, private_key=cfg.private_key
        )
    )


def pull(client: Any, *, account: str, since: dt.datetime, until: dt.datetime) -> SettlementBatch:
    """Transactions disbursed on the dates of ``[since, until)`` (Braintree searches whole dates, inclusive)."""
    from braintree import TransactionSearch

    first, last = since.date(), (until - dt.timedelta(microseconds=1)).date()
    results = client.transaction.search(TransactionSearch.disbursement_date.between(first, last))
    return SettlementBatch(lines=tuple(lines_from_transactions(results.items, account=account)))


def _utc(value: object, where: Where, field: str) -> dt.datetime:
    if not isinstance(value, dt.datetime):
        raise where.error(f"not a timestamp: {str(value)[:40]!r}", field)
    return value.replace(tzinfo=dt.UTC) if value.tzinfo is None else value.astimezone(dt.UTC)


def lines_from_transactions(transactions: Iterable[Any], *, account: str) -> list[SettlementLine]:
    lines = []
    for t in transactions:
        where = Where(f"braintree:transactions#{str(getattr(t, 'id', ''))[:64]}")
        kind = str(getattr(t, "type", ""))
        if kind not in SIGNS:
            raise where.error(f"unknown transaction type {kind[:16]!r}", "type")
        line_type, sign = SIGNS[kind]
        details = getattr(t, "disbursement_details", None)
        day = getattr(details, "disbursement_date", None)
        if details is None or not isinstance(day, dt.date):
            raise where.error("no disbursement details on a disbursed transaction", "disbursement_details")
        code = currency(getattr(details, "settlement_currency_iso_code", None), where, "settlement_currency_iso_code")
        settled = parse_decimal(getattr(details, "settlement_amount", None), where, "settlement_amount")
        gross = sign * minor_exact(abs(settled), code, where, "settlement_amount")
        pc = currency(getattr(t, "currency_iso_code", None), where, "currency_iso_code")
        amount = parse_decimal(getattr(t, "amount", None), where, "amount")
        presentment: dict[str, Any] = {}
        if pc != code:
            presentment = {
                "presentment_currency": pc,
                "presentment_amount": sign * minor_exact(abs(amount), pc, where, "amount"),
                "fx_rate": parse_rate(
                    getattr(details, "settlement_currency_exchange_rate", None),
                    where,
                    "settlement_currency_exchange_rate",
                ),
            }
        elif minor_exact(abs(amount), pc, where, "amount") != abs(gross):
            raise where.error("settlement amount differs from the amount in the same currency", "settlement_amount")
        tx_id = text(getattr(t, "id", None), where, "id", required=True, max_len=64) or ""
        merchant = text(getattr(t, "merchant_account_id", None), where, "merchant_account_id", required=True)
        held = getattr(details, "funds_held", False) is True
        original = text(getattr(t, "refunded_transaction_id", None), where, "refunded_transaction_id", max_len=64)
        lines.append(
            make_line(
                where,
                psp="braintree",
                account=account,
                line_id=tx_id,
                type=line_type,
                psp_reference=tx_id,
                psp_payment_id=original if kind == "credit" and original else tx_id,
                our_reference=text(getattr(t, "order_id", None), where, "order_id"),
                currency=code,
                gross=gross,
                net=gross,
                payout_id=None if held else f"{merchant}:{day.isoformat()}",
                booked_at=_utc(getattr(t, "created_at", None), where, "created_at"),
                available_at=dt.datetime.combine(day, dt.time(), dt.UTC),
                **presentment,
            )
        )
    return lines
