"""The instant of an envelope-less scheduler tick (Cloud Scheduler publishes fixed attributes and no envelope).

One rule for every scheduled function: Pub/Sub's publish time, or an explicit ``now`` in the JSON body when
the test clock is allowed (emulators: the demo and the tests move time forward with it). The renewals
planner parses its ticks strictly (shards, refusals) in :mod:`shared.renewals.messages`.
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import json
from collections.abc import Mapping
from typing import Any


def tick_time(message: Mapping[str, Any], *, allow_test_clock: bool) -> dt.datetime:
    """The tick's instant: Pub/Sub's publish time, or an explicit ``now`` when the test clock is allowed."""
    now = dt.datetime.now(dt.UTC)
    published = message.get("publishTime") or message.get("publish_time")
    if isinstance(published, str):
        now = dt.datetime.fromisoformat(published.replace("Z", "+00:00"))
    if allow_test_clock:
        try:
            body = json.loads(base64.b64decode(message.get("data") or "", validate=True) or b"{}")
        except (binascii.Error, ValueError):
            body = {}
        if isinstance(body, dict) and isinstance(body.get("now"), str):
            now = dt.datetime.fromisoformat(body["now"].replace("Z", "+00:00"))
    return now.astimezone(dt.UTC)
