"""The usage aggregator: the push consumer of ``usage-events`` (dedup and fold, exactly once, then thresholds).

Its own module, apart from the HTTP routes in :mod:`shared.metering.api`: the aggregator's first delivery needs
neither the edge's request checks nor the ingestion path, and a cold instance should not import them.
"""

from __future__ import annotations

import datetime as dt
import functools
from collections.abc import Sequence
from typing import Any

from shared.domain.meters import Event
from shared.events.consumer import Handler, dispatch
from shared.events.envelope import Received
from shared.events.publisher import Publisher, default_publisher
from shared.events.usage import UsageBatch
from shared.log import get_logger
from shared.metering.config import metering_settings
from shared.metering.ingest import to_domain
from shared.metering.store import MeteringStore, utcnow
from shared.metering.window import Window
from shared.once import once

log = get_logger(__name__)


def on_batch(
    msg: Received[UsageBatch],
    store: MeteringStore | None = None,
    publisher: Publisher | None = None,
    window: UsageWindow | None = None,
) -> dict[str, int]:
    """Re-check the times (internal producers publish directly), then fold the events exactly once in the
    instance's window (:mod:`shared.metering.window`: concurrent deliveries share one commit per customer) and
    return only once they are committed. With an explicit ``store`` or ``publisher`` and no ``window``, the
    delivery is folded on its own."""
    s = store or default_store()
    policy = metering_settings().time_policy
    received = min(msg.event.received_at, utcnow() + policy.skew)
    ok = [to_domain(e) for e in msg.event.events if policy.problem(e.timestamp.astimezone(dt.UTC), received) is None]
    if len(ok) < len(msg.event.events):
        log.warning("usage events refused at aggregation", extra={"refused": len(msg.event.events) - len(ok)})
    if not ok:
        out = {"applied": 0, "duplicates": 0, "late": 0, "writes": 0, "thresholds": 0, "window": 0}
    elif window is not None:
        out = window.submit(ok)
    elif store is None and publisher is None:
        out = default_window().submit(ok)
    else:
        out = fold_window(s, publisher or default_publisher(), [ok])[0]
    log.info("usage batch applied", extra=out)
    return out


UsageWindow = Window[list[Event], dict[str, int]]


def fold_window(store: MeteringStore, publisher: Publisher, parts: Sequence[list[Event]]) -> list[dict[str, int]]:
    """ONE fold of a window's deliveries, then the thresholds of the customers they touched, once (also re-run on
    a redelivery: a crossing whose invoice request was lost is re-sent). The window's writes and threshold
    requests are reported on its first delivery (its leader)."""
    from shared.metering.thresholds import Thresholds

    results = store.apply_parts(parts)
    requested = Thresholds(store, publisher).after_batch([e for p in parts for e in p])
    return [
        {
            "applied": r.applied,
            "duplicates": r.duplicates,
            "late": r.late,
            "writes": r.writes,
            "thresholds": len(requested) if i == 0 else 0,
            "window": len(parts) if i == 0 else 0,
        }
        for i, r in enumerate(results)
    ]


def usage_window(store: MeteringStore, publisher: Publisher, *, eager_when_idle: bool = True) -> UsageWindow:
    """A window folding into ``store`` (sizes from the settings, read per window); ``eager_when_idle=False`` makes
    even a delivery to an idle instance wait the window (tests that start deliveries together)."""
    return Window(
        run=functools.partial(fold_window, store, publisher),
        size=len,
        coalesce_s=lambda: metering_settings().coalesce_ms / 1000,
        cap=lambda: metering_settings().coalesce_max_events,
        eager_when_idle=eager_when_idle,
    )


@once
def default_store() -> MeteringStore:
    """The instance's store (its meter cache lives as long as the instance)."""
    return MeteringStore()


@once
def default_window() -> UsageWindow:
    return usage_window(default_store(), default_publisher())


HANDLERS: dict[str, Handler] = {UsageBatch.EVENT_TYPE: on_batch}


def handle_push(cloud_event: Any) -> object:
    return dispatch(cloud_event, HANDLERS)


__all__ = ["UsageWindow", "default_window", "fold_window", "handle_push", "on_batch", "usage_window"]
