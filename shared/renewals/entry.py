"""Routing of the renewals function's pushes: ticks (by their ``billing.tick`` attribute) and typed events.

Classification and refusals follow the one rule in ``shared.events.consumer``; a tick the planner
cannot parse is :class:`Undeliverable` like any other refused message.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping
from typing import Any

from shared.events.consumer import Handler, Trigger, Undeliverable, dispatch
from shared.events.envelope import Received
from shared.log import get_logger
from shared.renewals.deps import DEFAULT, Deps
from shared.renewals.messages import TICK_EVENT_TYPE, TICK_SCHEMA_VERSION, TickError, parse_tick
from shared.renewals.planner import handle_tick

log = get_logger(__name__)


# The collector (charging, PSP adapters, risk) and the outcome handler load on the first message they
# handle, not at start: a cold instance woken by a billing tick needs the planner alone (cold start, README).
def on_invoice_finalized(msg: Received[Any], deps: Deps = DEFAULT) -> object:
    from shared.renewals.collector import on_invoice_finalized

    return on_invoice_finalized(msg, deps=deps)


def on_retry_due(msg: Received[Any], deps: Deps = DEFAULT) -> object:
    from shared.renewals.collector import on_retry_due

    return on_retry_due(msg, deps=deps)


def on_invoice_paid(msg: Received[Any], deps: Deps = DEFAULT) -> object:
    from shared.renewals.outcomes import on_invoice_paid

    return on_invoice_paid(msg, deps=deps)


def on_payment_fact(msg: Received[Any], deps: Deps = DEFAULT) -> object:
    from shared.renewals.outcomes import on_payment_fact

    return on_payment_fact(msg, deps=deps)


def handlers(deps: Deps) -> dict[str, Handler]:
    """Every event handler of the function, bound to ``deps``."""
    routes: dict[str, Any] = {
        "invoice.finalized": on_invoice_finalized,
        "invoice.paid": on_invoice_paid,
        "renewal.charge_retry_due": on_retry_due,
        "payment.succeeded": on_payment_fact,
        "payment.authorized": on_payment_fact,
        "payment.failed": on_payment_fact,
        "payment.pending": on_payment_fact,
    }
    return {etype: functools.partial(fn, deps=deps) for etype, fn in routes.items()}


def triggers(deps: Deps) -> dict[str, Trigger]:
    """The billing tick (envelope-less), bound to ``deps``."""

    def on_tick(message: Mapping[str, Any]) -> object:
        cfg = deps.settings()
        try:
            tick = parse_tick(message, allow_test_clock=cfg.allow_test_clock, shards=cfg.shards)
        except TickError as exc:
            raise Undeliverable(f"tick refused: {exc}") from exc
        return handle_tick(tick, cfg, deps)

    return {TICK_EVENT_TYPE: Trigger(on_tick, frozenset({TICK_SCHEMA_VERSION}))}


HANDLERS = handlers(DEFAULT)
TRIGGERS = triggers(DEFAULT)


def handle_push(cloud_event: Any, deps: Deps | None = None) -> object:
    """Dispatch one push (ticks and events alike; the entry point meters its usage)."""
    if deps is None:
        return dispatch(cloud_event, HANDLERS, TRIGGERS)
    return dispatch(cloud_event, handlers(deps), triggers(deps))


__all__ = ["HANDLERS", "TRIGGERS", "Received", "handle_push", "handlers", "triggers"]
