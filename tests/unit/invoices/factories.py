"""Builders of contract events for the invoices tests (unit, integration and e2e share them)."""

from __future__ import annotations

import datetime as dt
from typing import Any

from shared.domain.money import Money
from shared.events import Received, build_message, parse_message
from shared.events.billing import LineIn, Party, RenewalDue
from shared.events.payments import DisputeOpened, OurRefs, PaymentRefunded, PaymentSucceeded

T0 = dt.datetime(2026, 3, 1, tzinfo=dt.UTC)

B2C_FR = Party(id="cus_fr", name="Camille Martin", country="FR", address_lines=("3 rue Oberkampf", "75011 Paris"))
B2B_DE = Party(id="cus_de", name="Muster GmbH", country="DE", vat_id="DE 123 456 789")


def renewal(
    request_id: str,
    *,
    currency: str = "EUR",
    amounts: tuple[int, ...] = (2500,),
    customer: Party = B2C_FR,
    seller: str = "acme-fr",
    subscription_id: str | None = "sub_1",
    quantity: int = 1,
) -> RenewalDue:
    return RenewalDue(
        request_id=request_id,
        subscription_id=subscription_id,
        period_start=T0,
        period_end=T0 + dt.timedelta(days=31),
        seller_entity=seller,
        customer=customer,
        currency=currency,
        lines=tuple(
            LineIn(description=f"Plan line {i}", quantity=quantity, unit_amount=Money(a, currency))
            for i, a in enumerate(amounts)
        ),
    )


def received(event: Any, key: str, message_id: str = "m-1") -> Received[Any]:
    """Through the real envelope: what the consumer gets from a push."""
    data, attrs = build_message(event, idempotency_key=key, occurred_at=T0)
    return parse_message(data, attrs, message_id)


def due_msg(ev: RenewalDue) -> Received[Any]:
    return received(ev, ev.request_id)


def paid(invoice_id: str, amount: Money, payment_id: str = "pi_1", at: dt.datetime = T0) -> PaymentSucceeded:
    return PaymentSucceeded(
        psp="stripe",
        psp_payment_id=payment_id,
        livemode=False,
        amount=amount,
        refs=OurRefs(invoice_id=invoice_id),
        psp_created_at=at,
    )


def refunded(invoice_id: str, amount: Money, refund_id: str, *, full: bool = False) -> PaymentRefunded:
    return PaymentRefunded(
        psp="stripe",
        psp_payment_id="pi_1",
        livemode=False,
        refs=OurRefs(invoice_id=invoice_id),
        psp_created_at=T0 + dt.timedelta(hours=1),
        refund_id=refund_id,
        refunded=amount,
        full=full,
    )


def disputed(invoice_id: str, dispute_id: str = "dp_1") -> DisputeOpened:
    return DisputeOpened(
        psp="stripe",
        psp_payment_id="pi_1",
        livemode=False,
        refs=OurRefs(invoice_id=invoice_id),
        psp_created_at=T0 + dt.timedelta(hours=2),
        dispute_id=dispute_id,
        reason="fraudulent",
    )


def fact_msg(ev: Any) -> Received[Any]:
    return received(ev, ev.fact_key())
