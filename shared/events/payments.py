"""Canonical, PSP-neutral payment facts on ``payment-events`` (v1).

Producers: the webhooks function (from PSP notifications) and the renewals collector (from the
synchronous answer of a charge). The same fact can therefore arrive from both, and several times from
each: :meth:`PaymentEvent.fact_key` is the idempotency key every producer must publish with, so the
envelope's ``event_id`` is the same for the same fact whoever reports it, and consumers deduplicate on it.

Free text that comes from a PSP (our references echoed from metadata, decline codes and messages,
dispute and revocation reasons) is scrubbed of card data by validators on the contract itself
(:mod:`shared.scrub`), so every producer is covered and consumers may store it as it arrives.
"""

# No ``from __future__ import annotations``: with real annotations pydantic need not evaluate strings for
# every field of every contract class at import (19 classes; part of the webhooks function's cold start).

import datetime as dt
from typing import ClassVar, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from shared.domain.money import Money
from shared.events.envelope import Event, register
from shared.scrub import scrub


def _scrubbed(value: str | None) -> str | None:
    return scrub(value) if value else value


Psp = Literal["stripe", "adyen", "paypal", "gocardless", "braintree", "checkout"]


class OurRefs(BaseModel):
    """Our own references, recovered from the PSP object's metadata / merchant reference."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    customer_id: str | None = None
    subscription_id: str | None = None
    invoice_id: str | None = None
    attempt_id: str | None = None

    _no_card_data = field_validator("customer_id", "subscription_id", "invoice_id", "attempt_id")(_scrubbed)


class PaymentEvent(Event):
    """Fields common to every payment fact."""

    TOPIC: ClassVar[str] = "payment-events"

    psp: Psp
    account: str = Field(default="default", min_length=1, max_length=64)
    psp_event_id: str | None = Field(default=None, description="PSP notification id; None for sync results")
    psp_payment_id: str = Field(min_length=1, description="payment intent / pspReference / capture id ...")
    livemode: bool
    amount: Money | None = None
    refs: OurRefs = Field(default_factory=OurRefs)
    psp_created_at: dt.datetime = Field(description="when the PSP says it happened: the ordering hint")
    psp_sequence: int | None = Field(default=None, description="extra PSP ordering hint where one exists")

    def _fact(self) -> str:
        return self.EVENT_TYPE

    def fact_key(self) -> str:
        """Idempotency key of the fact, independent of which notification or answer reported it."""
        return f"{self.psp}:{self.account}:{self.psp_payment_id}:{self._fact()}"


@register
class PaymentAuthorized(PaymentEvent):
    EVENT_TYPE: ClassVar[str] = "payment.authorized"


@register
class PaymentSucceeded(PaymentEvent):
    """Captured: the money is ours (minus fees)."""

    EVENT_TYPE: ClassVar[str] = "payment.succeeded"


@register
class PaymentPending(PaymentEvent):
    """Accepted by the PSP but not final (3-D Secure, bank debit clearing, ...)."""

    EVENT_TYPE: ClassVar[str] = "payment.pending"


@register
class PaymentFailed(PaymentEvent):
    """``decline_code`` is the PSP's own code; ``category`` and ``retry_at`` are the canonical taxonomy's
    reading of it (:mod:`shared.domain.declines`), so consumers never interpret PSP codes themselves."""

    EVENT_TYPE: ClassVar[str] = "payment.failed"

    decline_code: str | None = None
    failure_message: str | None = None
    retryable: bool = Field(
        description="False for hard declines (stolen card, closed account) and for declines only the customer can "
        "unblock (authentication required): dunning never retries them automatically"
    )
    category: str | None = Field(
        default=None, max_length=64, description="canonical decline category (shared.domain.declines.Category)"
    )
    retry_at: dt.datetime | None = Field(
        default=None, description="advised earliest retry; None: not retryable, or the standard dunning schedule"
    )

    _no_card_data = field_validator("decline_code", "failure_message")(_scrubbed)


@register
class PaymentActionRequired(PaymentEvent):
    """A charge failed because only the customer can unblock it (3-D Secure / SCA authentication, a PIN):
    dunning asks them instead of retrying. Idempotency key: ``fact_key()`` of the failed payment's id."""

    EVENT_TYPE: ClassVar[str] = "payment.action_required"

    category: str = Field(default="authentication_required", max_length=64)
    decline_code: str | None = None

    _no_card_data = field_validator("decline_code")(_scrubbed)


