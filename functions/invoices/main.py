"""Invoices: push consumer of ``renewals-due`` and ``payment-events``; logic in shared.invoicing."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import functions_framework

from shared.events import payments as _payment_contracts  # noqa: F401
from shared.events.consumer import dispatch
from shared.once import once
from shared.prefork import freeze
from shared.usage import metered

# The payment contracts are registered at start: a payment fact parsed before the service is built would
# otherwise make the registry load every contract module (billing's, with the catalog behind them).

if TYPE_CHECKING:
    from shared.invoicing.service import InvoiceService


@once
def _service() -> InvoiceService:
    """The instance's one service: its allocator and archive writer group the concurrent requests it serves.

    Imported and built on the first request, not at start (cold start; see README), and once (``shared.once``):
    a renewal run reaches a cold instance as a burst of concurrent pushes, and ``functools.cache`` let each
    of them build its own (80 allocators numbering one invoice per commit and contending for the series
    lease, 80 archive writers: batches of one and ~10 extra reads per invoice, measured).
    """
    from shared.invoicing.service import InvoiceService

    return InvoiceService()


def _renewal_due(msg: Any) -> object:
    return _service().issuing.on_renewal_due(msg)


def _payment_fact(msg: Any) -> object:
    return _service().payments.on_payment_fact(msg)


HANDLERS = {
    "renewal.due": _renewal_due,
    "payment.succeeded": _payment_fact,
    "payment.refunded": _payment_fact,
    "dispute.opened": _payment_fact,
    "dispute.won": _payment_fact,
    "dispute.lost": _payment_fact,
}


@functions_framework.cloud_event
@metered("invoices")
def invoices(cloud_event: Any) -> None:
    dispatch(cloud_event, HANDLERS)


freeze()  # last: what this module imported is shared with gunicorn's worker, not copied
