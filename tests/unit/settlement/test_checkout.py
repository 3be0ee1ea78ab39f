"""Checkout.com breakdown + payouts reports: 8-decimal amounts, fee columns, the rounding line (1 minor unit)."""

from __future__ import annotations

import csv
import io
from decimal import Decimal
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from shared.settlement.adapters import checkout
from shared.settlement.adapters.common import SettlementFormatError
from shared.settlement.lines import LineType

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures" / "settlement"
BREAKDOWN = FIXTURES / "checkout_settlement-breakdown_ent_acme_20260302.csv"
PAYOUTS = FIXTURES / "checkout_payouts_ent_acme_20260302.csv"
PAYOUT = "po_3bq5k7x2ld2ezbwhjgkq4u7vsy"


def both() -> list[tuple[str, bytes]]:
    return [(BREAKDOWN.name, BREAKDOWN.read_bytes()), (PAYOUTS.name, PAYOUTS.read_bytes())]


def test_breakdown_rows_with_fee_components_and_a_rounding_line_closing_the_payout() -> None:
    batch = checkout.parse_files(both(), account="default")
    charge, fx, refund, chargeback, payout_fee, rounding = batch.lines
    assert (charge.type, charge.gross, charge.net, charge.psp_payment_id, charge.our_reference) == (
        LineType.CAPTURE,
        10000,
        9855,
        "pay_wlu3wxc26jounofs5iez75qaqa",
        "inv_5001:1",
    )
    assert [(f.kind, f.amount) for f in charge.fees] == [
        ("processing_fee", 95),
        ("scheme_fee", 20),
        ("interchange", 30),
    ]
    assert (fx.gross, fx.presentment_currency, fx.presentment_amount, fx.fx_rate) == (
        4592,
        "USD",
        5000,
        Decimal("0.91845000"),
    )
    assert (refund.type, refund.gross, refund.net) == (LineType.REFUND, -2000, -2010)
    assert (chargeback.type, chargeback.net) == (LineType.CHARGEBACK, -4500)
    assert (payout_fee.type, payout_fee.gross, payout_fee.net) == (LineType.FEE, 0, -250)
    # exact nets sum to 76.18715856; the payout is 76.19; rounded lines sum to 76.18: one unit of rounding
    assert (rounding.line_id, rounding.type, rounding.gross) == (f"{PAYOUT}:rounding", LineType.ADJUSTMENT, 1)
    (payout,) = batch.payouts
    assert (payout.payout_id, payout.amount, payout.arrival_date.isoformat()) == (PAYOUT, 7619, "2026-03-04")  # type: ignore[union-attr]
    assert sum(ln.net for ln in batch.lines) == payout.amount
    assert charge.booked_at.isoformat() == "2026-03-02T10:15:22+00:00"


def test_one_file_alone_yields_its_part_and_no_rounding_line() -> None:
    lines_only = checkout.parse_report(BREAKDOWN.read_bytes(), account="default", source=BREAKDOWN.name)
    assert (len(lines_only.lines), lines_only.payouts) == (5, ())
    payouts_only = checkout.parse_report(PAYOUTS.read_bytes(), account="default", source=PAYOUTS.name)
    assert (payouts_only.lines, payouts_only.payouts[0].amount) == ((), 7619)


def test_a_payout_more_than_one_unit_off_gets_no_rounding_line() -> None:
    files = [both()[0], (PAYOUTS.name, PAYOUTS.read_bytes().replace(b"76.19", b"76.25"))]
    batch = checkout.parse_files(files, account="default")
    assert all(not ln.line_id.endswith(":rounding") for ln in batch.lines)


def _edit(row: int, column: str, value: str) -> bytes:
    rows = list(csv.reader(io.StringIO(BREAKDOWN.read_text())))
    rows[row][rows[0].index(column)] = value
    out = io.StringIO()
    csv.writer(out, lineterminator="\n").writerows(rows)
    return out.getvalue().encode()


@pytest.mark.parametrize(
    ("row", "column", "value", "message"),
    [
        (1, "Net In Holding Currency", "98.56349606", "is not gross"),
        (1, "Deduction In Holding Currency", "1.44650394", "deductions are negative"),
        (1, "Scheme Fee In Holding Currency", "0.19526938", "fee columns are negative"),
        (1, "Gross In Holding Currency", "100.000000001", "not a plain decimal"),
        (1, "Gross In Holding Currency", "1E+2", "not a plain decimal"),
        (1, "Net In Holding Currency", "inf", "not a plain decimal"),
        (1, "Holding Currency", "EUX", "unknown currency"),
        (1, "Processed On", "yesterday", "timestamp"),
    ],
)
def test_malformed_rows_are_refused_with_row_and_field(row: int, column: str, value: str, message: str) -> None:
    with pytest.raises(SettlementFormatError, match=message) as err:
        checkout.parse_report(_edit(row, column, value), account="default", source=BREAKDOWN.name)
    assert err.value.row == row + 1


def test_an_unknown_header_is_refused() -> None:
    with pytest.raises(SettlementFormatError, match="neither a settlement breakdown nor a payouts"):
        checkout.parse_report(b"Payment ID,Amount\npay_1,1.00\n", account="default", source="payments.csv")


eight_dp = st.integers(0, 10**12).map(lambda n: Decimal(n).scaleb(-8))
row_st = st.tuples(st.sampled_from(["Charge", "Refund", "Chargeback"]), eight_dp, eight_dp, eight_dp)
HEADER = ["Type", "Payment ID", "Reference", "Processed On", "Holding Currency", "Payout ID"]
HEADER += ["Gross In Holding Currency", "Deduction In Holding Currency", "Net In Holding Currency"]
HEADER += ["Processing Fee In Holding Currency", "Scheme Fee In Holding Currency"]


@given(st.lists(row_st, min_size=1, max_size=30), st.sampled_from(["EUR", "JPY", "KWD"]))
def test_property_lines_close_any_payout_that_is_a_rounding_of_the_exact_nets(
    rows: list[tuple[str, Decimal, Decimal, Decimal]], code: str
) -> None:
    out = io.StringIO()
    w = csv.writer(out)
    w.writerow(HEADER)
    exact = Decimal(0)
    for i, (kind, gross, fee1, fee2) in enumerate(rows):
        signed = gross if kind == "Charge" else -gross
        net = signed - fee1 - fee2
        exact += net
        amounts = [f"{v:f}" for v in (signed, -fee1 - fee2, net, -fee1, -fee2)]
        w.writerow([kind, f"pay_{i}", "", "2026-03-02 10:00:00", code, "po_x", *amounts])
    breakdown = out.getvalue().encode()
    for rounding in ("ROUND_HALF_UP", "ROUND_FLOOR", "ROUND_CEILING"):
        exp = {"EUR": 2, "JPY": 0, "KWD": 3}[code]
        amount = exact.quantize(Decimal(1).scaleb(-exp), rounding=rounding)
        payouts = f"Payout ID,Payout Date,Holding Currency,Payout Amount\npo_x,2026-03-04,{code},{amount:f}\n".encode()
        batch = checkout.parse_files([("b.csv", breakdown), ("p.csv", payouts)], account="default")
        assert sum(ln.net for ln in batch.lines) == batch.payouts[0].amount
        for ln in batch.lines:
            assert ln.net == ln.gross - sum(f.amount for f in ln.fees)
