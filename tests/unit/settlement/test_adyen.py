"""Adyen Settlement details report: header-parsed, Debit/Credit direction, fee columns split, batch payout."""

from __future__ import annotations

import csv
import io
from decimal import Decimal
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from shared.settlement.adapters import adyen
from shared.settlement.adapters.common import SettlementFormatError
from shared.settlement.lines import LineType

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures" / "settlement"
BATCH_42 = FIXTURES / "adyen_settlement_detail_report_batch_42.csv"
BATCH_43 = FIXTURES / "adyen_settlement_detail_report_batch_43_2025_layout.csv"


def parse(data: bytes, source: str = "settlement_detail_report_batch_42.csv"):
    return adyen.parse_report(data, account="eu", source=source)


def test_batch_file_lines_signs_fees_and_payout() -> None:
    batch = parse(BATCH_42.read_bytes())
    by_type = {(ln.type, ln.psp_reference): ln for ln in batch.lines}
    settled = by_type[(LineType.CAPTURE, "8816178952380571")]
    assert (settled.psp_payment_id, settled.our_reference, settled.currency) == (
        "8816178952380553",
        "inv_1001:1",
        "EUR",
    )
    assert (settled.gross, settled.net) == (10000, 9715)
    assert [(f.kind, f.amount) for f in settled.fees] == [("markup", 35), ("scheme_fees", 20), ("interchange", 230)]
    assert settled.booked_at.isoformat() == "2026-03-02T09:15:22+00:00"  # CET
    fx = by_type[(LineType.CAPTURE, "8816178952380830")]
    assert (fx.presentment_currency, fx.presentment_amount, fx.fx_rate) == ("GBP", 5000, Decimal("1.1723"))
    assert (fx.gross, fx.net) == (5862, 5747)  # settlement gross = net + fees; GBP 50.00 x 1.1723 = 58.615
    refund = by_type[(LineType.REFUND, "8826178952399001")]
    assert (refund.gross, refund.net, refund.our_reference) == (-2000, -2010, "refund-inv_1001")
    chargeback = by_type[(LineType.CHARGEBACK, "8836171234569999")]
    assert (chargeback.gross, chargeback.net) == (-34999, -35749)
    assert [(f.kind, f.amount) for f in chargeback.fees] == [("commission", 750)]
    reversal = by_type[(LineType.CHARGEBACK_REVERSAL, "8836171234569999")]
    assert (reversal.gross, reversal.net) == (34999, 34999)
    fees = [ln for ln in batch.lines if ln.type is LineType.FEE]
    assert [(f.gross, f.net, f.fees[0].kind, f.psp_payment_id) for f in fees] == [
        (0, -1250, "adyen_Fee", None),
        (0, -2500, "adyen_InvoiceDeduction", None),
    ]
    (payout,) = batch.payouts
    assert (payout.payout_id, payout.amount, payout.currency) == ("AcmeECOM:42", 9452, "EUR")
    assert payout.bank_reference == "TX4711 batch 42, AcmeECOM"
    (payout_line,) = [ln for ln in batch.lines if ln.type is LineType.PAYOUT]
    assert payout_line.gross == payout_line.net == -9452
    assert {ln.payout_id for ln in batch.lines} == {"AcmeECOM:42"}
    assert sum(ln.net for ln in batch.lines if ln.type is not LineType.PAYOUT) == payout.amount
    assert all(ln.account == "eu" and ln.psp == "adyen" for ln in batch.lines)
    assert len({ln.key() for ln in batch.lines}) == len(batch.lines)
    assert batch.lines[3].source == "settlement_detail_report_batch_42.csv#5"


def test_2025_layout_is_read_by_header_and_payment_fees_total_is_not_added_again() -> None:
    batch = parse(BATCH_43.read_bytes(), BATCH_43.name)
    capture, payout_line = batch.lines
    assert (capture.gross, capture.net, capture.presentment_amount, capture.presentment_currency) == (
        11040,
        10776,
        12000,
        "USD",
    )
    assert sum(f.amount for f in capture.fees) == 264  # Payment Fees (NC) 2.64 is the total, not a 4th fee
    assert capture.booked_at.isoformat() == "2026-04-01T15:20:00+00:00"  # Europe/Amsterdam in summer
    assert batch.payouts[0].amount == 10776 == -payout_line.gross


def _with(row_no: int, column: str, value: str, path: Path = BATCH_42) -> bytes:
    rows = list(csv.reader(io.StringIO(path.read_text())))
    rows[row_no][rows[0].index(column)] = value
    out = io.StringIO()
    csv.writer(out, lineterminator="\n").writerows(rows)
    return out.getvalue().encode()


