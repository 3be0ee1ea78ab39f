"""Braintree disbursed transactions (the SDK's own XML parsing): settlement side, sign by type, FX kept."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import braintree
import pytest
from braintree.util.xml_util import XmlUtil

from shared.settlement.adapters import braintree as adapter
from shared.settlement.adapters.common import SettlementFormatError

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures" / "settlement"


def transactions(page: str = "braintree_advanced_search_page1.xml", **changes: str) -> list[Any]:
    raw = (FIXTURES / page).read_text()
    for old, new in changes.items():
        raw = raw.replace(old, new, 1)
    parsed = XmlUtil.dict_from_xml(raw)["credit_card_transactions"]["transaction"]
    return [braintree.Transaction(None, t) for t in (parsed if isinstance(parsed, list) else [parsed])]


def test_disbursed_transactions_are_lines_in_the_settlement_currency() -> None:
    sale, fx = adapter.lines_from_transactions(transactions(), account="us")
    assert (sale.gross, sale.net, sale.fees, sale.currency, sale.payout_id) == (
        4900,
        4900,
        (),
        "EUR",
        "acme_eur:2026-03-03",
    )
    assert (fx.gross, fx.presentment_currency, fx.presentment_amount, str(fx.fx_rate)) == (2295, "USD", 2500, "0.918")
    assert sale.booked_at.isoformat() == "2026-03-01T10:12:13+00:00"
    assert fx.available_at is not None
    assert fx.available_at.isoformat() == "2026-03-03T00:00:00+00:00"
    (refund,) = adapter.lines_from_transactions(transactions("braintree_advanced_search_page2.xml"), account="us")
    assert (refund.gross, refund.psp_reference, refund.psp_payment_id) == (-1000, "p4n6t0ve", "k7m2q9xr")


@pytest.mark.parametrize(
    ("old", "new", "message"),
    [
        ("<settlement-amount>49.00</settlement-amount>", "<settlement-amount>NaN</settlement-amount>", "plain decimal"),
        ("<settlement-amount>49.00</settlement-amount>", "<settlement-amount>49.001</settlement-amount>", "decimals"),
        ("<settlement-amount>49.00</settlement-amount>", "<settlement-amount>48.00</settlement-amount>", "differs"),
        ("<type>sale</type>", "<type>payout</type>", "unknown transaction type"),
        ("<settlement-currency-iso-code>EUR<", "<settlement-currency-iso-code>EU<", "unknown currency"),
        ('<disbursement-date type="date">2026-03-03</disbursement-date>', "", "no disbursement"),
    ],
)
def test_malformed_transactions_are_refused_naming_the_transaction(old: str, new: str, message: str) -> None:
    with pytest.raises(SettlementFormatError, match=message) as err:
        adapter.lines_from_transactions(transactions(**{old: new}), account="us")
    assert err.value.source == "braintree:transactions#k7m2q9xr"
