"""Billing contracts (v1): renewal-due requests, invoice lifecycle facts, subscription transitions.

Flow: the renewals planner publishes :class:`RenewalDue` (one per subscription and period); the
invoices function turns it into a finalized invoice and publishes :class:`InvoiceFinalized`; the
renewals collector charges it; payment facts make the invoice :class:`InvoicePaid`, or a refund a
:class:`CreditNoteIssued`. Idempotency keys are business keys, listed on each contract.
"""

from __future__ import annotations

import datetime as dt
from typing import ClassVar, Literal

from pydantic import BaseModel, ConfigDict, Field

from shared.domain.money import Money
from shared.events.envelope import Event, register

CollectionMethod = Literal["charge_automatically", "send_invoice"]


class _Model(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


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
    lines: tuple[LineIn, ...] = Field(min_length=1)
    collection: CollectionMethod = "charge_automatically"
    payment_method: PaymentMethodRef | None = None
    attempt: int = Field(default=1, ge=1, description="dunning attempt this renewal is for")


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
