"""Adyen settlement intake: the Settlement details report (CSV, one file per merchant account and batch).

Adyen has no API listing settled lines, so this is a file source only (``REPORT_AVAILABLE`` webhook ->
download -> bucket). Columns are read by header name (Adyen reorders and adds columns; the 2025 layout adds
Booking Date, Payment Fees (NC) ...). Amounts are unsigned decimal major units; the direction is which
column is filled: Net Credit -> +, Net Debit -> -. The fee columns (Commission, Markup, Scheme Fees,
Interchange, DCC Markup) are separate components; ``Payment Fees (NC)`` is Adyen's own total and is not
added again. The line is kept in the settlement (net) currency: ``gross = net + fees``, and the
transaction-currency gross is the presentment amount with its ``Exchange Rate`` (checked to agree with the
settlement gross within one minor unit). The ``MerchantPayout`` row is the payout (its Net Debit reached the
bank); every row carries the payout id ``<Merchant Account>:<Batch Number>``.

Join keys: ``Psp Reference`` is the payment (= the AUTHORISATION webhook); ``Modification Reference`` the
capture/refund/chargeback (= that webhook's pspReference) and is the line's ``psp_reference``; line id =
(batch, type, psp reference, modification reference). ``Merchant Reference`` is ours (a fallback only).
"""

from __future__ import annotations

import datetime as dt
import zoneinfo
from decimal import Decimal
from typing import Any

from shared.settlement.adapters.common import (
    LineIds,
    Where,
    currency,
    dict_rows,
    exponent,
    fee_only,
    fees_of,
    make_line,
    minor_exact,
    parse_decimal,
    parse_rate,
    text,
)
from shared.settlement.lines import LineType, Payout, SettlementBatch, SettlementLine

REQUIRED = frozenset(
    {
        "Merchant Account",
        "Psp Reference",
        "Merchant Reference",
        "Creation Date",
        "TimeZone",
        "Type",
        "Modification Reference",
        "Gross Currency",
        "Gross Debit (GC)",
        "Gross Credit (GC)",
        "Exchange Rate",
        "Net Currency",
        "Net Debit (NC)",
        "Net Credit (NC)",
        "Commission (NC)",
        "Markup (NC)",
        "Scheme Fees (NC)",
        "Interchange (NC)",
        "Batch Number",
    }
)
FEE_COLUMNS = {
    "Commission (NC)": "commission",
    "Markup (NC)": "markup",
    "Scheme Fees (NC)": "scheme_fees",
    "Interchange (NC)": "interchange",
    "DCC Markup (NC)": "dcc_markup",
}
TYPES = {
    "Settled": LineType.CAPTURE,
    "SettledExternally": LineType.CAPTURE,
    "Refunded": LineType.REFUND,
    "RefundedExternally": LineType.REFUND,
    "Chargeback": LineType.CHARGEBACK,
    "SecondChargeback": LineType.CHARGEBACK,
    "ChargebackExternally": LineType.CHARGEBACK,
    "ChargebackReversed": LineType.CHARGEBACK_REVERSAL,
    "Fee": LineType.FEE,
    "InvoiceDeduction": LineType.FEE,
    "MiscCosts": LineType.FEE,
    "PaymentCost": LineType.FEE,
    "SettleCost": LineType.FEE,
    "AuthorisationSchemeFee": LineType.FEE,
    "MerchantPayout": LineType.PAYOUT,
}  # anything else (DepositCorrection, Balancetransfer, RefundedReversed, ReserveAdjustment ...) is an adjustment
# Time-zone codes Adyen writes next to Creation Date; an IANA name is accepted too. Ambiguous ones (CST,
# IST) are refused rather than guessed.
TZ_OFFSETS = {
    "UTC": 0,
    "GMT": 0,
    "WET": 0,
    "WEST": 1,
    "BST": 1,
    "CET": 1,
    "CEST": 2,
    "EET": 2,
    "EEST": 3,
    "MSK": 3,
    "SGT": 8,
    "HKT": 8,
    "JST": 9,
    "AEST": 10,
    "AEDT": 11,
    "EST": -5,
    "EDT": -4,
    "MST": -7,
    "MDT": -6,
    "PST": -8,
    "PDT": -7,
}


def _timestamp(value: str, tz: str, where: Where) -> dt.datetime:
    try:
        local = dt.datetime.strptime(value.strip(), "%Y-%m-%d %H:%M:%S")
    except ValueError:
        raise where.error(f"not a YYYY-MM-DD HH:MM:SS time: {value[:40]!r}", "Creation Date") from None
    code = tz.strip()
    zone: dt.tzinfo
    if code in TZ_OFFSETS:
        zone = dt.timezone(dt.timedelta(hours=TZ_OFFSETS[code]))
    else:
        try:
            zone = zoneinfo.ZoneInfo(code)
        except (zoneinfo.ZoneInfoNotFoundError, ValueError):
            raise where.error(f"unknown time zone {code[:40]!r}", "TimeZone") from None
    return local.replace(tzinfo=zone).astimezone(dt.UTC)


