"""GoCardless payout items: string amounts in tenths of a minor unit, exact until the payout sum, then rounded."""

from __future__ import annotations

import copy
import json
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from shared.settlement.adapters import gocardless
from shared.settlement.adapters.common import SettlementFormatError
from shared.settlement.lines import LineType

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures" / "settlement"


def payout() -> dict[str, Any]:
    first: dict[str, Any] = json.loads((FIXTURES / "gocardless_payouts.json").read_text())["payouts"][0]
    return first


def items() -> list[dict[str, Any]]:
    pages = ("gocardless_payout_items_page1.json", "gocardless_payout_items_page2.json")
    return [i for p in pages for i in json.loads((FIXTURES / p).read_text())["payout_items"]]


def test_items_become_payment_lines_with_their_fees_and_a_rounding_line_closes_the_payout() -> None:
    lines = gocardless.lines_from_items(payout(), items(), account="uk")
    paid, paid2, refund, chargeback, rounding = lines
    assert (paid.type, paid.gross, paid.net, paid.psp_payment_id) == (LineType.CAPTURE, 1000, 970, "PM00AAAA111111")
    assert [(f.kind, f.amount) for f in paid.fees] == [("gocardless_fee", 20), ("app_fee", 10)]  # -20.4 -> 20
    assert [(f.kind, f.amount) for f in paid2.fees] == [("gocardless_fee", 26)]  # -26.3 -> 26
    assert (refund.type, refund.gross, refund.psp_reference, refund.psp_payment_id) == (
        LineType.REFUND,
        -500,
        "RF00CCCC333333",
        "PM00CCCC333333",
    )
    assert (chargeback.type, chargeback.gross, chargeback.net) == (LineType.CHARGEBACK, -1500, -1630)
    assert [(f.kind, f.amount) for f in chargeback.fees] == [("gocardless_fee", -20), ("surcharge_fee", 150)]
    # exact item sum 1313.3 -> payout 1313; rounded lines sum to 1314, the rounding line takes the -1
    assert (rounding.line_id, rounding.type, rounding.gross) == ("PO0000ABCD1234:rounding", LineType.ADJUSTMENT, -1)
    assert sum(ln.net for ln in lines) == payout()["amount"] == 1313
    assert {ln.payout_id for ln in lines} == {"PO0000ABCD1234"}
    assert paid.booked_at.isoformat() == "2026-03-04T09:12:31+00:00"
    assert len({ln.line_id for ln in lines}) == len(lines)


def test_a_payout_more_than_one_unit_off_its_items_gets_no_rounding_line() -> None:
    po = payout() | {"amount": 1320}
    lines = gocardless.lines_from_items(po, items(), account="uk")
    assert all(ln.line_id != "PO0000ABCD1234:rounding" for ln in lines)
    assert sum(ln.net for ln in lines) == 1314  # the 6-unit gap stays visible to reconciliation


def test_a_fee_whose_payment_is_not_in_the_payout_is_its_own_fee_line() -> None:
    fee = {"amount": "-45.5", "type": "gocardless_fee", "links": {"payment": "PM00ZZZZ999999"}}
    lines = gocardless.lines_from_items(payout() | {"amount": -46}, [fee], account="uk")
    (line,) = lines  # -45.5 rounds half-even to -46: no rounding line needed
    assert (line.type, line.gross, line.net, line.psp_payment_id) == (LineType.FEE, 0, -46, "PM00ZZZZ999999")


@pytest.mark.parametrize(
    ("index", "value", "message"),
    [
        (0, "1000.05", "more than one decimal"),
        (0, "-1000.0", "payment_paid_out must be positive"),
        (5, "500.0", "payment_refunded must be negative"),
        (0, "1e3", "not a plain decimal"),
        (0, 1000.0, "float"),
        (0, "NaN", "not a plain decimal"),
    ],
)
def test_malformed_items_are_refused_naming_payout_and_item(index: int, value: object, message: str) -> None:
    data = copy.deepcopy(items())
    data[index]["amount"] = value
    with pytest.raises(SettlementFormatError, match=message) as err:
        gocardless.lines_from_items(payout(), data, account="uk")
    assert (err.value.source, err.value.row) == ("gocardless:payout_items?payout=PO0000ABCD1234", index + 1)


tenths = st.integers(-(10**8), 10**8).map(lambda n: Decimal(n).scaleb(-1))
item_st = st.tuples(st.sampled_from(sorted(gocardless.TYPES)), tenths, st.sampled_from(["PM1", "PM2", "PM3"]))


@given(st.lists(item_st, max_size=25))
def test_property_lines_sum_exactly_to_the_rounded_item_total(drawn: list[tuple[str, Decimal, str]]) -> None:
    data: list[dict[str, Any]] = []
    exact = Decimal(0)
    for kind, drawn_amount, pm in drawn:
        sign = gocardless.TYPES[kind][1]
        value = abs(drawn_amount) * sign if sign else drawn_amount
        exact += value
        data.append({"type": kind, "amount": f"{value:.1f}", "links": {"payment": pm}})
    for rounding in ("ROUND_HALF_UP", "ROUND_HALF_EVEN", "ROUND_FLOOR", "ROUND_CEILING"):
        total = int(exact.to_integral_value(rounding=rounding))  # whichever rule GoCardless applies
        lines = gocardless.lines_from_items(payout() | {"amount": total}, data, account="uk")
        assert sum(ln.net for ln in lines) == total
        rounding_lines = [ln for ln in lines if ln.line_id.endswith(":rounding")]
        assert all(abs(ln.gross) <= len(data) for ln in rounding_lines)
        for ln in lines:
            assert ln.net == ln.gross - sum(f.amount for f in ln.fees)
