"""Routing of the renewals function's pushes: lenient ticks first, then the typed envelope."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from shared.events.consumer import Handler, dispatch
from shared.events.envelope import Received
from shared.log import get_logger
from shared.renewals import usage
from shared.renewals.collector import on_invoice_finalized, on_retry_due
from shared.renewals.config import renewal_settings
from shared.renewals.messages import TickError, is_tick, parse_tick
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


def _message(cloud_event: Any) -> Mapping[str, Any] | None:
    data = getattr(cloud_event, "data", None)
    if isinstance(data, Mapping) and isinstance(data.get("message"), Mapping):
        msg: Mapping[str, Any] = data["message"]
        return msg
    return None


def handle_push(cloud_event: Any) -> object:
    """Dispatch one push; the usage of this delivery is logged for the cost benchmark."""
    with usage.track() as u:
        msg = _message(cloud_event)
        if msg is not None and is_tick(msg):
            cfg = renewal_settings()
            try:
                tick = parse_tick(msg, allow_test_clock=cfg.allow_test_clock, shards=cfg.shards)
            except TickError as exc:
                # A bad tick cannot become good by retrying, and the next scheduled tick covers its work.
                log.error("tick refused; acknowledged", extra={"error": str(exc)})
                return None
            result: object = handle_tick(tick, cfg)
            kind = "tick"
        else:
            result = dispatch(cloud_event, HANDLERS)
            kind = "event"
        log.info("renewals usage", extra={"usage": u.as_dict(), "delivery": kind})
        return result


__all__ = ["HANDLERS", "Received", "handle_push"]
