"""Fixtures for the charging adapters: one request shape, and a server that accepts and never answers."""

from __future__ import annotations

import socket
from collections.abc import Iterator

import pytest

from shared.charging import ChargeRequest
from shared.domain.money import Money
from shared.events.billing import PaymentMethodRef


def req(
    psp: str,
    method_ref: str,
    *,
    attempt: int = 1,
    amount: int = 1099,
    currency: str = "EUR",
    customer_ref: str | None = "cus_9",
    subscription_id: str | None = "sub_7",
) -> ChargeRequest:
    return ChargeRequest(
        invoice_id="inv_42",
        attempt=attempt,
        amount=Money(amount, currency),
        method=PaymentMethodRef(psp=psp, customer_ref=customer_ref, method_ref=method_ref),
        customer_id="c-1",
        subscription_id=subscription_id,
        description="Pro plan",
    )


@pytest.fixture
def silent_url() -> Iterator[str]:
    """A listening socket nobody reads: the connection opens, the answer never comes (a PSP timeout)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen(16)
        yield f"http://127.0.0.1:{s.getsockname()[1]}"
