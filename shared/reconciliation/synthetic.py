"""Synthetic settlement days: thousands of payments with refunds, disputes, FX and split fees, the facts
we would have received for them, the PSPs' settlement batches with closing payouts, and injected
anomalies with the finding each must produce. Used by the tests (the property that every injected
anomaly is reported and nothing else), the benchmark and the demo. Deterministic per seed; pure.
"""

from __future__ import annotations

import datetime as dt
import random
from collections import defaultdict
from dataclasses import dataclass, field
from decimal import ROUND_HALF_EVEN, Decimal
from typing import Any

from shared.domain.money import Money
from shared.events.payments import DisputeOpened, DisputeWon, OurRefs, PaymentEvent, PaymentRefunded, PaymentSucceeded
from shared.reconciliation.matching import Kind, group_id
from shared.settlement.lines import Fee, LineType, Payout, SettlementBatch, SettlementLine

SETTLEMENT_CURRENCY = "EUR"
# Settlement minor units per presentment minor unit (EUR cents per USD cent, per GBP penny, per yen).
MINOR_RATES = {"EUR": Decimal(1), "USD": Decimal("0.92"), "GBP": Decimal("1.17"), "JPY": Decimal("0.62")}
MAJOR_RATES = {"EUR": Decimal(1), "USD": Decimal("0.92"), "GBP": Decimal("1.17"), "JPY": Decimal("0.0062")}
ANOMALY_KINDS = (Kind.MISSING_OURS, Kind.MISSING_PSP, Kind.AMOUNT_MISMATCH, Kind.CURRENCY_MISMATCH, Kind.DUPLICATE)


@dataclass
class SyntheticDay:
    facts: list[PaymentEvent]
    batches: list[SettlementBatch]
    expected: set[tuple[str, Kind]]  # (group id, kind) of every injected anomaly
    payments: int = 0
    anomalies: dict[str, Kind] = field(default_factory=dict)  # payment id -> injected kind

    @property
    def lines(self) -> list[SettlementLine]:
        return [ln for b in self.batches for ln in b.lines]


def _convert(amount: int, currency: str, rate_bump: Decimal = Decimal(0)) -> int:
    if currency == SETTLEMENT_CURRENCY:
        return amount
    rate = MINOR_RATES[currency] * (1 + rate_bump)
    return int((Decimal(amount) * rate).to_integral_value(rounding=ROUND_HALF_EVEN))


