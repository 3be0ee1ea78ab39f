"""Messages internal to the renewals function, all on ``billing-ticks`` (only renewals reads it).

* The billing tick. Cloud Scheduler publishes a FIXED body and fixed attributes, so a tick carries no
  event id nor occurred_at: its body is parsed here instead of through the envelope. It is recognised
  by its ``event_type`` attribute ``billing.tick`` alone, which every publisher sets (the scheduler
  job's attributes in Terraform, the planner's fan-out and continuations, the ops command); a message
  without it is not a tick (``shared.events.consumer`` dead-letters it). "Now" is the Pub/Sub publish
  time, unless the tick carries an explicit ``now`` and the test clock is allowed. A tick without
  ``shard`` fans out one tick per shard; a tick with ``shard`` runs that shard.
* :class:`ChargeRetryDue`: the planner asks the collector to run dunning attempt ``attempt``.
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, ClassVar

from pydantic import Field

from shared.events.envelope import Event, register

TICK_EVENT_TYPE = "billing.tick"
TICK_SCHEMA_VERSION = 1  # the body below; Cloud Scheduler's attributes omit it, which means 1


def tick_attributes() -> dict[str, str]:
    """The attributes of the ticks the planner publishes itself (fan-out and continuations)."""
    return {"event_type": TICK_EVENT_TYPE, "schema_version": str(TICK_SCHEMA_VERSION)}


class TickError(ValueError):
    """A tick whose body cannot be understood (dead-lettered: refused once, it is refused every time)."""


@dataclass(frozen=True, slots=True)
class Tick:
    now: dt.datetime
    shard: int | None = None
    explicit_now: bool = False

    def body(self) -> dict[str, Any]:
        out: dict[str, Any] = {"now": self.now.astimezone(dt.UTC).isoformat().replace("+00:00", "Z")}
        if self.shard is not None:
            out["shard"] = self.shard
        return out


@register
class ChargeRetryDue(Event):
    """Run dunning attempt ``attempt`` for ``invoice_id``. Idempotency key: ``{invoice_id}:{attempt}``."""

    EVENT_TYPE: ClassVar[str] = "renewal.charge_retry_due"
    TOPIC: ClassVar[str] = "billing-ticks"

    subscription_id: str = Field(min_length=1)
    invoice_id: str = Field(min_length=1)
    attempt: int = Field(ge=2)


def is_tick(message: Mapping[str, Any]) -> bool:
    """Strictly by attribute: an envelope-less message is unclassifiable, never a tick by default."""
    attrs = message.get("attributes")
    return isinstance(attrs, Mapping) and attrs.get("event_type") == TICK_EVENT_TYPE


def _parse_time(raw: object, what: str) -> dt.datetime:
    if not isinstance(raw, str):
        raise TickError(f"{what} must be an RFC 3339 string")
    try:
        t = dt.datetime.fromisoformat(raw.replace("Z", "+00:00"))
    except ValueError as exc:
        raise TickError(f"{what} is not RFC 3339: {raw!r}") from exc
    if t.tzinfo is None:
        raise TickError(f"{what} has no time zone")
    return t.astimezone(dt.UTC)


def parse_tick(message: Mapping[str, Any], *, allow_test_clock: bool, shards: int) -> Tick:
    """A tick from a raw Pub/Sub message (``data`` base64, ``publishTime``)."""
    raw = message.get("data") or ""
    try:
        data = base64.b64decode(raw, validate=True) if isinstance(raw, str) else bytes(raw)
    except (binascii.Error, ValueError) as exc:
        raise TickError("tick data is not base64") from exc
    body: Any = {}
    if data.strip():
        try:
            body = json.loads(data)
        except ValueError as exc:
            raise TickError("tick body is not JSON") from exc
    if not isinstance(body, dict):
        raise TickError("tick body must be a JSON object")
    published = message.get("publishTime") or message.get("publish_time")
    now = _parse_time(published, "publishTime") if published else dt.datetime.now(dt.UTC)
    explicit = False
    if body.get("now") is not None:
        if not allow_test_clock:
            raise TickError("tick carries 'now' but RENEWALS_ALLOW_TEST_CLOCK is off")
        now, explicit = _parse_time(body["now"], "now"), True
    shard = body.get("shard")
    if shard is not None and (type(shard) is not int or not 0 <= shard < shards):
        raise TickError(f"shard must be an int in 0..{shards - 1}")
    return Tick(now=now, shard=shard, explicit_now=explicit)
