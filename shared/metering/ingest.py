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
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from pydantic import TypeAdapter, ValidationError

from shared.domain.meters import Event, TimePolicy, number_problem
from shared.events.envelope import Envelope, make_event_id
from shared.events.publisher import Publisher, RawMessage
from shared.events.usage import UsageBatch, UsageEventIn
from shared.log import traceparent

MAX_BODY_BYTES = 2 * 1024 * 1024  # 1,000 events of ~1-2 kB
MAX_BATCH_EVENTS = 1000  # UsageBatch.events' bound


@dataclass(frozen=True, slots=True)
class Checked:
    """The result of each event in request order, the details of those not accepted, the accepted events."""

    results: tuple[str, ...]
    refused: tuple[dict[str, Any], ...]
    accepted: tuple[UsageEventIn, ...]

    def counts(self) -> dict[str, int]:
        return {k: self.results.count(k) for k in ("accepted", "duplicate", "rejected")}

    def answer(self) -> dict[str, Any]:
        """``results[i]`` is event i's status; ``errors`` says why for each one not accepted."""
        return {**self.counts(), "results": list(self.results), "errors": list(self.refused)}


def _reason(exc: ValidationError) -> str:
    e = exc.errors(include_url=False, include_context=False, include_input=False)[0]
    where = ".".join(str(x) for x in e.get("loc", ()))
    return f"invalid: {where}: {e.get('msg', 'invalid')}"[:300]


_ALL = TypeAdapter(list[UsageEventIn])


def _one(raw: Any) -> tuple[UsageEventIn | None, str | None]:
    """One event validated on its own, with the reason it is refused (the slow path of a batch with errors)."""
    if not isinstance(raw, Mapping):
        return None, "invalid: an event is a JSON object"
    props = raw.get("properties")
    if isinstance(props, Mapping):
        for k, v in props.items():
            if p := number_problem(v):
                return None, f"invalid: properties.{k}: {p}"
    try:
        return UsageEventIn.model_validate(raw), None
    except ValidationError as exc:
        return None, _reason(exc)


def check(raw_events: Sequence[Any], now: dt.datetime, policy: TimePolicy) -> Checked:
    """One result per event: ``accepted``, ``duplicate`` (same customer and id earlier in the batch) or
    ``rejected`` with a reason (shape, bounds, a float, a timestamp beyond the horizon or the skew).

    The whole batch is validated in one call first (the common case: nothing wrong); only a batch with an
    invalid event is validated event by event, to say which and why. A valid batch whose earliest and latest
    timestamps are in time and whose (customer, id) pairs are all distinct is accepted whole without a per-event
    loop: the policy's bounds are one interval, so its two ends decide every event (the ingestion CPU budget)."""
    in_time = policy.bounds(now)
    parsed: list[tuple[UsageEventIn | None, str | None]]
    try:
        valid = _ALL.validate_python(raw_events)
    except ValidationError:
        parsed = [_one(raw) for raw in raw_events]
    else:
        # exact timedeltas from one instant: each timestamp's offset is read once (comparing two aware datetimes
        # of different tzinfo objects reads both offsets at every comparison)
        ages = [e.timestamp - now for e in valid]
        if not valid or (
            in_time(valid[ages.index(min(ages))].timestamp) is None
            and in_time(valid[ages.index(max(ages))].timestamp) is None
            and len({(e.customer, e.id) for e in valid}) == len(valid)
        ):
            return Checked(("accepted",) * len(valid), (), tuple(valid))
        parsed = [(e, None) for e in valid]
    statuses: list[str] = []
    refused: list[dict[str, Any]] = []
    accepted: list[UsageEventIn] = []
    seen: set[tuple[str, str]] = set()
    for i, (ev, invalid) in enumerate(parsed):
        problem = invalid
        if ev is not None and problem is None:
            problem = in_time(ev.timestamp)  # aware datetimes compare across offsets
        if problem is not None or ev is None:
            raw = raw_events[i]
            rid = raw.get("id") if isinstance(raw, Mapping) and isinstance(raw.get("id"), str) else None
            statuses.append("rejected")
            refused.append({"index": i, "id": rid[:128] if rid else None, "reason": problem or "invalid"})
        elif (key := (ev.customer, ev.id)) in seen:
            statuses.append("duplicate")
            refused.append({"index": i, "id": ev.id, "reason": "duplicate: the same customer and id earlier here"})
        else:
            seen.add(key)
            accepted.append(ev)
            statuses.append("accepted")
    return Checked(tuple(statuses), tuple(refused), tuple(accepted))


def publish_events(
    events: Sequence[UsageEventIn], publisher: Publisher, now: dt.datetime, *, body: bytes | None = None
) -> str:
    """Publish accepted events as one ``usage.batch`` message and wait for Pub/Sub's ack (raises if lost).

    ``body``: the request's raw ``{"events": [...]}`` when every event of it was accepted; the message is then
    that very JSON with the batch fields put in front (no second serialisation of 1,000 events). The batch id
    is random: deduplication is by event id, so a retried request needs no stable message id. An internal
    producer's batch of more than 1,000 events goes out as several messages (each within the contract); an
    empty one is a ``ValueError`` (a message with no event would only be dead-lettered).
    """
    bid = uuid.uuid4().hex
    if body is not None:
        data = b'{"batch_id":"%s","received_at":"%s",' % (bid.encode(), _rfc3339(now).encode()) + body.lstrip()[1:]
        env = Envelope(
            event_type=UsageBatch.EVENT_TYPE,
            event_id=make_event_id(UsageBatch.EVENT_TYPE, bid),
            schema_version=UsageBatch.SCHEMA_VERSION,
            occurred_at=now,
            idempotency_key=bid,
            traceparent=traceparent(),
            producer=_producer(),
        )
        return publisher.publish_raw([RawMessage(UsageBatch.TOPIC, data, env.attributes())])[0]
    if not events:
        raise ValueError("a usage batch holds at least one event")
    last = ""
    for i in range(0, len(events), MAX_BATCH_EVENTS):  # the contract's bound: a bigger message would dead-letter
        chunk = tuple(events[i : i + MAX_BATCH_EVENTS])
        cid = bid if i == 0 else uuid.uuid4().hex
        last = publisher.publish(
            UsageBatch.model_construct(batch_id=cid, received_at=now, events=chunk),  # each event validated
            idempotency_key=cid,
            occurred_at=now,
        )
    return last


def _rfc3339(t: dt.datetime) -> str:
    return t.astimezone(dt.UTC).isoformat().replace("+00:00", "Z")


def _producer() -> str | None:
    from shared.config import get_settings

    return get_settings().function_name


def to_domain(ev: UsageEventIn) -> Event:
    return Event(id=ev.id, customer=ev.customer, name=ev.event_name, timestamp=ev.timestamp, properties=ev.properties)