def synthetic_day(  # noqa: PLR0915 (one generator, read top to bottom)
    seed: int,
    payments: int = 1000,
    anomalies: int = 0,
    *,
    day: dt.date = dt.date(2026, 3, 2),
    psps: tuple[str, ...] = ("stripe", "adyen", "paypal", "checkout"),
    tag: str = "",
) -> SyntheticDay:
    rnd = random.Random(seed)  # noqa: S311 (test data, not secrets)
    start = dt.datetime.combine(day, dt.time(0, 0), dt.UTC)
    facts: list[PaymentEvent] = []
    lines_by: dict[str, list[SettlementLine]] = defaultdict(list)
    per_payment: dict[str, tuple[str, list[PaymentEvent], list[SettlementLine]]] = {}
    counter = [0]

    def line(  # noqa: PLR0917 (a local shorthand)
        psp: str, pay: str, typ: LineType, ref: str, pres_cur: str, pres: int, bump: Decimal, fees: tuple[Fee, ...]
    ) -> SettlementLine:
        counter[0] += 1
        gross = _convert(pres, pres_cur, bump)
        fx = pres_cur != SETTLEMENT_CURRENCY
        return SettlementLine(
            psp=psp,  # type: ignore[arg-type]
            line_id=f"{psp}-txn-{tag}{seed}-{counter[0]}",
            type=typ,
            psp_reference=ref,
            psp_payment_id=pay,
            currency=SETTLEMENT_CURRENCY,
            gross=gross,
            fees=fees,
            net=gross - sum(f.amount for f in fees),
            presentment_currency=pres_cur if fx else None,
            presentment_amount=pres if fx else None,
            fx_rate=MAJOR_RATES[pres_cur] * (1 + bump) if fx else None,
            booked_at=start + dt.timedelta(hours=20, seconds=counter[0]),
            source=f"synthetic-{seed}",
        )

    for i in range(payments):
        psp = psps[i % len(psps)]
        pay = f"pay_{tag}{seed}_{i}"
        cur = rnd.choices(["EUR", "USD", "GBP", "JPY"], weights=[70, 15, 10, 5])[0]
        amount = rnd.randint(100, 200_000)
        at = start + dt.timedelta(seconds=i)
        refs = OurRefs(customer_id=f"cus_{i % 97}", invoice_id=f"inv_{tag}{seed}_{i}")
        common: dict[str, Any] = {"psp": psp, "psp_payment_id": pay, "livemode": False, "refs": refs}
        pf: list[PaymentEvent] = [PaymentSucceeded(**common, amount=Money(amount, cur), psp_created_at=at)]
        pl: list[SettlementLine] = []
        # captures: one, or two partial captures of the same payment
        parts = [amount] if rnd.random() > 0.08 or amount < 2 else [amount // 3, amount - amount // 3]
        for n, part in enumerate(parts, 1):
            gross = _convert(part, cur)
            fees: tuple[Fee, ...] = (
                Fee(kind="processing", amount=gross * 14 // 1000 + 25),
                Fee(kind="scheme", amount=gross * 2 // 1000),
            )
            if cur != SETTLEMENT_CURRENCY:
                fees += (Fee(kind="fx_markup", amount=gross // 100),)
            pl.append(line(psp, pay, LineType.CAPTURE, f"ch_{pay}_{n}", cur, part, Decimal(0), fees))
        if rnd.random() < 0.12:  # a partial refund, converted at a later rate
            r = max(1, amount // rnd.randint(2, 5))
            rid = f"re_{pay}"
            pf.append(
                PaymentRefunded(
                    **common,
                    refund_id=rid,
                    refunded=Money(r, cur),
                    full=False,
                    psp_created_at=at + dt.timedelta(hours=2),
                )
            )
            pl.append(line(psp, pay, LineType.REFUND, rid, cur, -r, Decimal("0.01"), ()))
        if rnd.random() < 0.03:  # a dispute: chargeback with its fee, sometimes won back
            did = f"dp_{pay}"
            pf.append(
                DisputeOpened(
                    **common, dispute_id=did, amount=Money(amount, cur), psp_created_at=at + dt.timedelta(hours=3)
                )
            )
            pl.append(
                line(
                    psp,
                    pay,
                    LineType.CHARGEBACK,
                    did,
                    cur,
                    -amount,
                    Decimal("0.02"),
                    (Fee(kind="chargeback", amount=1500),),
                )
            )
            if rnd.random() < 0.5:
                pf.append(
                    DisputeWon(
                        **common, dispute_id=did, amount=Money(amount, cur), psp_created_at=at + dt.timedelta(hours=4)
                    )
                )
                pl.append(line(psp, pay, LineType.CHARGEBACK_REVERSAL, did, cur, amount, Decimal("0.02"), ()))
        per_payment[pay] = (psp, pf, pl)

    expected: set[tuple[str, Kind]] = set()
    injected: dict[str, Kind] = {}
    for n, pay in enumerate(rnd.sample(sorted(per_payment), min(anomalies, len(per_payment)))):
        kind = ANOMALY_KINDS[n % len(ANOMALY_KINDS)]
        psp, pf, pl = per_payment[pay]
        caps = [ln for ln in pl if ln.type is LineType.CAPTURE]
        rest = [ln for ln in pl if ln.type is not LineType.CAPTURE]
        if kind is Kind.MISSING_OURS:
            pf = [f for f in pf if not isinstance(f, PaymentSucceeded)]
        elif kind is Kind.MISSING_PSP:
            pl = rest
        elif kind is Kind.AMOUNT_MISMATCH:
            c = caps[0]
            if c.presentment_amount is not None:
                bad = replace_line(c, presentment_amount=c.presentment_amount + 7)
            else:
                bad = replace_line(c, gross=c.gross + 7, net=c.net + 7)
            pl = [bad, *caps[1:], *rest]
        elif kind is Kind.CURRENCY_MISMATCH:
            c = caps[0]
            fact_cur = c.presentment_currency or c.currency
            other = "CHF" if fact_cur != "CHF" else "SEK"
            pl = [
                replace_line(c, presentment_currency=other, presentment_amount=c.presentment_amount or c.gross),
                *caps[1:],
                *rest,
            ]
        elif kind is Kind.DUPLICATE:
            pl = [*pl, replace_line(caps[0], line_id=caps[0].line_id + "-dup")]
        per_payment[pay] = (psp, pf, pl)
        expected.add((group_id(psp, "default", pay), kind))
        injected[pay] = kind

    for _pay, (psp, pf, pl) in sorted(per_payment.items()):
        facts.extend(pf)
        lines_by[psp].extend(pl)

    batches = []
    for psp in psps:
        ls = lines_by[psp]
        counter[0] += 1
        ls.append(
            SettlementLine(
                psp=psp,  # type: ignore[arg-type]
                line_id=f"{psp}-fee-{tag}{seed}",
                type=LineType.FEE,
                currency=SETTLEMENT_CURRENCY,
                gross=0,
                fees=(Fee(kind="monthly", amount=2500),),
                net=-2500,
                booked_at=start + dt.timedelta(hours=23),
            )
        )
        po = f"po_{psp}_{tag}{seed}"
        ls = [replace_line(ln, payout_id=po) for ln in ls]
        amount = sum(ln.net for ln in ls)
        ls.append(
            SettlementLine(
                psp=psp,  # type: ignore[arg-type]
                line_id=f"{psp}-payout-{tag}{seed}",
                type=LineType.PAYOUT,
                currency=SETTLEMENT_CURRENCY,
                gross=-amount,
                net=-amount,
                payout_id=po,
                booked_at=start + dt.timedelta(hours=23, minutes=59),
            )
        )
        payout = Payout(
            psp=psp,  # type: ignore[arg-type]
            payout_id=po,
            currency=SETTLEMENT_CURRENCY,
            amount=amount,
            arrival_date=day + dt.timedelta(days=2),
        )
        batches.append(SettlementBatch(lines=tuple(ls), payouts=(payout,)))
    return SyntheticDay(facts, batches, expected, payments, injected)


def replace_line(line: SettlementLine, **changes: object) -> SettlementLine:
    """A validated copy (``model_copy`` would skip the net = gross - fees check)."""
    return SettlementLine.model_validate({**line.model_dump(), **changes})


__all__ = ["ANOMALY_KINDS", "SyntheticDay", "replace_line", "synthetic_day"]
