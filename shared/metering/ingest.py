"""Ingestion: check each event at the edge, answer a result per event, publish the accepted ones as ONE message.

Why one message per batch and no Firestore here: the endpoint must keep up with a bare "validate and publish"
function, so deduplication against earlier batches is the aggregator's (it reads the ids anyway to apply them);
the edge reports what it can know without a read: ``rejected`` with a reason, or ``duplicate`` for an id
repeated within the request. ``accepted`` means "will be counted exactly once": resending an accepted event
(a retry after a timeout) is always safe. The request never half-fails: either the message is acknowledged by
Pub/Sub and the answer lists every event's result, or nothing was published and the answer is a 503 (retry the
whole batch; ids make that safe). Internal producers call :func:`publish_events` (same checks, same message).
"""

from __future__ import annotations

import datetime as dt
import hashlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from pydantic import ValidationError

from shared.domain.meters import Event, TimePolicy, number_problem
from shared.events.publisher import Publisher
from shared.metering.events import UsageBatch, UsageEventIn

MAX_BODY_BYTES = 2 * 1024 * 1024  # 1,000 events of ~1-2 kB


@dataclass(frozen=True, slots=True)
class Checked:
    """The per-event results (in request order) and the accepted events."""

    results: tuple[dict[str, Any], ...]
    accepted: tuple[UsageEventIn, ...]

    def counts(self) -> dict[str, int]:
        out = {"accepted": 0, "duplicate": 0, "rejected": 0}
        for r in self.results:
            out[r["status"]] += 1
        return out


def _reason(exc: ValidationError) -> str:
    e = exc.errors(include_url=False, include_context=False, include_input=False)[0]
    where = ".".join(str(x) for x in e.get("loc", ()))
    return f"invalid: {where}: {e.get('msg', 'invalid')}"[:300]


def check(raw_events: Sequence[Any], now: dt.datetime, policy: TimePolicy) -> Checked:
    """One result per event: ``accepted``, ``duplicate`` (same customer and id earlier in the batch) or
    ``rejected`` with a reason (shape, bounds, a float, a timestamp beyond the horizon or the skew)."""
    results: list[dict[str, Any]] = []
    accepted: list[UsageEventIn] = []
    seen: set[tuple[str, str]] = set()
    for i, raw in enumerate(raw_events):
        rid = raw.get("id") if isinstance(raw, Mapping) and isinstance(raw.get("id"), str) else None
        res: dict[str, Any] = {"index": i, "id": rid[:128] if rid else None}
        problem = None
        ev = None
        if not isinstance(raw, Mapping):
            problem = "invalid: an event is a JSON object"
        else:
            props = raw.get("properties")
            if isinstance(props, Mapping):
                problem = next(
                    (f"invalid: properties.{k}: {p}" for k, v in props.items() if (p := number_problem(v))), None
                )
            if problem is None:
                try:
                    ev = UsageEventIn.model_validate(raw)
                except ValidationError as exc:
                    problem = _reason(exc)
        if ev is not None and problem is None:
            problem = policy.problem(ev.timestamp.astimezone(dt.UTC), now)
        if problem is not None or ev is None:
            res |= {"status": "rejected", "reason": problem or "invalid"}
        elif (ev.customer, ev.id) in seen:
            res |= {"status": "duplicate"}
        else:
            seen.add((ev.customer, ev.id))
            accepted.append(ev)
            res |= {"status": "accepted"}
        results.append(res)
    return Checked(tuple(results), tuple(accepted))


def batch_id(events: Sequence[UsageEventIn]) -> str:
    """Deterministic per batch content: a retried identical request is the same message id downstream."""
    h = hashlib.sha256()
    for e in events:
        h.update(f"{e.customer}\x1f{e.id}\x1e".encode())
    return h.hexdigest()[:40]


def publish_events(events: Sequence[UsageEventIn], publisher: Publisher, now: dt.datetime) -> str:
    """Publish accepted events as one ``usage.batch`` message and wait for Pub/Sub's ack (raises if lost)."""
    bid = batch_id(events)
    return publisher.publish(
        UsageBatch(batch_id=bid, received_at=now, events=tuple(events)), idempotency_key=bid, occurred_at=now
    )


def to_domain(ev: UsageEventIn) -> Event:
    return Event(id=ev.id, customer=ev.customer, name=ev.event_name, timestamp=ev.timestamp, properties=ev.properties)