@pytest.mark.parametrize(
    ("row_no", "column", "value", "message"),
    [
        (1, "Net Debit (NC)", "97.15", "both debit and credit"),
        (1, "Net Credit (NC)", "-97.15", "unsigned"),
        (1, "Net Credit (NC)", "97.1500001", "more decimals than EUR"),
        (1, "Net Credit (NC)", "1e2", "not a plain decimal"),
        (2, "Exchange Rate", "1.5", "disagrees"),
        (1, "TimeZone", "CST", "unknown time zone"),
        (1, "Creation Date", "02/03/2026 10:15", "YYYY-MM-DD"),
        (1, "Net Currency", "EURO", "unknown currency"),
        (1, "Batch Number", "42; DROP", "batch number"),
        (9, "Markup (NC)", "0.10", "MerchantPayout"),
        (1, "Merchant Reference", "inv\x00", "NUL"),
        (1, "Merchant Reference", "x" * 300, "too long"),
    ],
)
def test_hostile_or_malformed_rows_refuse_the_whole_file_naming_row_and_field(
    row_no: int, column: str, value: str, message: str
) -> None:
    with pytest.raises(SettlementFormatError, match=message) as err:
        parse(_with(row_no, column, value))
    if message != "NUL":
        assert err.value.row == row_no + 1


def test_missing_columns_are_refused() -> None:
    text = BATCH_42.read_text().replace("Net Credit (NC)", "Net Kredit (NC)")
    with pytest.raises(SettlementFormatError, match=r"missing columns \['Net Credit \(NC\)'\]"):
        parse(text.encode())


HEADER = ["Merchant Account", "Psp Reference", "Merchant Reference", "Creation Date", "TimeZone", "Type"]
HEADER += ["Modification Reference", "Gross Currency", "Gross Debit (GC)", "Gross Credit (GC)", "Exchange Rate"]
HEADER += ["Net Currency", "Net Debit (NC)", "Net Credit (NC)", "Commission (NC)", "Markup (NC)"]
HEADER += ["Scheme Fees (NC)", "Interchange (NC)", "Batch Number"]
amounts = st.integers(0, 10**9)
row_st = st.tuples(st.sampled_from(["Settled", "Refunded", "Chargeback", "Fee", "DepositCorrection"]), amounts, amounts)


def _major(minor: int) -> str:
    return f"{Decimal(minor).scaleb(-2):.2f}"


def _row(**cells: str) -> list[str]:
    base = {"Merchant Account": "M", "Creation Date": "2026-01-01 00:00:00", "TimeZone": "UTC", "Batch Number": "7"}
    base |= {"Exchange Rate": "1", "Net Currency": "EUR", "Gross Currency": "EUR"}
    return [(base | cells).get(name, "") for name in HEADER]


@settings(max_examples=60)
@given(st.lists(row_st, max_size=20))
def test_property_payout_is_the_sum_of_its_lines_and_each_line_nets(rows: list[tuple[str, int, int]]) -> None:
    out = io.StringIO()
    w = csv.writer(out)
    w.writerow(HEADER)
    total = 0
    for i, (journal, gross, drawn_fee) in enumerate(rows):
        credit = journal in ("Settled", "DepositCorrection")
        fee = 0 if journal in ("Fee", "DepositCorrection") else drawn_fee
        net = gross - fee if credit else -(gross + fee)
        total += net
        cells = {"Type": journal, "Modification Reference": f"m{i}", "Commission (NC)": _major(fee) if fee else ""}
        cells["Net Debit (NC)" if net < 0 else "Net Credit (NC)"] = _major(abs(net))
        if journal not in ("Fee", "DepositCorrection"):
            cells["Psp Reference"] = f"P{i:015d}"
            cells["Gross Credit (GC)" if credit else "Gross Debit (GC)"] = _major(gross)
        w.writerow(_row(**cells))
    if total <= 0:
        return  # a negative batch carries over instead of paying out
    w.writerow(_row(Type="MerchantPayout", **{"Modification Reference": "TX batch 7", "Net Debit (NC)": _major(total)}))
    batch = parse(out.getvalue().encode())
    for ln in batch.lines:
        assert ln.net == ln.gross - sum(f.amount for f in ln.fees)
    (payout,) = batch.payouts
    assert payout.amount == sum(ln.net for ln in batch.lines if ln.type is not LineType.PAYOUT) == total
    assert len(batch.lines) == len(rows) + 1