@register
class RiskReviewRequested(Event):
    """The risk step flagged a charge (before the PSP call) or an incoming payment fact for review, or blocked
    it. Idempotency key: ``decision_id`` (the decision record's id, so redelivery publishes the same event)."""

    EVENT_TYPE: ClassVar[str] = "risk.review_requested"
    TOPIC: ClassVar[str] = "payment-events"

    decision_id: str = Field(min_length=1, max_length=512)
    decision: Literal["review", "block"]
    stage: Literal["charge", "fact"]
    reasons: tuple[str, ...] = ()
    scorer: str = Field(default="rules", max_length=64)
    score: float | None = Field(default=None, ge=0, le=1)
    psp: str = Field(min_length=1, max_length=64)
    account: str = "default"
    psp_payment_id: str | None = None
    refs: OurRefs = Field(default_factory=OurRefs)
    decided_at: dt.datetime


@register
class PaymentRefunded(PaymentEvent):
    EVENT_TYPE: ClassVar[str] = "payment.refunded"

    refund_id: str = Field(min_length=1)
    refunded: Money
    full: bool

    def _fact(self) -> str:
        return f"{self.EVENT_TYPE}:{self.refund_id}"


DisputeStage = Literal["chargeback", "pre_arbitration"]
DisputeReason = Literal[
    "fraudulent",
    "product_not_received",
    "duplicate",
    "subscription_canceled",
    "credit_not_processed",
    "product_unacceptable",
    "unrecognized",
    "general",
]


class DisputeEvent(PaymentEvent):
    """A dispute's status at the PSP. ``reason``: the PSP's reason as sent; ``normalised_reason``: ours
    (shared.domain.disputes.Reason); ``evidence_due_by``: from the PSP's own deadline field."""

    dispute_id: str = Field(min_length=1)
    reason: str | None = None
    reason_code: str | None = Field(default=None, description="raw scheme / PSP reason code")
    normalised_reason: DisputeReason | None = None
    evidence_due_by: dt.datetime | None = None
    dispute_stage: DisputeStage = "chargeback"
    psp_status: str | None = Field(default=None, max_length=64, description="the PSP's status or event code")

    _no_card_data = field_validator("reason", "reason_code")(_scrubbed)

    def _fact(self) -> str:
        return f"{self.EVENT_TYPE}:{self.dispute_id}"


@register
class DisputeOpened(DisputeEvent):
    EVENT_TYPE: ClassVar[str] = "dispute.opened"


@register
class DisputeWon(DisputeEvent):
    EVENT_TYPE: ClassVar[str] = "dispute.won"


@register
class DisputeLost(DisputeEvent):
    EVENT_TYPE: ClassVar[str] = "dispute.lost"


@register
class DisputeNeedsResponse(DisputeEvent):
    """Evidence is awaited by ``evidence_due_by`` (Stripe needs_response, Checkout evidence_required ...)."""

    EVENT_TYPE: ClassVar[str] = "dispute.needs_response"


@register
class DisputeUnderReview(DisputeEvent):
    """Evidence submitted; the issuer decides."""

    EVENT_TYPE: ClassVar[str] = "dispute.under_review"


@register
class DisputeAccepted(DisputeEvent):
    """The loss was accepted (by us, or by the PSP on our behalf): a loss without a defence."""

    EVENT_TYPE: ClassVar[str] = "dispute.accepted"


@register
class DisputeExpired(DisputeEvent):
    """The due time passed without a response: a loss."""

    EVENT_TYPE: ClassVar[str] = "dispute.expired"


@register
class DisputePreArbitration(DisputeEvent):
    """Escalated after the first outcome; evidence may be awaited again."""

    EVENT_TYPE: ClassVar[str] = "dispute.pre_arbitration"


@register
class PaymentMethodRevoked(PaymentEvent):
    """A mandate or stored card can no longer be charged; ``psp_payment_id`` is the method's id."""

    EVENT_TYPE: ClassVar[str] = "payment_method.revoked"

    reason: str | None = None

    _no_card_data = field_validator("reason")(_scrubbed)


PAYMENT_EVENT_TYPES: tuple[type[PaymentEvent], ...] = (
    PaymentAuthorized,
    PaymentSucceeded,
    PaymentPending,
    PaymentFailed,
    PaymentActionRequired,
    PaymentRefunded,
    DisputeOpened,
    DisputeWon,
    DisputeLost,
    DisputeNeedsResponse,
    DisputeUnderReview,
    DisputeAccepted,
    DisputeExpired,
    DisputePreArbitration,
    PaymentMethodRevoked,
)
DISPUTE_EVENT_TYPES: tuple[type[DisputeEvent], ...] = (
    DisputeOpened,
    DisputeNeedsResponse,
    DisputeUnderReview,
    DisputePreArbitration,
    DisputeWon,
    DisputeLost,
    DisputeAccepted,
    DisputeExpired,
)
