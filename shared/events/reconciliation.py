"""Reconciliation facts on ``reconciliation-events`` (v1): every exception raised, cleared (a late fact or
line explained it) or resolved by an operator, and every closed payout.

Idempotency keys: ``{exception_id}:raised`` / ``:cleared`` / ``:resolved``; ``{payout_key}:closed``.
Exception ids derive from the payment group, the kind and the lines/facts involved, so a redelivered
settlement file or fact re-publishes the same event id at most.
"""

from __future__ import annotations

import datetime as dt
from typing import ClassVar, Literal

from pydantic import Field

from shared.events.envelope import Event, register

ExceptionKind = Literal[
    "missing_on_our_side",
    "missing_on_psp_side",
    "amount_mismatch",
    "currency_mismatch",
    "duplicate",
    "ambiguous_reference",  # a line without PSP reference whose our-reference names several payments
]


class _ExceptionFact(Event):
    TOPIC: ClassVar[str] = "reconciliation-events"

    exception_id: str = Field(min_length=1)
    kind: ExceptionKind
    psp: str
    account: str = "default"
    payment_ref: str | None = None
    impact: dict[str, int] = Field(description="signed minor units per currency left in the clearing account")


@register
class ReconciliationExceptionRaised(_ExceptionFact):
    EVENT_TYPE: ClassVar[str] = "reconciliation.exception_raised"

    category: str
    line_ids: tuple[str, ...] = ()
    fact_ids: tuple[str, ...] = ()
    detail: str = ""
    detected_at: dt.datetime


@register
class ReconciliationExceptionCleared(_ExceptionFact):
    """A later fact or line explained it: no operator action needed any more."""

    EVENT_TYPE: ClassVar[str] = "reconciliation.exception_cleared"

    cleared_at: dt.datetime


@register
class ReconciliationExceptionResolved(_ExceptionFact):
    """An operator resolved it with a reason; ``entry_id`` is the ledger entry that did it."""

    EVENT_TYPE: ClassVar[str] = "reconciliation.exception_resolved"

    reason: str = Field(min_length=1)
    entry_id: str
    resolved_at: dt.datetime


@register
class PayoutClosed(Event):
    """The payout's lines sum to the amount paid to the bank."""

    EVENT_TYPE: ClassVar[str] = "reconciliation.payout_closed"
    TOPIC: ClassVar[str] = "reconciliation-events"

    psp: str
    account: str = "default"
    payout_id: str
    currency: str
    amount: int
    lines: int = Field(ge=0)
    closed_at: dt.datetime
