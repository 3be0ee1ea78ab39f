"""The backfill function's push: a Cloud Scheduler tick (``event_type=backfill.tick``) on its own topic.

Why a function of its own rather than a route of the public webhook function: it holds PSP API
credentials the internet-facing function must not, it pages for minutes where a webhook answers in
seconds (its own timeout and instances), and a Pub/Sub tick gives retries (a nack resumes from the
saved cursor) and dead-lettering for free. Classification follows :mod:`shared.events.consumer`.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from shared.events.consumer import Trigger, dispatch

TICK_EVENT_TYPE = "backfill.tick"


def _on_tick(message: Mapping[str, Any]) -> object:
    from shared.backfill.runner import default_backfill

    return default_backfill().run_tick()


TRIGGERS = {TICK_EVENT_TYPE: Trigger(_on_tick, frozenset({1}))}


def handle_push(cloud_event: Any) -> object:
    return dispatch(cloud_event, {}, TRIGGERS)
