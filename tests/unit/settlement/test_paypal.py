"""PayPal STL: record types, DR/CR direction, unsigned hundredths converted exactly per currency exponent."""

from __future__ import annotations

import csv
import io
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from shared.settlement.adapters import paypal
from shared.settlement.adapters.common import SettlementFormatError
from shared.settlement.lines import LineType

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures" / "settlement"
STL = FIXTURES / "paypal_STL-20260302.01.009.CSV"


def parse(data: bytes):
    return paypal.parse_report(data, account="default", source="STL-20260302.01.009.CSV")


def test_stl_body_rows_become_lines_with_direction_units_and_join_keys() -> None:
    batch = parse(STL.read_bytes())  # UTF-8 with BOM, quoted, CRLF: as PayPal writes it
    sale, yen, refund, chargeback, cb_fee, conv_out, conv_in, withdrawal = batch.lines
    assert (sale.type, sale.currency, sale.gross, sale.net, sale.line_id) == (
        LineType.CAPTURE,
        "USD",
        2999,
        2882,
        "5TY05013RG002845M",
    )
    assert [(f.kind, f.amount) for f in sale.fees] == [("paypal_fee", 117)]
    assert (sale.psp_payment_id, sale.our_invoice_id, sale.our_reference) == (
        "5TY05013RG002845M",
        "inv_3001",
        "inv_3001:1",
    )
    assert sale.booked_at.isoformat() == "2026-03-02T17:14:05+00:00"
    assert (yen.currency, yen.gross, yen.net) == ("JPY", 5000, 4775)  # 500000 hundredths = 5000 yen
    assert (refund.type, refund.gross, refund.net, refund.psp_payment_id) == (
        LineType.REFUND,
        -1000,
        -961,  # the fee is partly refunded: a CR fee is a negative fee
        "5TY05013RG002845M",
    )
    assert (chargeback.type, chargeback.gross, chargeback.psp_payment_id) == (
        LineType.CHARGEBACK,
        -4999,
        "3HQ22222YY333333E",
    )
    assert (cb_fee.type, cb_fee.gross, cb_fee.net, cb_fee.fees[0].kind) == (LineType.FEE, 0, -2000, "paypal_T0106")
    assert (conv_out.currency, conv_out.gross, conv_in.currency, conv_in.gross) == ("JPY", -5000, "USD", 3327)
    assert {conv_out.type, conv_in.type} == {LineType.ADJUSTMENT}
    assert (withdrawal.type, withdrawal.gross, withdrawal.payout_id) == (LineType.PAYOUT, -20000, "8WD99999UU000000J")
    (payout,) = batch.payouts
    assert (payout.payout_id, payout.amount, payout.currency) == ("8WD99999UU000000J", 20000, "USD")


def _edit(index: int, column: str, value: str) -> bytes:
    """The fixture with one body cell replaced (``index`` counts SB rows from 0)."""
    rows = list(csv.reader(io.StringIO(STL.read_text(encoding="utf-8-sig"))))
    names = next(r for r in rows if r[0] == "CH")
    body = [r for r in rows if r[0] == "SB"]
    body[index][names.index(column)] = value
    out = io.StringIO()
    csv.writer(out).writerows(rows)
    return out.getvalue().encode()


@pytest.mark.parametrize(
    ("index", "column", "value", "message"),
    [
        (0, "Transaction  Debit or Credit", "XX", "DR or CR"),
        (0, "Gross Transaction Amount", "29.99", "unsigned integer"),
        (0, "Gross Transaction Amount", "-2999", "unsigned integer"),
        (1, "Gross Transaction Amount", "500050", "more decimals than JPY"),
        (0, "Fee Currency", "EUR", "another currency"),
        (0, "Transaction Event Code", "X0006", "T-code"),
        (0, "Transaction Completion Date", "2026-03-02T09:14:05Z", "YYYY/MM/DD"),
        (0, "Gross Transaction Currency", "BTC", "unknown currency"),
        (0, "Transaction ID", "", "missing"),
    ],
)
def test_malformed_body_rows_refuse_the_file_with_row_and_field(
    index: int, column: str, value: str, message: str
) -> None:
    with pytest.raises(SettlementFormatError, match=message) as err:
        parse(_edit(index, column, value))
    assert err.value.row == 5 + index


def test_structure_errors() -> None:
    content = STL.read_text(encoding="utf-8-sig")
    ch = next(line for line in content.splitlines() if line.startswith('"CH"'))
    with pytest.raises(SettlementFormatError, match="before the column header"):
        parse(content.replace(ch + "\n", "").encode())
    with pytest.raises(SettlementFormatError, match="unknown record type"):
        parse(content.replace('"FH",1', '"ZZ",1').encode())
    with pytest.raises(SettlementFormatError, match="no column header"):
        parse(b'"RH","2026/03/03 02:06:06 -0800"\r\n')


CH = ["Transaction ID", "Invoice ID", "PayPal Reference ID", "PayPal Reference ID Type", "Transaction Event Code"]
CH += ["Transaction Initiation Date", "Transaction Completion Date", "Transaction Debit or Credit"]
CH += ["Gross Transaction Amount", "Gross Transaction Currency", "Fee Debit or Credit", "Fee Amount", "Fee Currency"]
row_st = st.tuples(
    st.sampled_from(["T0006", "T1107", "T0100", "T1201", "T0200"]),
    st.sampled_from(["DR", "CR"]),
    st.integers(0, 10**12),
    st.sampled_from(["DR", "CR"]),
    st.integers(0, 10**6),
    st.sampled_from(["USD", "EUR", "GBP"]),
)


@given(st.lists(row_st, max_size=20))
def test_property_signed_sums_match_the_cr_minus_dr_totals(rows: list[tuple[str, str, int, str, int, str]]) -> None:
    out = io.StringIO()
    w = csv.writer(out, quoting=csv.QUOTE_ALL)
    w.writerow(["CH", *CH])
    expected: dict[str, int] = {}
    for i, (code, dc, gross, fdc, fee, cur) in enumerate(rows):
        t = "2026/03/02 10:00:00 +0000"
        w.writerow(["SB", f"TXN{i:014d}", "", "", "", code, t, t, dc, gross, cur, fdc, fee, cur])
        signed = (gross if dc == "CR" else -gross) + (fee if fdc == "CR" else -fee)
        expected[cur] = expected.get(cur, 0) + signed
    batch = parse(out.getvalue().encode())
    got: dict[str, int] = {}
    for ln in batch.lines:
        assert ln.net == ln.gross - sum(f.amount for f in ln.fees)
        got[ln.currency] = got.get(ln.currency, 0) + ln.net
    assert {k: v for k, v in got.items() if v} == {k: v for k, v in expected.items() if v}
