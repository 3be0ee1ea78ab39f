"""Dispute operations on ``dispute-events`` (v1): deadline alerts and evidence submissions.

Why a topic of their own: these are our decisions about a dispute, not payment facts a PSP reported, so
consumers of ``payment-events`` (invoices, reconciliation, renewals) never receive them. Idempotency keys:
``{dispute_key}:deadline:{hours}h`` (one alert per threshold) and ``{dispute_key}:evidence:{sha256}``.
"""

from __future__ import annotations

import datetime as dt
from typing import ClassVar, Literal

from pydantic import Field

from shared.domain.money import Money
from shared.events.envelope import Event, register
from shared.events.payments import DisputeReason, OurRefs, Psp


class DisputeEventBase(Event):
    TOPIC: ClassVar[str] = "dispute-events"

    dispute_key: str = Field(min_length=1, description="our dispute document id: psp, account and PSP id")
    psp: Psp
    account: str = Field(default="default", min_length=1, max_length=64)
    dispute_id: str = Field(min_length=1)
    psp_payment_id: str = Field(min_length=1)
    refs: OurRefs = Field(default_factory=OurRefs)
    amount: Money | None = None
    normalised_reason: DisputeReason | None = None


@register
class DisputeDeadlineApproaching(DisputeEventBase):
    """The evidence due time is ``hours`` away or less (raised once per threshold)."""

    EVENT_TYPE: ClassVar[str] = "dispute.deadline_approaching"

    hours: Literal[72, 24]
    evidence_due_by: dt.datetime
    status: str


@register
class DisputeEvidenceSubmitted(DisputeEventBase):
    """An operator confirmed the evidence packet and it was submitted through the PSP's API."""

    EVENT_TYPE: ClassVar[str] = "dispute.evidence_submitted"

    packet_uri: str
    packet_sha256: str = Field(min_length=64, max_length=64)
    submitted_at: dt.datetime
    operator: str | None = None
