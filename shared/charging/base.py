"""Types shared by the PSP adapters."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, replace
from typing import Literal, Protocol

from shared.domain.declines import Decline
from shared.domain.money import Money
from shared.events.billing import PaymentMethodRef

ChargeStatus = Literal["succeeded", "failed", "pending"]


class ChargeError(Exception):
    """Base class of charging errors."""


class ChargeUnavailable(ChargeError):
    """Network trouble, rate limit or a PSP 5xx: retry later with the same idempotency key."""


class ChargeRejected(ChargeError):
    """The PSP refused the request itself (bad credentials, invalid parameters): an operator must look."""


@dataclass(frozen=True, slots=True)
class ChargeRequest:
    invoice_id: str
    attempt: int
    amount: Money
    method: PaymentMethodRef
    customer_id: str
    subscription_id: str | None = None
    description: str | None = None

    @property
    def attempt_id(self) -> str:
        return f"{self.invoice_id}:{self.attempt}"

    @property
    def idempotency_key(self) -> str:
        """Same invoice and attempt -> same key -> the PSP charges at most once, whoever retries."""
        return f"renewal-{self.invoice_id}-{self.attempt}"

    @property
    def metadata(self) -> dict[str, str]:
        """Our references, echoed back by the PSP in its webhooks (refs of the canonical facts)."""
        m = {"invoice_id": self.invoice_id, "customer_id": self.customer_id, "attempt_id": self.attempt_id}
        if self.subscription_id:
            m["subscription_id"] = self.subscription_id
        return m


@dataclass(frozen=True, slots=True)
class ChargeResult:
    status: ChargeStatus
    psp: str
    account: str
    psp_payment_id: str
    livemode: bool
    created_at: dt.datetime
    decline_code: str | None = None
    failure_message: str | None = None
    retryable: bool = True
    category: str | None = None  # canonical decline category (shared.domain.declines)
    retry_at: dt.datetime | None = None  # advised earliest retry (None: not retryable, or the standard schedule)


def declined(base: ChargeResult, decline: Decline, code: str | None, message: str | None) -> ChargeResult:
    """``base`` as a failed result read through the one decline taxonomy (retry class and advice)."""
    return replace(
        base,
        status="failed",
        decline_code=code,
        failure_message=message,
        retryable=decline.retryable,
        category=decline.category.value,
        retry_at=decline.retry_at(base.created_at),
    )


class Charger(Protocol):
    psp: str

    def charge(self, req: ChargeRequest) -> ChargeResult: ...
