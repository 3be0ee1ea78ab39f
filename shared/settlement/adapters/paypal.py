"""PayPal settlement intake: the Settlement report (STL CSV, SFTP ``/ppreports/outgoing``).

Record type in the first column: ``RH``/``FH``/``SH`` headers, ``CH`` the column names, ``SB`` one body row
per balance-affecting transaction, ``SF``/``SC``/``RF``/``RC``/``FF``/``FC`` footers and counts (not used:
their layout is not verified). Body rows are read by the ``CH`` names. Amounts are unsigned integers in
hundredths of the currency's major unit without a separator (``10000`` = 100.00 USD = 100 JPY): converted
exactly, so a value that is not a whole minor unit (``10050`` JPY) is refused. The direction is the ``DR``/
``CR`` column: gross CR -> +, DR -> -; a fee DR is a positive fee, a fee CR (fee refund) a negative one.

Line types from the T-code: T00xx payments, T1107 refund, T1106/T1201 chargeback, T1202 chargeback
reversal, T01xx fees (T0106 chargeback fee), T0400 withdrawal to the bank (a payout line and a payout),
everything else (T0200 currency conversion legs, T11xx holds, T1900 corrections) an adjustment.
Join keys: ``Transaction ID`` (= capture id of the webhook) is the line's id and ``psp_reference``; for
refunds, reversals and fees the ``PayPal Reference ID`` (type TXN) is the original transaction and so the
``psp_payment_id``. ``Invoice ID`` (our invoice id) and ``Custom Field`` (our reference) are kept. STL is
balance-based, not payout-based: lines carry no payout id; the withdrawal is its own payout.
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Any

from shared.settlement.adapters.common import (
    LineIds,
    SettlementFormatError,
    Where,
    currency,
    decode,
    fee_only,
    fees_of,
    header,
    make_line,
    minor_exact,
    records,
    row_dict,
    text,
)
from shared.settlement.lines import LineType, Payout, SettlementBatch, SettlementLine

STRUCTURE = frozenset({"RH", "FH", "SH", "SF", "SC", "RF", "RC", "FF", "FC"})
REQUIRED = frozenset(
    {
        "Transaction ID",
        "Invoice ID",
        "PayPal Reference ID",
        "PayPal Reference ID Type",
        "Transaction Event Code",
        "Transaction Initiation Date",
        "Transaction Completion Date",
        "Transaction Debit or Credit",
        "Gross Transaction Amount",
        "Gross Transaction Currency",
        "Fee Debit or Credit",
        "Fee Amount",
        "Fee Currency",
    }
)
EXACT_CODES = {
    "T1107": LineType.REFUND,
    "T1106": LineType.CHARGEBACK,
    "T1201": LineType.CHARGEBACK,
    "T1202": LineType.CHARGEBACK_REVERSAL,
    "T0400": LineType.PAYOUT,
}


def line_type(code: str) -> LineType:
    if code in EXACT_CODES:
        return EXACT_CODES[code]
    if code.startswith("T00"):
        return LineType.CAPTURE
    if code.startswith("T01") or code in ("T1108", "T1109"):
        return LineType.FEE
    return LineType.ADJUSTMENT


def _hundredths(raw: str, direction: str, code: str, where: Where, *, field: str, dir_field: str) -> int:
    value = raw.strip()
    if not (value.isascii() and value.isdigit() and len(value) <= 18):
        raise where.error(f"not an unsigned integer amount: {value[:32]!r}", field)
    marker = direction.strip()
    if marker not in ("DR", "CR"):
        if int(value) == 0 and marker == "":
            return 0
        raise where.error(f"direction must be DR or CR, got {marker[:8]!r}", dir_field)
    amount = minor_exact(Decimal(value).scaleb(-2), code, where, field)
    return -amount if marker == "DR" else amount


def _timestamp(raw: str, where: Where, field: str) -> dt.datetime:
    value = raw.strip()
    try:
        return dt.datetime.strptime(value, "%Y/%m/%d %H:%M:%S %z").astimezone(dt.UTC)
    except ValueError:
        raise where.error(f"not a 'YYYY/MM/DD HH:MM:SS +hhmm' time: {value[:40]!r}", field) from None


def parse_report(data: bytes, *, account: str, source: str) -> SettlementBatch:
    """An STL file: every SB row a line; every T0400 withdrawal also a payout."""
    names: list[str] | None = None
    lines: list[SettlementLine] = []
    payouts: list[Payout] = []
    ids = LineIds()
    for number, fields in records(decode(data, source), source):
        where = Where(source, number)
        kind = fields[0].strip()
        if kind == "CH":
            names = header(fields[1:], where, REQUIRED)
        elif kind == "SB":
            if names is None:
                raise where.error("body row before the column header (CH)")
            line = _line(row_dict(names, fields[1:], where), where, account, ids)
            lines.append(line)
            if line.type is LineType.PAYOUT:
                payouts.append(
                    Payout(
                        psp="paypal",
                        account=account,
                        payout_id=line.line_id,
                        currency=line.currency,
                        amount=-line.net,  # arrival at the bank is not in the STL file
                    )
                )
        elif kind not in STRUCTURE:
            raise where.error(f"unknown record type {kind[:8]!r}", "record type")
    if names is None:
        raise SettlementFormatError("no column header (CH) record: not an STL file", source=source)
    return SettlementBatch(lines=tuple(lines), payouts=tuple(payouts))


def _line(row: dict[str, str], where: Where, account: str, ids: LineIds) -> SettlementLine:
    code = currency(row["Gross Transaction Currency"], where, "Gross Transaction Currency")
    event = text(row["Transaction Event Code"], where, "Transaction Event Code", required=True, max_len=8) or ""
    if not (len(event) == 5 and event[0] == "T" and event[1:].isascii() and event[1:].isdigit()):
        raise where.error(f"not a T-code: {event!r}", "Transaction Event Code")
    kind = line_type(event)
    gross = _hundredths(
        row["Gross Transaction Amount"],
        row["Transaction Debit or Credit"],
        code,
        where,
        field="Gross Transaction Amount",
        dir_field="Transaction Debit or Credit",
    )
    fee = 0
    if row["Fee Amount"].strip():
        fee_code = currency(row["Fee Currency"], where, "Fee Currency") if row["Fee Currency"].strip() else code
        fee = -_hundredths(
            row["Fee Amount"],
            row["Fee Debit or Credit"],
            fee_code,
            where,
            field="Fee Amount",
            dir_field="Fee Debit or Credit",
        )
        if fee and fee_code != code:
            raise where.error("fee in another currency than the gross", "Fee Currency")
    fees = fees_of({"paypal_fee": fee})
    if kind is LineType.FEE:
        gross, fees = fee_only(f"paypal_{event}", gross, fees)
    txn = text(row["Transaction ID"], where, "Transaction ID", required=True, max_len=64) or ""
    ref = text(row["PayPal Reference ID"], where, "PayPal Reference ID", max_len=64)
    ref_type = (row["PayPal Reference ID Type"] or "").strip()
    original = ref if ref and ref_type == "TXN" else None
    payment = txn if kind is LineType.CAPTURE else original
    completed = row["Transaction Completion Date"].strip() or row["Transaction Initiation Date"]
    fields: dict[str, Any] = {}
    if kind is LineType.PAYOUT:
        fields["payout_id"] = txn
    return make_line(
        where,
        psp="paypal",
        account=account,
        line_id=ids(txn),
        type=kind,
        psp_reference=txn,
        psp_payment_id=payment,
        our_invoice_id=text(row["Invoice ID"], where, "Invoice ID"),
        our_reference=text(row.get("Custom Field"), where, "Custom Field"),
        currency=code,
        gross=gross,
        fees=fees,
        net=gross - sum(f.amount for f in fees),
        booked_at=_timestamp(completed, where, "Transaction Completion Date"),
        **fields,
    )
