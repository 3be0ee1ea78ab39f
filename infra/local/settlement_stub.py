"""A stand-in settlement registry for the local stack, the e2e test and the demo: one simple CSV format.

The per-PSP intake adapters turn each PSP's real report into settlement lines; until they are wired in,
the local stack points ``RECON_REGISTRY_MODULE`` here. Same interface as the real registry:
``REPORT_PARSERS[psp](data, account=, source=)``, ``PULLERS`` and ``detect(object_name)`` for objects
named ``settlement/<psp>/<account>/<file>``. Format (amounts in minor units, fees ``kind=amount;...``)::

    type,line_id,psp_reference,psp_payment_id,currency,gross,fees,payout_id,booked_at,presentment_currency,presentment_amount
"""

from __future__ import annotations

import csv
import datetime as dt
import io
from collections.abc import Callable
from typing import Any

from shared.settlement.lines import Fee, LineType, Payout, SettlementBatch, SettlementLine

PSPS = ("stripe", "adyen", "paypal", "gocardless", "braintree", "checkout")
HEADER = (
    "type,line_id,psp_reference,psp_payment_id,currency,gross,fees,payout_id,booked_at,"
    "presentment_currency,presentment_amount"
)


def detect(object_name: str) -> tuple[str, str] | None:
    parts = object_name.split("/")
    if len(parts) == 4 and parts[0] == "settlement" and parts[1] in PSPS and parts[2] and parts[3]:
        return parts[1], parts[2]
    return None


def parse_report(data: bytes, *, account: str, source: str, psp: str = "stripe") -> SettlementBatch:
    lines, payouts = [], []
    for n, row in enumerate(csv.DictReader(io.StringIO(data.decode())), 2):
        fees = tuple(
            Fee(kind=k, amount=int(v)) for k, _, v in (f.partition("=") for f in (row["fees"] or "").split(";") if f)
        )
        gross = int(row["gross"])
        line = SettlementLine(
            psp=psp,  # type: ignore[arg-type]
            account=account,
            line_id=row["line_id"],
            type=LineType(row["type"]),
            psp_reference=row["psp_reference"] or None,
            psp_payment_id=row["psp_payment_id"] or None,
            currency=row["currency"],
            gross=gross,
            fees=fees,
            net=gross - sum(f.amount for f in fees),
            presentment_currency=row.get("presentment_currency") or None,
            presentment_amount=int(row["presentment_amount"]) if row.get("presentment_amount") else None,
            payout_id=row["payout_id"] or None,
            booked_at=dt.datetime.fromisoformat(row["booked_at"]),
            source=f"{source}:{n}",
        )
        lines.append(line)
        if line.type is LineType.PAYOUT and line.payout_id:
            payouts.append(
                Payout(psp=line.psp, account=account, payout_id=line.payout_id, currency=line.currency, amount=-gross)
            )
    return SettlementBatch(lines=tuple(lines), payouts=tuple(payouts))


def to_csv(batch: SettlementBatch) -> bytes:
    """The stub format of a batch (tests and the demo write their report files with it)."""
    out = [HEADER]
    for ln in batch.lines:
        fees = ";".join(f"{f.kind}={f.amount}" for f in ln.fees)
        out.append(
            ",".join([
                ln.type.value, ln.line_id, ln.psp_reference or "", ln.psp_payment_id or "", ln.currency,
                str(ln.gross), fees, ln.payout_id or "", ln.booked_at.isoformat(), ln.presentment_currency or "",
                "" if ln.presentment_amount is None else str(ln.presentment_amount),
            ])
        )  # fmt: skip
    return ("\n".join(out) + "\n").encode()


def _parser(psp: str) -> Callable[..., SettlementBatch]:
    def parse(data: bytes, *, account: str, source: str) -> SettlementBatch:
        return parse_report(data, account=account, source=source, psp=psp)

    return parse


REPORT_PARSERS: dict[str, Callable[..., SettlementBatch]] = {p: _parser(p) for p in PSPS}
PULLERS: dict[str, Callable[..., Any]] = {}
