"""Routing of the renewals function's pushes: ticks (by their ``billing.tick`` attribute) and typed events.

Classification and refusals follow the one rule in ``shared.events.consumer``; a tick the planner
cannot parse is :class:`Undeliverable` like any other refused message.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from shared.events.consumer import Handler, Trigger, Undeliverable, dispatch
from shared.events.envelope import Received
from shared.log import get_logger
from shared.renewals.collector import on_invoice_finalized, on_retry_due
from shared.renewals.config import renewal_settings
from shared.renewals.messages import TICK_EVENT_TYPE, TICK_SCHEMA_VERSION, TickError, parse_tick
from shared.renewals.outcomes import on_invoice_paid, on_payment_fact
from shared.renewals.planner import handle_tick

log = get_logger(__name__)

HANDLERS: dict[str, Handler] = {
    "invoice.finalized": on_invoice_finalized,
    "invoice.paid": on_invoice_paid,
    "renewal.charge_retry_due": on_retry_due,
    "payment.succeeded": on_payment_fact,
    "payment.authorized": on_payment_fact,
    "payment.failed": on_payment_fact,
    "payment.pending": on_payment_fact,
}


def _on_tick(message: Mapping[str, Any]) -> object:
    cfg = renewal_settings()
    try:
        tick = parse_tick(message, allow_test_clock=cfg.allow_test_clock, shards=cfg.shards)
    except TickError as exc:
        raise Undeliverable(f"tick refused: {exc}") from exc
    return handle_tick(tick, cfg)


TRIGGERS: dict[str, Trigger] = {TICK_EVENT_TYPE: Trigger(_on_tick, frozenset({TICK_SCHEMA_VERSION}))}


def handle_push(cloud_event: Any) -> object:
    """Dispatch one push (ticks and events alike; the entry point meters its usage)."""
    return dispatch(cloud_event, HANDLERS, TRIGGERS)


__all__ = ["HANDLERS", "TRIGGERS", "Received", "handle_push"]
