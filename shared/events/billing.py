"""Billing contracts (v1): renewal-due requests, invoice lifecycle facts, subscription transitions.

Flow: the renewals planner publishes :class:`RenewalDue` (one per subscription and period); the
invoices function turns it into a finalized invoice and publishes :class:`InvoiceFinalized`; the
renewals collector charges it; payment facts make the invoice :class:`InvoicePaid`, or a refund a
:class:`CreditNoteIssued`. Idempotency keys are business keys, listed on each contract.
"""

from __future__ import annotations

import datetime as dt
from typing import ClassVar, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from shared.domain.discounts import AppliedDiscount
from shared.domain.money import Money
from shared.domain.pricing import ChargeLine
from shared.domain.subscriptions import FINAL_SUFFIX
from shared.events.envelope import Event, register

CollectionMethod = Literal["charge_automatically", "send_invoice"]
# Why an invoice was issued (Stripe's vocabulary): a subscription's first period, a later period, a usage threshold
# crossed mid-period (progressive billing), the final invoice of an ended subscription, or an operator's one-off.
BillingReason = Literal[
    "subscription_create", "subscription_cycle", "subscription_threshold", "subscription_final", "manual"
]
THRESHOLD_PREFIX = "threshold:"  # request ids of threshold invoices (shared.metering.thresholds)


def billing_reason_of(request_id: str, subscription_id: str | None, period_index: int | None = None) -> BillingReason:
    """The reason of a request that does not carry one (published before the field existed): from its request id."""
    if request_id.startswith(THRESHOLD_PREFIX):
        return "subscription_threshold"
    if subscription_id is None:
        return "manual"
    if request_id.endswith(FINAL_SUFFIX):
        return "subscription_final"
    return "subscription_create" if period_index == 0 else "subscription_cycle"


class _Model(BaseModel):
    # defer_build: validators are built on first use, not at import (cold start, README).
    model_config = ConfigDict(frozen=True, extra="forbid", defer_build=True)


class Party(_Model):
    """A buyer as the invoice needs it (tax treatment depends on country, VAT id and exemption)."""

    id: str = Field(min_length=1)
    name: str = Field(min_length=1)
    country: str = Field(pattern=r"^[A-Z]{2}$", description="ISO 3166-1 alpha-2")
    vat_id: str | None = None
    tax_exempt: bool = False
    email: str | None = None
    address_lines: tuple[str, ...] = ()


class PaymentMethodRef(_Model):
    """A stored payment method at a PSP: enough for an off-session / recurring charge."""

    psp: str
    account: str = "default"
    customer_ref: str | None = Field(default=None, description="PSP customer id / shopperReference")
    method_ref: str = Field(min_length=1, description="payment method id / recurringDetailReference / mandate")


class RiskEntry(_Model):
    """One entry of a customer's risk profile, as the scorer's features need it (no decision, no PSP data)."""

    t: dt.datetime
    kind: str = Field(description="'attempt' (a charge of ours) or a payment fact's outcome")
    outcome: str | None = Field(default=None, description="an attempt's outcome, when known")
    amount: int | None = Field(default=None, description="minor units")
    currency: str | None = None
    m: str | None = Field(default=None, description="the payment method's opaque key (shared.risk.base.method_key)")


class RiskSnapshot(_Model):
    """The customer's risk profile as read when the invoice was finalized, so the collector decides without a
    read on the charge path. Its age is the message's: a consumer re-reads when ``read_at`` is too old."""

    read_at: dt.datetime
    billing_country: str | None = None
    method_country: str | None = Field(default=None, description="the country of the invoice's payment method")
    events: dict[str, RiskEntry] = Field(default_factory=dict, description="entry key -> entry (at most 50)")


class LineIn(_Model):
    """A line to invoice. Tax is computed by the invoices function, never by the requester."""

    description: str = Field(min_length=1, max_length=500)
    quantity: int = Field(ge=1)
    unit_amount: Money = Field(description="may be negative for proration credits")
    kind: Literal["plan", "proration", "one_off"] = "plan"
    period_start: dt.datetime | None = None
    period_end: dt.datetime | None = None
    tax_category: str = "standard"


