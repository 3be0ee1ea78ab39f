"""The real-format writers round-trip through the real parsers (what the demo, e2e and bench rely on)."""

from __future__ import annotations

import pytest

from shared.reconciliation.synthetic import synthetic_day
from shared.settlement.adapters import adyen, checkout, stripe
from shared.settlement.lines import LineType, SettlementBatch
from shared.settlement.writers import adyen_report, checkout_breakdown, checkout_payouts, stripe_balance_transaction


def _summary(batch: SettlementBatch) -> list[tuple[str, str | None, str | None, int, int, str | None, int | None]]:
    return sorted(
        (ln.type.value, ln.psp_payment_id, ln.psp_reference, ln.gross if ln.type is not LineType.FEE else 0, ln.net,
         ln.presentment_currency if ln.presentment_currency != ln.currency else None,
         ln.presentment_amount if ln.presentment_currency != ln.currency else None)
        for ln in batch.lines
    )  # fmt: skip


@pytest.fixture(scope="module")
def day_batches() -> list[SettlementBatch]:
    return synthetic_day(3, payments=120, anomalies=0).batches


def test_adyen_report_round_trips_amounts_references_fx_and_the_payout(day_batches: list[SettlementBatch]) -> None:
    original = day_batches[1]
    parsed = adyen.parse_report(adyen_report(original.lines, batch=7), account="default", source="t")
    assert _summary(parsed) == _summary(original)
    (payout,) = parsed.payouts
    assert payout.payout_id == "DemoECOM:7"
    assert payout.amount == original.payouts[0].amount
    assert sum(ln.net for ln in parsed.lines if ln.type is not LineType.PAYOUT) == payout.amount


def test_checkout_files_round_trip_and_close_the_payout(day_batches: list[SettlementBatch]) -> None:
    original = day_batches[3]
    files = [("b", checkout_breakdown(original.lines)), ("p", checkout_payouts(original.payouts))]
    parsed = checkout.parse_files(files, account="default")
    # Checkout names the payment, not the movement: its Payment ID is the line's PSP reference too
    assert [s[:2] + s[3:] for s in _summary(parsed)] == [s[:2] + s[3:] for s in _summary(original) if s[0] != "payout"]
    assert sum(ln.net for ln in parsed.lines) == parsed.payouts[0].amount == original.payouts[0].amount


def test_stripe_balance_transactions_round_trip_through_the_api_mapping(day_batches: list[SettlementBatch]) -> None:
    original = day_batches[0]
    pid = original.payouts[0].payout_id
    lines = stripe.lines_from_api(
        [stripe_balance_transaction(ln) for ln in original.lines], account="default", payout_id=pid
    )
    assert [ln.psp_reference for ln in lines if ln.type is LineType.PAYOUT] == [pid]  # Stripe: source = po_
    unref = [ln.model_copy(update={"psp_reference": None}) if ln.type is LineType.PAYOUT else ln for ln in lines]
    assert _summary(SettlementBatch(lines=tuple(unref))) == _summary(original)
