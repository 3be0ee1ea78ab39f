"""The edge check of a usage batch, without I/O: whatever path it takes (a valid batch accepted whole, or event
by event), each event gets the result an event-by-event reading gives: rejected (shape, time bounds), duplicate
(same customer and id earlier in the batch) or accepted, in request order."""

from __future__ import annotations

import datetime as dt
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from shared.domain.meters import TimePolicy
from shared.events.usage import UsageEventIn
from shared.metering.ingest import check

NOW = dt.datetime(2026, 3, 29, 1, 30, tzinfo=dt.UTC)
POLICY = TimePolicy(horizon=dt.timedelta(days=35), skew=dt.timedelta(minutes=5))
OLDEST, NEWEST = -POLICY.horizon.total_seconds(), POLICY.skew.total_seconds()
ZONES = [dt.UTC, dt.timezone(dt.timedelta(hours=5, minutes=30)), dt.timezone(dt.timedelta(hours=-8))]


def _reference(raws: list[Any]) -> tuple[list[str], list[int], list[str]]:
    """Event by event: statuses, the indexes not accepted, the ids accepted."""
    statuses: list[str] = []
    refused: list[int] = []
    accepted: list[str] = []
    seen: set[tuple[str, str]] = set()
    for i, raw in enumerate(raws):
        try:
            ev = UsageEventIn.model_validate(raw)
        except ValidationError:
            statuses.append("rejected")
        else:
            if POLICY.problem(ev.timestamp, NOW) is not None:
                statuses.append("rejected")
            elif (ev.customer, ev.id) in seen:
                statuses.append("duplicate")
            else:
                seen.add((ev.customer, ev.id))
                accepted.append(ev.id)
                statuses.append("accepted")
                continue
        refused.append(i)
    return statuses, refused, accepted


# offsets from NOW in seconds: at and next to both bounds, and well inside them
_offset = st.sampled_from([OLDEST - 1, OLDEST, OLDEST + 1, -3600.0, 0.0, NEWEST - 1, NEWEST, NEWEST + 1]) | (
    st.floats(OLDEST, NEWEST).map(round)
)


@st.composite
def _event(draw: st.DrawFn) -> dict[str, Any]:
    at = (NOW + dt.timedelta(seconds=draw(_offset))).astimezone(draw(st.sampled_from(ZONES)))
    ev: dict[str, Any] = {
        "id": draw(st.sampled_from(["e1", "e2", "e3", "e4"])),
        "customer": draw(st.sampled_from(["c1", "c2"])),
        "event_name": "api_call",
        "timestamp": at.isoformat(),
        "properties": {"n": draw(st.integers(0, 10))},
    }
    if draw(st.integers(0, 19)) == 0:  # now and then an invalid event: a float, a bad id
        ev[draw(st.sampled_from(["properties", "id"]))] = draw(st.sampled_from([{"n": 1.5}, "a/b"]))
    return ev


@settings(max_examples=300, deadline=None)
@given(st.lists(_event(), min_size=1, max_size=12))
def test_each_event_gets_the_result_of_an_event_by_event_reading(raws: list[dict[str, Any]]) -> None:
    got = check(raws, NOW, POLICY)
    statuses, refused, accepted = _reference(raws)
    assert list(got.results) == statuses
    assert [r["index"] for r in got.refused] == refused
    assert [e.id for e in got.accepted] == accepted
    assert got.counts() == {k: statuses.count(k) for k in ("accepted", "duplicate", "rejected")}


def _batch(offsets: list[float], ids: list[str] | None = None) -> list[dict[str, Any]]:
    return [
        {
            "id": (ids or [f"e{i}" for i in range(len(offsets))])[i],
            "customer": "c1",
            "event_name": "api_call",
            "timestamp": (NOW + dt.timedelta(seconds=s)).isoformat(),
        }
        for i, s in enumerate(offsets)
    ]


def test_only_the_out_of_time_events_of_a_valid_batch_are_rejected() -> None:
    """Both ends of the batch decide: the one too old and the one too far ahead, wherever they are in it."""
    got = check(_batch([-60, NEWEST + 1, OLDEST - 1, 0]), NOW, POLICY)
    assert got.results == ("accepted", "rejected", "rejected", "accepted")
    assert [r["reason"].split(":")[0] for r in got.refused] == ["timestamp_in_future", "timestamp_too_old"]
    assert [e.id for e in got.accepted] == ["e0", "e3"]
    assert check(_batch([0, NEWEST + 1]), NOW, POLICY).results == ("accepted", "rejected")  # only the latest
    assert check(_batch([OLDEST - 1, 0]), NOW, POLICY).results == ("rejected", "accepted")  # only the earliest


def test_a_repeated_id_in_a_valid_in_time_batch_is_a_duplicate() -> None:
    got = check(_batch([0, -1, -2], ids=["a", "b", "a"]), NOW, POLICY)
    assert got.results == ("accepted", "accepted", "duplicate")
    assert got.refused == ({"index": 2, "id": "a", "reason": "duplicate: the same customer and id earlier here"},)


def test_a_valid_in_time_batch_is_accepted_whole_in_order() -> None:
    raws = _batch([0, OLDEST, NEWEST, -5])
    got = check(raws, NOW, POLICY)
    assert got.answer() == {
        "accepted": 4,
        "duplicate": 0,
        "rejected": 0,
        "results": ["accepted"] * 4,
        "errors": [],
    }
    assert [e.id for e in got.accepted] == ["e0", "e1", "e2", "e3"]