@register
class RenewalDue(Event):
    """Invoice this period (or a one-off request). Idempotency key: ``request_id``."""

    EVENT_TYPE: ClassVar[str] = "renewal.due"
    TOPIC: ClassVar[str] = "renewals-due"

    request_id: str = Field(min_length=1, description="'{subscription_id}:{period_start iso}' or a one-off id")
    subscription_id: str | None = None
    period_start: dt.datetime | None = None
    period_end: dt.datetime | None = None
    seller_entity: str = Field(min_length=1, description="legal entity issuing the invoice; picks the series")
    customer: Party
    currency: str = Field(pattern=r"^[A-Z]{3}$")
    lines: tuple[LineIn, ...] = ()
    collection: CollectionMethod = "charge_automatically"
    payment_method: PaymentMethodRef | None = None
    attempt: int = Field(default=1, ge=1, description="dunning attempt this renewal is for")
    # Subscriptions with items (priced from the catalog and composed by shared.domain.composition):
    items: tuple[ChargeLine, ...] = Field(
        default=(), description="the period's items, priced from the price snapshots the subscription keeps"
    )
    charges: tuple[ChargeLine, ...] = Field(default=(), description="priced proration lines waiting for this invoice")
    discounts: tuple[AppliedDiscount, ...] = Field(default=(), description="discounts in force for period_index")
    period_index: int | None = Field(default=None, ge=0, description="which period of the subscription (discounts)")
    due_at: dt.datetime | None = Field(default=None, description="send_invoice: when the invoice is due")
    apply_credit: bool = Field(default=False, description="pay from the customer's credit balance at finalization")
    billing_reason: BillingReason | None = Field(
        default=None, description="why this invoice is issued; absent (older producers): derived, see `reason`"
    )

    @property
    def reason(self) -> BillingReason:
        """``billing_reason``, or for an older message without it, derived from the request id."""
        return self.billing_reason or billing_reason_of(self.request_id, self.subscription_id, self.period_index)

    @model_validator(mode="after")
    def _something_to_bill(self) -> RenewalDue:
        if not (self.lines or self.items or self.charges):
            raise ValueError("a renewal bills lines, items or charges")
        if (self.lines and (self.items or self.charges)) or (self.items and self.period_index is None):
            raise ValueError("lines (a plan) and items/charges (the catalog) are not mixed; items need period_index")
        return self

    @property
    def composed(self) -> bool:
        """Priced from the catalog (items, charges) rather than from plan lines."""
        return bool(self.items or self.charges)


class _InvoiceFact(Event):
    TOPIC: ClassVar[str] = "invoice-events"

    invoice_id: str
    number: str
    subscription_id: str | None = None
    customer_id: str


@register
class InvoiceFinalized(_InvoiceFact):
    """Idempotency key: ``{invoice_id}:finalized``."""

    EVENT_TYPE: ClassVar[str] = "invoice.finalized"

    request_id: str
    period_start: dt.datetime | None = None
    period_end: dt.datetime | None = None
    subtotal: Money
    tax: Money
    total: Money
    amount_due: Money
    collection: CollectionMethod
    payment_method: PaymentMethodRef | None = None
    finalized_at: dt.datetime
    pdf_uri: str | None = None
    due_at: dt.datetime | None = Field(default=None, description="send_invoice: the due date on the invoice")
    discount: Money | None = Field(default=None, description="discounts on the invoice, before tax")
    credit_applied: Money | None = Field(default=None, description="paid from the customer's credit balance")
    risk: RiskSnapshot | None = Field(
        default=None, description="auto-collect: the customer's risk profile at finalization (absent: read it)"
    )
    billing_reason: BillingReason | None = Field(
        default=None, description="why the invoice was issued (absent from older producers: see the request id)"
    )


@register
class InvoicePaid(_InvoiceFact):
    """Idempotency key: ``{invoice_id}:paid`` (the same whether a payment fact or an operator paid it).

    ``psp_payment_id`` is None when an operator marked it paid (``paid_by == "operator"``).
    """

    EVENT_TYPE: ClassVar[str] = "invoice.paid"

    amount_paid: Money
    paid_at: dt.datetime
    psp: str | None = None
    psp_payment_id: str | None = None
    collection: CollectionMethod | None = None
    paid_by: Literal["payment", "operator"] = "payment"
    reason: str | None = None


@register
class InvoiceVoided(_InvoiceFact):
    """Idempotency key: ``{invoice_id}:voided``."""

    EVENT_TYPE: ClassVar[str] = "invoice.voided"

    reason: str | None = None


@register
class InvoiceMarkedUncollectible(_InvoiceFact):
    """Idempotency key: ``{invoice_id}:uncollectible``."""

    EVENT_TYPE: ClassVar[str] = "invoice.uncollectible"

    reason: str | None = None


@register
class CreditNoteIssued(_InvoiceFact):
    """Idempotency key: ``{credit_note_id}:issued``. ``invoice_id``/``number`` are the credited invoice's."""

    EVENT_TYPE: ClassVar[str] = "credit_note.issued"

    credit_note_id: str
    credit_note_number: str
    amount: Money
    reason: str | None = None
    refund_id: str | None = None
    pdf_uri: str | None = None


SubscriptionStatus = Literal["trialing", "active", "past_due", "unpaid", "canceled"]


@register
class SubscriptionTransitioned(Event):
    """A lifecycle change for downstream systems (entitlements, e-mail).

    Idempotency key: ``{subscription_id}:{version}`` where ``version`` increases with every change.
    """

    EVENT_TYPE: ClassVar[str] = "subscription.transitioned"
    TOPIC: ClassVar[str] = "subscription-events"

    subscription_id: str
    customer_id: str
    version: int = Field(ge=1)
    from_status: SubscriptionStatus | None
    to_status: SubscriptionStatus
    reason: str
    current_period_start: dt.datetime | None = None
    current_period_end: dt.datetime | None = None