def _directed(row: dict[str, str], debit: str, credit: str, where: Where) -> Decimal | None:
    """The signed amount of a Debit/Credit column pair (credit +, debit -); None when both are empty."""
    d, c = row[debit].strip(), row[credit].strip()
    if d and c:
        raise where.error("both debit and credit are filled", f"{debit}/{credit}")
    if not d and not c:
        return None
    if d:
        value = parse_decimal(d, where, debit)
        if value < 0:
            raise where.error("debit columns are unsigned", debit)
        return -value
    value = parse_decimal(c, where, credit)
    if value < 0:
        raise where.error("credit columns are unsigned", credit)
    return value


def parse_report(data: bytes, *, account: str, source: str) -> SettlementBatch:
    """A Settlement details report: every row a line; each MerchantPayout row also a payout."""
    lines: list[SettlementLine] = []
    payouts: list[Payout] = []
    ids = LineIds()
    for where, row in dict_rows(data, source, REQUIRED):
        journal = text(row["Type"], where, "Type", required=True, max_len=64) or ""
        kind = TYPES.get(journal, LineType.ADJUSTMENT)
        merchant = text(row["Merchant Account"], where, "Merchant Account", required=True) or ""
        batch = text(row["Batch Number"], where, "Batch Number", required=True, max_len=32) or ""
        if not (batch.isascii() and batch.isdigit()):
            raise where.error(f"not a batch number: {batch!r}", "Batch Number")
        payout_id = f"{merchant}:{batch}"
        nc = currency(row["Net Currency"], where, "Net Currency")
        net_major = _directed(row, "Net Debit (NC)", "Net Credit (NC)", where) or Decimal(0)
        net = minor_exact(net_major, nc, where, "Net (NC)")
        fee_parts = {
            kind_name: minor_exact(parse_decimal(row.get(col), where, col, empty_is_zero=True), nc, where, col)
            for col, kind_name in FEE_COLUMNS.items()
        }
        fees = fees_of(fee_parts)
        gross = net + sum(f.amount for f in fees)
        booked = _timestamp(row["Creation Date"], row["TimeZone"], where)
        psp_ref = text(row["Psp Reference"], where, "Psp Reference", max_len=64)
        mod_ref = text(row["Modification Reference"], where, "Modification Reference")
        merchant_ref = text(row["Merchant Reference"], where, "Merchant Reference")
        mod_merchant_ref = text(row.get("Modification Merchant Reference"), where, "Modification Merchant Reference")
        if kind is LineType.PAYOUT:
            if fees or net > 0:
                raise where.error("a MerchantPayout row is a Net Debit without fees", "Net Debit (NC)")
            payouts.append(
                Payout(
                    psp="adyen", account=account, payout_id=payout_id, currency=nc, amount=-net, bank_reference=mod_ref
                )
            )
        presentment: dict[str, Any] = {}
        rate = parse_rate(row["Exchange Rate"], where, "Exchange Rate")
        gross_gc = _directed(row, "Gross Debit (GC)", "Gross Credit (GC)", where)
        if gross_gc is not None:
            gc = currency(row["Gross Currency"], where, "Gross Currency")
            presentment = {
                "presentment_currency": gc,
                "presentment_amount": minor_exact(gross_gc, gc, where, "Gross (GC)"),
            }
            if rate is not None and kind is not LineType.FEE:
                expected = (gross_gc * rate).scaleb(exponent(nc))
                if abs(expected - gross) > 1:
                    raise where.error(
                        f"gross x exchange rate ({expected.normalize()}) disagrees with net + fees ({gross})",
                        "Exchange Rate",
                    )
        if kind is LineType.FEE:
            gross, fees = fee_only(f"adyen_{journal}", gross, fees)
        lines.append(
            make_line(
                where,
                psp="adyen",
                account=account,
                line_id=ids(f"{payout_id}:{journal}:{psp_ref or ''}:{mod_ref or ''}"),
                type=kind,
                psp_reference=mod_ref if psp_ref else None,
                psp_payment_id=psp_ref,
                our_reference=mod_merchant_ref or merchant_ref,
                currency=nc,
                gross=gross,
                fees=fees,
                net=net,
                fx_rate=rate,
                payout_id=payout_id,
                booked_at=booked,
                **presentment,
            )
        )
    return SettlementBatch(lines=tuple(lines), payouts=tuple(payouts))
