"""The disputes function's pushes: ``dispute.*`` payment facts, and the deadline tick of its schedule.

The tick is envelope-less (Cloud Scheduler's fixed attributes, ``event_type=disputes.tick``); its
instant is Pub/Sub's publish time, or an explicit ``now`` in the body on the emulators only (the test
clock of the demo and the tests). Classification follows :mod:`shared.events.consumer`.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from shared.disputes.service import DisputeService
from shared.events.consumer import Handler, Trigger, dispatch
from shared.events.envelope import Received
from shared.events.payments import DISPUTE_EVENT_TYPES
from shared.events.ticks import tick_time
from shared.once import once

TICK_EVENT_TYPE = "disputes.tick"


@once
def service() -> DisputeService:
    return DisputeService()


def _on_tick(message: Mapping[str, Any]) -> object:
    from shared.config import get_settings

    return service().tick(tick_time(message, allow_test_clock=get_settings().on_emulators))


def _on_fact(msg: Received[Any]) -> object:
    return service().on_event(msg)["status"]


HANDLERS: dict[str, Handler] = {cls.EVENT_TYPE: _on_fact for cls in DISPUTE_EVENT_TYPES}
TRIGGERS = {TICK_EVENT_TYPE: Trigger(_on_tick, frozenset({1}))}


def handle_push(cloud_event: Any) -> object:
    return dispatch(cloud_event, HANDLERS, TRIGGERS)
