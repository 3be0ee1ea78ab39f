"""Real PSP settlement formats written from normalised lines: the inverse of the intake adapters.

Why: the demo, the end-to-end test, the service tests and the benchmark must feed reconciliation what the
PSPs really send (an Adyen settlement details CSV, Checkout.com's breakdown and payouts CSVs, Stripe's
payouts and balance transactions as the API returns them), so the real parsers run on every path; a
private "simple" format would test nothing a PSP ever sends. Layouts follow the intake adapters (and the
fixtures under ``tests/fixtures/settlement``); a round trip through the parser is tested per format.

Not production code paths: nothing here is called by the deployed functions.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
from collections.abc import Iterable, Sequence
from decimal import Decimal
from typing import Any

from shared.settlement.adapters.common import exponent, to_major
from shared.settlement.lines import LineType, Payout, SettlementLine

CET = dt.timezone(dt.timedelta(hours=1))


def _csv(header: Sequence[str], rows: Iterable[dict[str, str]]) -> bytes:
    out = io.StringIO()
    w = csv.DictWriter(out, fieldnames=list(header), lineterminator="\r\n")
    w.writeheader()
    w.writerows(rows)
    return out.getvalue().encode()


def _cols(header: str) -> list[str]:
    return header.split(",")


def _rate(line: SettlementLine) -> str:
    """Settlement major units per presentment major unit, to 10 places (Adyen's ``Exchange Rate``)."""
    assert line.presentment_currency
    assert line.presentment_amount
    settled = Decimal(line.gross).scaleb(-exponent(line.currency))
    presented = Decimal(line.presentment_amount).scaleb(-exponent(line.presentment_currency))
    return str((settled / presented).quantize(Decimal("1e-10")))


# -- Adyen: Settlement details report ---------------------------------------------------------------------
ADYEN_HEADER = _cols(
    "Company Account,Merchant Account,Psp Reference,Merchant Reference,Payment Method,Creation Date,TimeZone,Type,"
    "Modification Reference,Gross Currency,Gross Debit (GC),Gross Credit (GC),Exchange Rate,Net Currency,"
    "Net Debit (NC),Net Credit (NC),Commission (NC),Markup (NC),Scheme Fees (NC),Interchange (NC),"
    "Payment Method Variant,Modification Merchant Reference,Batch Number"
)
ADYEN_TYPES = {
    LineType.CAPTURE: "Settled",
    LineType.REFUND: "Refunded",
    LineType.CHARGEBACK: "Chargeback",
    LineType.CHARGEBACK_REVERSAL: "ChargebackReversed",
    LineType.FEE: "Fee",
    LineType.ADJUSTMENT: "DepositCorrection",
    LineType.PAYOUT: "MerchantPayout",
}
ADYEN_FEES = {
    "markup": "Markup (NC)",
    "fx_markup": "Markup (NC)",
    "scheme": "Scheme Fees (NC)",
    "scheme_fees": "Scheme Fees (NC)",
    "interchange": "Interchange (NC)",
}
# any other fee kind is Adyen's Commission


def adyen_report(
    lines: Iterable[SettlementLine], *, merchant: str = "DemoECOM", batch: int = 1, company: str = "DemoCompany"
) -> bytes:
    """A Settlement details report for one batch (payout id ``<merchant>:<batch>``); FEE lines become ``Fee``
    rows whose net debit is their fee total, a PAYOUT line the ``MerchantPayout`` row."""
    rows = []
    for ln in lines:
        nc = ln.currency
        row = dict.fromkeys(ADYEN_HEADER, "")
        row |= {
            "Company Account": company,
            "Merchant Account": merchant,
            "Batch Number": str(batch),
            "Type": ADYEN_TYPES[ln.type],
            "Net Currency": nc,
            "TimeZone": "CET",
            "Creation Date": ln.booked_at.astimezone(CET).strftime("%Y-%m-%d %H:%M:%S"),
        }
        net = to_major(abs(ln.net), nc)
        row["Net Debit (NC)" if ln.net < 0 else "Net Credit (NC)"] = net
        if ln.type is LineType.PAYOUT:
            row["Modification Reference"] = f"TX{batch} batch {batch}, {merchant}"
        elif ln.type in (LineType.FEE, LineType.ADJUSTMENT):
            row["Modification Reference"] = ln.line_id
        else:
            fees: dict[str, int] = {}
            for f in ln.fees:
                col = ADYEN_FEES.get(f.kind, "Commission (NC)")
                fees[col] = fees.get(col, 0) + f.amount
            row |= {col: to_major(v, nc) for col, v in fees.items()}
            row |= {
                "Psp Reference": ln.psp_payment_id or "",
                "Modification Reference": ln.psp_reference or "",
                "Merchant Reference": ln.our_reference or "",
                "Payment Method": "visa",
                "Payment Method Variant": "visaclassic",
            }
            gc, gross_gc, rate = nc, ln.gross, "1"
            if ln.presentment_currency and ln.presentment_amount:
                gc, gross_gc, rate = ln.presentment_currency, ln.presentment_amount, _rate(ln)
            row |= {"Gross Currency": gc, "Exchange Rate": rate}
            row["Gross Debit (GC)" if gross_gc < 0 else "Gross Credit (GC)"] = to_major(abs(gross_gc), gc)
        rows.append(row)
    return _csv(ADYEN_HEADER, rows)


# -- Checkout.com: settlement breakdown + payouts reports ------------------------------------------------
CHECKOUT_BREAKDOWN_HEADER = _cols(
    "Client Entity ID,Client Entity Name,Processing Channel ID,Processing Channel Name,Type,Payment ID,Reference,"
    "Processed On,Available On,Holding Currency,Payout ID,Gross In Holding Currency,Deduction In Holding Currency,"
    "Net In Holding Currency,Processing Fee In Holding Currency,Scheme Fee In Holding Currency,"
    "Interchange In Holding Currency,Tax In Holding Currency,Reserve In Holding Currency,Processing Currency,"
    "Gross In Processing Currency,FX Rate Applied,Payment Method"
)
CHECKOUT_PAYOUTS_HEADER = [
    "Client Entity ID",
    "Client Entity Name",
    "Payout ID",
    "Payout Date",
    "Holding Currency",
    "Payout Amount",
]
CHECKOUT_TYPES = {
    LineType.CAPTURE: "Charge",
    LineType.REFUND: "Refund",
    LineType.CHARGEBACK: "Chargeback",
    LineType.CHARGEBACK_REVERSAL: "Chargeback Reversal",
    LineType.FEE: "Merchant Payout",
    LineType.ADJUSTMENT: "Adjustment",
}
CHECKOUT_FEES = {
    "scheme": "Scheme Fee In Holding Currency",
    "interchange": "Interchange In Holding Currency",
    "tax": "Tax In Holding Currency",
}
# any other fee kind is the processing fee


def _eight(minor: int, code: str) -> str:
    return f"{Decimal(minor).scaleb(-exponent(code)):.8f}"


def checkout_breakdown(lines: Iterable[SettlementLine], *, entity: str = "ent_demo") -> bytes:
    """The settlement breakdown CSV: one row per financial action (PAYOUT lines are the payouts report's)."""
    rows = []
    for ln in lines:
        if ln.type is LineType.PAYOUT:
            continue
        code = ln.currency
        row = dict.fromkeys(CHECKOUT_BREAKDOWN_HEADER, "")
        fees: dict[str, int] = {}
        for f in ln.fees:
            col = CHECKOUT_FEES.get(f.kind, "Processing Fee In Holding Currency")
            fees[col] = fees.get(col, 0) + f.amount
        gross = 0 if ln.type is LineType.FEE else ln.gross
        row |= {
            "Client Entity ID": entity,
            "Client Entity Name": "Demo Ltd",
            "Type": CHECKOUT_TYPES[ln.type],
            "Payment ID": ln.psp_payment_id or "",
            "Reference": ln.our_reference or "",
            "Processed On": ln.booked_at.strftime("%Y-%m-%d %H:%M:%S"),
            "Holding Currency": code,
            "Payout ID": ln.payout_id or "",
            "Gross In Holding Currency": _eight(gross, code),
            "Deduction In Holding Currency": _eight(-(gross - ln.net), code),
            "Net In Holding Currency": _eight(ln.net, code),
            "Payment Method": "VISA",
        }
        row |= {col: _eight(-v, code) for col, v in fees.items()}
        if ln.presentment_currency and ln.presentment_amount is not None:
            pc = ln.presentment_currency
            row |= {
                "Processing Currency": pc,
                "Gross In Processing Currency": _eight(ln.presentment_amount, pc),
                "FX Rate Applied": str(ln.fx_rate or ""),
            }
        rows.append(row)
    return _csv(CHECKOUT_BREAKDOWN_HEADER, rows)


def checkout_payouts(payouts: Iterable[Payout], *, entity: str = "ent_demo") -> bytes:
    rows = [
        {
            "Client Entity ID": entity,
            "Client Entity Name": "Demo Ltd",
            "Payout ID": p.payout_id,
            "Payout Date": (p.arrival_date or dt.date(2026, 1, 1)).isoformat(),
            "Holding Currency": p.currency,
            "Payout Amount": _eight(p.amount, p.currency),
        }
        for p in payouts
    ]
    return _csv(CHECKOUT_PAYOUTS_HEADER, rows)


# -- Stripe: payouts and balance transactions as the API returns them -------------------------------------
STRIPE_CATEGORIES = {
    LineType.CAPTURE: ("charge", "charge"),
    LineType.REFUND: ("refund", "refund"),
    LineType.CHARGEBACK: ("dispute", "adjustment"),
    LineType.CHARGEBACK_REVERSAL: ("dispute_reversal", "adjustment"),
    LineType.FEE: ("fee", "stripe_fee"),
    LineType.ADJUSTMENT: ("other_adjustment", "adjustment"),
    LineType.PAYOUT: ("payout", "payout"),
}


def stripe_payout(p: Payout, arrival_at: dt.datetime | None = None) -> dict[str, Any]:
    """A paid automatic payout; ``arrival_date`` is midnight UTC of the payout's date unless given."""
    arrival = arrival_at or dt.datetime.combine(p.arrival_date or dt.date(2026, 1, 1), dt.time(0), dt.UTC)
    return {
        "id": p.payout_id,
        "object": "payout",
        "amount": p.amount,
        "currency": p.currency.lower(),
        "arrival_date": int(arrival.timestamp()),
        "automatic": True,
        "status": "paid",
        "method": "standard",
        "type": "bank_account",
        "trace_id": {"status": "supported", "value": f"TRACE{p.payout_id[-8:]}"},
    }


def stripe_balance_transaction(ln: SettlementLine) -> dict[str, Any]:
    """One balance transaction with its source expanded (``expand[]=data.source``), as the SDK pages it."""
    category, kind = STRIPE_CATEGORIES[ln.type]
    created = int(ln.booked_at.timestamp())
    fee = sum(f.amount for f in ln.fees)
    amount = -fee if ln.type is LineType.FEE else ln.gross
    source: Any = ln.payout_id if ln.type is LineType.PAYOUT else ln.psp_reference
    if ln.type not in (LineType.PAYOUT, LineType.FEE, LineType.ADJUSTMENT):
        pres_cur = (ln.presentment_currency or ln.currency).lower()
        pres = ln.presentment_amount if ln.presentment_amount is not None else ln.gross
        metadata = {k: v for k, v in (("invoice_id", ln.our_invoice_id), ("attempt_id", ln.our_reference)) if v}
        source = {
            "id": ln.psp_reference,
            "object": "charge" if kind == "charge" else kind,
            "payment_intent": ln.psp_payment_id,
            "amount": abs(pres),
            "currency": pres_cur,
            "metadata": metadata,
        }
    return {
        "id": ln.line_id,
        "object": "balance_transaction",
        "amount": amount,
        "fee": 0 if ln.type is LineType.FEE else fee,
        "net": ln.net,
        "currency": ln.currency.lower(),
        "reporting_category": category,
        "type": kind,
        "created": created,
        "available_on": created,
        "status": "available",
        "exchange_rate": None if ln.fx_rate is None else float(ln.fx_rate),
        "fee_details": [
            {"amount": f.amount, "currency": ln.currency.lower(), "type": f.kind, "description": f.kind}
            for f in ln.fees
        ]
        if ln.type is not LineType.FEE
        else [],
        "source": source,
    }
