"""Stripe: balance transactions (API, signed int minor units) and the payout reconciliation CSV (decimal major)."""

from __future__ import annotations

import copy
import json
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from shared.settlement.adapters import stripe
from shared.settlement.adapters.common import SettlementFormatError
from shared.settlement.lines import LineType

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures" / "settlement"
PAYOUT = "po_1QxC9zLkdIwHu7ixPAYOUT01"
REPORT = FIXTURES / "stripe_payout_reconciliation_itemized_po_1QxC9z.csv"


def txns() -> list[dict[str, Any]]:
    pages = ("stripe_balance_transactions_page1.json", "stripe_balance_transactions_page2.json")
    return [t for p in pages for t in json.loads((FIXTURES / p).read_text())["data"]]


def test_balance_transactions_become_lines_with_fee_components_fx_and_join_keys() -> None:
    lines = stripe.lines_from_api(txns(), account="default", payout_id=PAYOUT)
    charge, fx, refund, dispute, charge2, payout = lines
    assert (charge.type, charge.gross, charge.net, charge.line_id) == (
        LineType.CAPTURE,
        1099,
        1042,
        "txn_3QxA1bLkdIwHu7ix0AAAAAA1",
    )
    assert [(f.kind, f.amount) for f in charge.fees] == [("stripe_fee", 48), ("tax", 9)]
    assert (charge.psp_reference, charge.psp_payment_id) == (
        "ch_3QxA1bLkdIwHu7ix1ch00001",
        "pi_3QxA1bLkdIwHu7ix1pi00001",
    )
    assert (charge.our_invoice_id, charge.our_reference) == ("inv_42", "inv_42:1")
    assert charge.booked_at.isoformat() == "2026-03-02T01:00:00+00:00"
    assert charge.available_at is not None
    assert (fx.presentment_currency, fx.presentment_amount, fx.fx_rate, fx.currency) == (
        "USD",
        2000,
        Decimal("0.918"),
        "EUR",
    )
    assert (refund.type, refund.gross, refund.psp_payment_id) == (LineType.REFUND, -500, "pi_3QxA1bLkdIwHu7ix1pi00001")
    assert (dispute.type, dispute.gross, dispute.net, dispute.psp_reference) == (
        LineType.CHARGEBACK,
        -1099,
        -2599,
        "du_1QxA1bLkdIwHu7ixdu000001",
    )
    assert [(f.kind, f.amount) for f in charge2.fees] == [("fee", 95)]  # a total without fee_details
    assert (payout.type, payout.gross, payout.fees) == (LineType.PAYOUT, -4599, ())
    assert {ln.payout_id for ln in lines} == {PAYOUT}
    assert sum(ln.net for ln in lines if ln.type is not LineType.PAYOUT) == -payout.gross == 4599


@pytest.mark.parametrize(
    ("index", "field", "value", "message"),
    [
        (0, "amount", 10.99, "not an integer"),
        (0, "net", 1043, "net must equal gross minus the fees"),
        (0, "fee", 60, "fee_details do not sum"),
        (0, "currency", "eur;", "unknown currency"),
        (1, "exchange_rate", "NaN", "exchange rate"),
        (0, "created", "yesterday", "unix timestamp"),
        (0, "id", None, "missing"),
    ],
)
def test_malformed_transactions_are_refused_naming_the_transaction(
    index: int, field: str, value: object, message: str
) -> None:
    data = copy.deepcopy(txns())
    data[index][field] = value
    with pytest.raises(SettlementFormatError, match=message) as err:
        stripe.lines_from_api(data, account="default", payout_id=PAYOUT)
    assert err.value.source.startswith(f"stripe:balance_transactions?payout={PAYOUT}#")


def test_an_unknown_reporting_category_is_an_adjustment_not_an_abort() -> None:
    data = copy.deepcopy(txns())
    data[0]["reporting_category"] = "climate_order_purchase"
    assert stripe.lines_from_api(data, account="default", payout_id=PAYOUT)[0].type is LineType.ADJUSTMENT


@given(
    st.lists(
        st.tuples(st.integers(-(10**9), 10**9), st.lists(st.integers(0, 10**6), max_size=3)),
        min_size=1,
        max_size=15,
    )
)
def test_property_payout_equals_the_sum_of_its_transactions(drawn: list[tuple[int, list[int]]]) -> None:
    data = []
    for i, (amount, fee_parts) in enumerate(drawn):
        fee = sum(fee_parts)
        details = [{"amount": a, "currency": "eur", "type": f"k{j}"} for j, a in enumerate(fee_parts)]
        data.append(
            {"id": f"txn_{i}", "amount": amount, "fee": fee, "net": amount - fee, "currency": "eur"}
            | {"fee_details": details, "reporting_category": "charge", "created": 1772409600, "source": f"ch_{i}"}
        )
    total = sum(amount - sum(parts) for amount, parts in drawn)
    data.append({"id": "txn_po", "amount": -total, "fee": 0, "net": -total, "currency": "eur", "fee_details": []})
    data[-1] |= {"reporting_category": "payout", "created": 1772409600, "source": "po_1"}
    lines = stripe.lines_from_api(data, account="default", payout_id="po_1")
    for ln in lines:
        assert ln.net == ln.gross - sum(f.amount for f in ln.fees)
    assert sum(ln.net for ln in lines if ln.type is not LineType.PAYOUT) == -lines[-1].gross


def test_payout_reconciliation_report_csv() -> None:
    batch = stripe.parse_report(REPORT.read_bytes(), account="default", source=REPORT.name)
    api = {ln.line_id: ln for ln in stripe.lines_from_api(txns(), account="default", payout_id=PAYOUT)}
    assert len(batch.lines) == 5
    for ln in batch.lines:  # the same money as the API, whichever source arrives
        twin = api[ln.line_id]
        assert (ln.type, ln.gross, ln.net, ln.currency, ln.payout_id, ln.psp_payment_id) == (
            twin.type,
            twin.gross,
            twin.net,
            twin.currency,
            twin.payout_id,
            twin.psp_payment_id,
        )
        assert sum(f.amount for f in ln.fees) == sum(f.amount for f in twin.fees)
        assert ln.booked_at == twin.booked_at
    first = batch.lines[0]
    assert (first.our_invoice_id, first.our_reference, first.psp_reference) == (
        "inv_42",
        "inv_42:1",
        "ch_3QxA1bLkdIwHu7ix1ch00001",
    )
    assert (batch.lines[1].presentment_currency, batch.lines[1].presentment_amount) == ("USD", 2000)
    assert (batch.lines[2].presentment_amount, batch.lines[3].presentment_amount) == (-500, None)


@pytest.mark.parametrize(
    ("old", "new", "message"),
    [
        ("10.99,0.57,10.42", "10.99,0.57,10.43", "net must equal"),
        ("10.99,0.57,10.42", "10.999,0.57,10.429", "more decimals"),
        ("10.99,0.57,10.42", "1099e-2,0.57,10.42", "not a plain decimal"),
        ("2026-03-02 01:00:00,2026-03-04 01:00:00", "02/03/2026,2026-03-04 01:00:00", "UTC timestamp"),
    ],
)
def test_malformed_report_rows_are_refused_with_row_and_field(old: str, new: str, message: str) -> None:
    data = REPORT.read_text().replace(old, new, 1).encode()
    with pytest.raises(SettlementFormatError, match=message) as err:
        stripe.parse_report(data, account="default", source=REPORT.name)
    assert err.value.row == 2
