"""The normalised settlement line: one money movement on a PSP balance, in integer minor units.

Why one shape: six PSPs describe settlement six ways (signed ints, unsigned decimals with a debit/credit
column, hundredths without separator, tenths of a minor unit). Each intake adapter converts at the
boundary, so matching and the ledger never see a PSP format, a float or a sign convention.

Sign convention: amounts are signed from the MERCHANT's PSP balance point of view. A capture is a
positive ``gross``; a refund or chargeback a negative ``gross``; fees are positive numbers that REDUCE the
balance; ``net = gross - sum(fees)`` always (validated). A payout line moves money from the PSP balance to
the bank: its ``gross`` is negative (the balance decreases) and it has no fees.
"""

from __future__ import annotations

import datetime as dt
import enum
import hashlib
from decimal import Decimal
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from shared.domain.iso4217 import EXPONENTS

Psp = Literal["stripe", "adyen", "paypal", "gocardless", "braintree", "checkout"]

MAX_MINOR = 10**15  # far above any real settlement line, far below int64: the bound at the boundary


class LineType(enum.StrEnum):
    CAPTURE = "capture"
    REFUND = "refund"
    CHARGEBACK = "chargeback"
    CHARGEBACK_REVERSAL = "chargeback_reversal"
    FEE = "fee"  # a fee with no payment (monthly, batch, payout fee)
    ADJUSTMENT = "adjustment"  # reserves, corrections, FX rounding, anything else the PSP books
    PAYOUT = "payout"  # balance -> bank


class Fee(BaseModel):
    """One fee component of a line (processing, scheme, interchange, FX markup, chargeback fee ...)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    kind: str = Field(min_length=1, max_length=64)
    amount: int = Field(ge=-MAX_MINOR, le=MAX_MINOR, description="minor units of the line's settlement currency")


class SettlementLine(BaseModel):
    """One settled movement, as the PSP reported it, normalised."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    psp: Psp
    account: str = Field(default="default", min_length=1, max_length=64)
    line_id: str = Field(min_length=1, max_length=512, description="the PSP's own id of this LINE (not the payment)")
    type: LineType
    psp_reference: str | None = Field(
        default=None, max_length=256, description="join key to the webhook object (ch_/pspReference/PM.../pay_...)"
    )
    psp_payment_id: str | None = Field(default=None, max_length=256, description="the payment this line belongs to")
    our_invoice_id: str | None = Field(default=None, max_length=256)
    our_reference: str | None = Field(default=None, max_length=256, description="merchant reference; a fallback only")
    currency: str = Field(min_length=3, max_length=3, description="settlement currency (ISO 4217)")
    gross: int = Field(ge=-MAX_MINOR, le=MAX_MINOR)
    fees: tuple[Fee, ...] = ()
    net: int = Field(ge=-MAX_MINOR, le=MAX_MINOR)
    presentment_currency: str | None = Field(default=None, min_length=3, max_length=3)
    presentment_amount: int | None = Field(default=None, ge=-MAX_MINOR, le=MAX_MINOR)
    fx_rate: Decimal | None = Field(default=None, description="settlement per presentment unit, as the PSP states it")
    payout_id: str | None = Field(default=None, max_length=256)
    booked_at: dt.datetime = Field(description="when the PSP booked the movement (UTC)")
    available_at: dt.datetime | None = None
    source: str = Field(default="", max_length=256, description="file name + row, or API page, for the audit trail")

    @model_validator(mode="after")
    def _consistent(self) -> SettlementLine:
        for code in (self.currency, self.presentment_currency):
            if code is not None and code not in EXPONENTS:
                raise ValueError(f"unknown currency {code}")
        if (self.presentment_currency is None) != (self.presentment_amount is None):
            raise ValueError("presentment currency and amount go together")
        if self.net != self.gross - sum(f.amount for f in self.fees):
            raise ValueError("net must equal gross minus the fees")
        if self.booked_at.tzinfo is None:
            raise ValueError("booked_at must be timezone-aware")
        return self

    def key(self) -> str:
        """Stable document id of the line: the same line from the same PSP twice is the same document."""
        return hashlib.sha256(f"{self.psp}\x1f{self.account}\x1f{self.line_id}".encode()).hexdigest()


class Payout(BaseModel):
    """What reached (or will reach) the bank, as the PSP states it; closed when its lines sum to it."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    psp: Psp
    account: str = Field(default="default", min_length=1, max_length=64)
    payout_id: str = Field(min_length=1, max_length=256)
    currency: str = Field(min_length=3, max_length=3)
    amount: int = Field(ge=-MAX_MINOR, le=MAX_MINOR, description="paid to the bank, positive")
    arrival_date: dt.date | None = None
    bank_reference: str | None = Field(default=None, max_length=256)


class PayoutNet(BaseModel):
    """The PSP's unrounded net of a payout's lines in one source, in (fractional) minor units.

    Why: Checkout.com states amounts to 8 decimals and its payout amount in another file; the lines are
    rounded to minor units, so their sum may miss the payout by a rounding unit. Kept with the lines, it lets
    reconciliation add the one rounding line whichever of the two files arrives first.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    payout_id: str = Field(min_length=1, max_length=256)
    currency: str = Field(min_length=3, max_length=3)
    exact_net: Decimal


class SettlementBatch(BaseModel):
    """What one intake (a report file or an API page) yields: lines and the payouts they belong to."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    lines: tuple[SettlementLine, ...] = ()
    payouts: tuple[Payout, ...] = ()
    payout_nets: tuple[PayoutNet, ...] = ()
