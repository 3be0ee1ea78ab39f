"""The publisher port: every message any function sends goes through one of these.

Why a port: business code (the planner, the collector, the subscriptions API, invoicing, webhooks) must not
know the Pub/Sub client, so tests can hand it a publisher that records, fails or stalls instead of
patching module functions. Two implementations with the same semantics:

* :class:`PubSubPublisher` (production, and integration tests against the emulator): builds the envelope
  (:func:`shared.events.envelope.build_message`, so the event id is stable: the same fact republished is
  the same ``event_id``), publishes through the shared client (where usage is counted: ``shared.usage``)
  and waits for the server's ack of every message within ``timeout_s``; a lost publish raises;
* :class:`RecordingPublisher` (unit tests): the same envelope, kept in memory in publish order.

A batch is published in its order (every message handed to the client before the first wait, so they
share RPCs) and answers the message ids in that order. Envelope-less messages (the billing ticks, whose
shape Cloud Scheduler fixes) go through :meth:`Publisher.publish_raw`.
"""

from __future__ import annotations

import datetime as dt
import itertools
import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, NamedTuple, Protocol

from shared.events.envelope import Event, build_message

if TYPE_CHECKING:
    from shared.config import Settings

DEFAULT_TIMEOUT_S = 30.0


class Outgoing(NamedTuple):
    """One event of a batch: the idempotency key gives its stable event id."""

    event: Event
    idempotency_key: str
    occurred_at: dt.datetime


class RawMessage(NamedTuple):
    """A message without the envelope: ``topic`` is the short topic name (e.g. ``billing-ticks``), or a
    full ``projects/<p>/topics/<t>`` path for a message that must go back to the exact topic it came from
    (a dead-letter replay)."""

    topic: str
    data: bytes
    attributes: Mapping[str, str]
    ordering_key: str | None = None


class Publisher(Protocol):
    """Publish and wait for the ack; a failure raises (the caller's delivery is then redelivered)."""

    def publish(
        self,
        event: Event,
        *,
        idempotency_key: str,
        occurred_at: dt.datetime,
        event_id: str | None = None,
        ordering_key: str | None = None,
        timeout_s: float = DEFAULT_TIMEOUT_S,
        routing: Mapping[str, str] | None = None,
    ) -> str: ...

    def publish_all(
        self, items: Sequence[tuple[Event, str, dt.datetime]], timeout_s: float = DEFAULT_TIMEOUT_S
    ) -> list[str]: ...

    def publish_raw(self, messages: Sequence[RawMessage], timeout_s: float = DEFAULT_TIMEOUT_S) -> list[str]: ...


def _settings() -> Settings:
    from shared.config import get_settings

    return get_settings()


@dataclass(frozen=True, slots=True)
class _Prepared:
    topic: str  # short name
    data: bytes
    attributes: dict[str, str]
    ordering_key: str | None = None


def _prepare(
    event: Event,
    key: str,
    occurred_at: dt.datetime,
    *,
    producer: str | None,
    event_id: str | None = None,
    ordering_key: str | None = None,
    routing: Mapping[str, str] | None = None,
) -> _Prepared:
    data, attrs = build_message(
        event, idempotency_key=key, occurred_at=occurred_at, event_id=event_id, producer=producer, routing=routing
    )
    return _Prepared(event.TOPIC, data, attrs, ordering_key)


class _Base:
    """Envelope building shared by both implementations; subclasses only send prepared messages."""

    def _producer(self) -> str | None:
        raise NotImplementedError

    def _send(self, messages: Sequence[_Prepared], timeout_s: float) -> list[str]:
        raise NotImplementedError

    def publish(
        self,
        event: Event,
        *,
        idempotency_key: str,
        occurred_at: dt.datetime,
        event_id: str | None = None,
        ordering_key: str | None = None,
        timeout_s: float = DEFAULT_TIMEOUT_S,
        routing: Mapping[str, str] | None = None,
    ) -> str:
        msg = _prepare(
            event,
            idempotency_key,
            occurred_at,
            producer=self._producer(),
            event_id=event_id,
            ordering_key=ordering_key,
            routing=routing,
        )
        return self._send([msg], timeout_s)[0]

    def publish_all(
        self, items: Sequence[tuple[Event, str, dt.datetime]], timeout_s: float = DEFAULT_TIMEOUT_S
    ) -> list[str]:
        producer = self._producer()
        return self._send([_prepare(e, k, t, producer=producer) for e, k, t in items], timeout_s)

    def publish_raw(self, messages: Sequence[RawMessage], timeout_s: float = DEFAULT_TIMEOUT_S) -> list[str]:
        return self._send([_Prepared(m.topic, m.data, dict(m.attributes), m.ordering_key) for m in messages], timeout_s)


class PubSubPublisher(_Base):
    """Through the process-wide (optionally metered) client of :mod:`shared.clients`, created lazily."""

    def __init__(self, client: Any = None) -> None:
        self._client = client  # None: shared.clients.publisher() at each call (tests switch projects)

    def _producer(self) -> str | None:
        return _settings().function_name

    def _send(self, messages: Sequence[_Prepared], timeout_s: float) -> list[str]:
        if not messages:
            return []
        if self._client is not None:
            client = self._client
        else:
            from shared import clients

            client = clients.publisher()
        sent = []
        for m in messages:
            path = m.topic if m.topic.startswith("projects/") else _settings().topic_path(m.topic)
            kwargs = {"ordering_key": m.ordering_key} if m.ordering_key else {}
            sent.append((path, m, client.publish(path, m.data, **m.attributes, **kwargs)))
        # Waiting matters: a function that answers before the ack can be frozen or killed with the
        # message still in the client's buffer, and the event would be lost.
        ids = []
        for path, m, f in sent:
            try:
                ids.append(str(f.result(timeout=timeout_s)))
            except Exception:
                if m.ordering_key:  # a failed ordered publish pauses its key in the client until resumed
                    _resume(client, path, m.ordering_key)
                raise
        return ids


def _resume(client: Any, path: str, ordering_key: str) -> None:
    try:
        client.resume_publish(path, ordering_key)
    except (RuntimeError, ValueError):  # not paused, or ordering not enabled: nothing to resume
        pass


@dataclass(frozen=True, slots=True)
class Sent:
    """A message a :class:`RecordingPublisher` accepted, as Pub/Sub would have stored it."""

    message_id: str
    topic: str
    data: bytes
    attributes: dict[str, str]
    ordering_key: str | None = None

    def event(self) -> Event:
        """The typed event (envelope messages only)."""
        from shared.events.envelope import parse_message

        return parse_message(self.data, self.attributes, self.message_id).event


@dataclass
class RecordingPublisher(_Base):
    """In memory, for unit tests: accepts every message and keeps it in publish order."""

    producer: str | None = "test"
    sent: list[Sent] = field(default_factory=list)
    _ids: itertools.count[int] = field(default_factory=lambda: itertools.count(1), repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def _producer(self) -> str | None:
        return self.producer

    def _send(self, messages: Sequence[_Prepared], timeout_s: float) -> list[str]:
        with self._lock:
            out = []
            for m in messages:
                s = Sent(str(next(self._ids)), m.topic, m.data, m.attributes, m.ordering_key)
                self.sent.append(s)
                out.append(s.message_id)
            return out

    def on(self, topic: str) -> list[Sent]:
        return [s for s in self.sent if s.topic == topic]


_default: Publisher = PubSubPublisher()  # holds no client: it takes the shared one at each publish


def default_publisher() -> Publisher:
    """The process-wide Pub/Sub publisher, for code whose caller injects none."""
    return _default
