"""Billing ticks: recognised by attribute only; the body is parsed leniently (Cloud Scheduler sends a fixed one)
but never silently wrong."""

from __future__ import annotations

import base64
import dataclasses
import datetime as dt
import json
from typing import Any

import pytest

from shared.renewals.messages import Tick, TickError, is_tick, parse_tick

PUBLISHED = "2026-03-01T10:00:00.123Z"


def msg(body: Any, attrs: dict[str, str] | None = None, publish_time: str | None = PUBLISHED) -> dict[str, Any]:
    raw = body if isinstance(body, bytes) else json.dumps(body).encode()
    m: dict[str, Any] = {"data": base64.b64encode(raw).decode(), "attributes": attrs or {}}
    if publish_time:
        m["publishTime"] = publish_time
    return m


def test_scheduler_tick_uses_the_publish_time() -> None:
    m = msg({}, {"event_type": "billing.tick", "producer": "cloud-scheduler", "schedule": "billing-tick"})
    assert is_tick(m)
    t = parse_tick(m, allow_test_clock=False, shards=16)
    assert t == Tick(now=dt.datetime(2026, 3, 1, 10, 0, 0, 123000, tzinfo=dt.UTC), shard=None, explicit_now=False)


def test_empty_body_with_the_tick_attribute_is_a_fan_out_tick() -> None:
    m = msg(b"", {"event_type": "billing.tick"})
    assert is_tick(m)
    assert parse_tick(m, allow_test_clock=False, shards=4).shard is None


@pytest.mark.parametrize(
    "attrs", [{}, {"producer": "cloud-scheduler"}, {"event_type": ""}, {"event_type": "Billing.Tick"}]
)
def test_without_the_tick_attribute_a_message_is_not_a_tick(attrs: dict[str, str]) -> None:
    # Classified strictly by attribute: an envelope-less message is dead-lettered, never planned.
    assert not is_tick(msg(b"", attrs))
    assert not is_tick({"data": "", "attributes": "billing.tick"})


def test_explicit_now_only_with_the_test_clock() -> None:
    m = msg({"now": "2026-02-28T09:00:00Z", "shard": 3})
    with pytest.raises(TickError):
        parse_tick(m, allow_test_clock=False, shards=4)
    t = parse_tick(m, allow_test_clock=True, shards=4)
    assert (t.now, t.shard, t.explicit_now) == (dt.datetime(2026, 2, 28, 9, tzinfo=dt.UTC), 3, True)
    assert t.body() == {"now": "2026-02-28T09:00:00Z", "shard": 3}


@pytest.mark.parametrize(
    "body",
    [b"not json", [1, 2], {"shard": 9}, {"shard": "1"}, {"now": "2026-02-28T09:00:00"}, {"now": 5}],
)
def test_malformed_ticks_are_refused(body: Any) -> None:
    with pytest.raises(TickError):
        parse_tick(msg(body), allow_test_clock=True, shards=4)


def test_typed_events_are_not_ticks() -> None:
    assert not is_tick(msg({}, {"event_type": "invoice.finalized"}))


def test_the_fan_out_publishes_one_tick_per_shard_through_the_injected_publisher() -> None:
    from shared.events.publisher import RecordingPublisher
    from shared.renewals.config import renewal_settings
    from shared.renewals.deps import Deps
    from shared.renewals.planner import fan_out

    rec = RecordingPublisher()
    now = dt.datetime(2026, 1, 31, 9, 0, tzinfo=dt.UTC)
    cfg = dataclasses.replace(renewal_settings(), shards=3)
    assert fan_out(Tick(now=now), cfg, Deps(publisher=rec)) == {"shards": 3}
    assert [json.loads(s.data) for s in rec.on("billing-ticks")] == [
        {"now": "2026-01-31T09:00:00Z", "shard": i} for i in range(3)
    ]
    assert {tuple(s.attributes.items()) for s in rec.sent} == {
        (("event_type", "billing.tick"), ("schema_version", "1"))
    }
