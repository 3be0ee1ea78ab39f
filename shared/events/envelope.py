"""The envelope every Pub/Sub message carries, and the publish / parse helpers around it.

Why attributes: consumers, dead-letter tooling and subscription filters can route and deduplicate on
``event_type``, ``event_id`` and ``idempotency_key`` without decoding the body, and the trace context
survives the hop so one trace covers webhook -> invoice -> charge.

Message data is the event body as JSON (a versioned pydantic contract); attributes are::

    event_type       e.g. "payment.succeeded"
    event_id         deterministic: uuid5(event_type, idempotency_key) unless given
    schema_version   integer, bumped on a breaking change of the body (rule: shared.events.consumer)
    occurred_at      RFC 3339 UTC, when the fact happened (not when it was published)
    idempotency_key  the business key consumers deduplicate on
    traceparent      W3C trace context of the publisher, when there is one
    producer         the function that published
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import hashlib
import json
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, ClassVar, Generic, TypeVar

from pydantic import BaseModel, ConfigDict, ValidationError

from shared.log import traceparent

_NAMESPACE = uuid.UUID("5b0c1c1e-7a52-4d7e-9c55-6a1f2f0d9b10")


class EnvelopeError(ValueError):
    """A message that is not a valid envelope or whose body does not match its contract."""


class Event(BaseModel):
    """Base of every event contract: immutable, strict about unknown fields."""

    # defer_build: a contract's validator and serializer are built on its first use, not at import (cold start).
    model_config = ConfigDict(frozen=True, extra="forbid", defer_build=True)

    EVENT_TYPE: ClassVar[str]
    SCHEMA_VERSION: ClassVar[int] = 1
    TOPIC: ClassVar[str]


E = TypeVar("E", bound=Event)

_REGISTRY: dict[tuple[str, int], type[Event]] = {}


def register(cls: type[E]) -> type[E]:
    """Class decorator: make a contract parseable by (event_type, schema_version)."""
    k = (cls.EVENT_TYPE, cls.SCHEMA_VERSION)
    if k in _REGISTRY and _REGISTRY[k] is not cls:
        raise RuntimeError(f"duplicate event contract {k}")
    _REGISTRY[k] = cls
    return cls


def load_contracts() -> None:
    """Import (register) every contract module; cheap after the first call."""
    from shared.events import billing, disputes, payments, probe, reconciliation, usage  # noqa: F401


def registered() -> dict[tuple[str, int], type[Event]]:
    load_contracts()
    return dict(_REGISTRY)


def _rfc3339(t: dt.datetime) -> str:
    if t.tzinfo is None:
        raise ValueError("occurred_at must be timezone-aware")
    return t.astimezone(dt.UTC).isoformat().replace("+00:00", "Z")


@dataclass(frozen=True, slots=True)
class Envelope:
    event_type: str
    event_id: str
    schema_version: int
    occurred_at: dt.datetime
    idempotency_key: str
    traceparent: str | None = None
    producer: str | None = None

    def attributes(self) -> dict[str, str]:
        attrs = {
            "event_type": self.event_type,
            "event_id": self.event_id,
            "schema_version": str(self.schema_version),
            "occurred_at": _rfc3339(self.occurred_at),
            "idempotency_key": self.idempotency_key,
        }
        if self.traceparent:
            attrs["traceparent"] = self.traceparent
        if self.producer:
            attrs["producer"] = self.producer
        return attrs

    @classmethod
    def from_attributes(cls, attrs: Mapping[str, str]) -> Envelope:
        missing = [
            k
            for k in ("event_type", "event_id", "schema_version", "occurred_at", "idempotency_key")
            if not attrs.get(k)
        ]
        if missing:
            raise EnvelopeError(f"message attributes missing: {', '.join(missing)}")
        try:
            version = int(attrs["schema_version"])
            occurred = dt.datetime.fromisoformat(attrs["occurred_at"].replace("Z", "+00:00"))
        except ValueError as exc:
            raise EnvelopeError(f"malformed envelope attribute: {exc}") from exc
        if occurred.tzinfo is None:
            raise EnvelopeError("occurred_at has no time zone")
        return cls(
            event_type=attrs["event_type"],
            event_id=attrs["event_id"],
            schema_version=version,
            occurred_at=occurred,
            idempotency_key=attrs["idempotency_key"],
            traceparent=attrs.get("traceparent"),
            producer=attrs.get("producer"),
        )


@dataclass(frozen=True, slots=True)
class Received(Generic[E]):
    """A parsed delivery: the envelope, the typed event and the transport's ids."""

    envelope: Envelope
    event: E
    message_id: str
    publish_time: str | None = None


_NAMESPACE_BYTES = _NAMESPACE.bytes


def make_event_id(event_type: str, idempotency_key: str) -> str:
    """``str(uuid.uuid5(_NAMESPACE, event_type + US + key))``, computed without the ``UUID`` object (hot path
    of every publish: a third of the cost was the object's checks and formatting)."""
    name = f"{event_type}\x1f{idempotency_key}".encode()
    digest = bytearray(hashlib.sha1(_NAMESPACE_BYTES + name, usedforsecurity=False).digest()[:16])  # as uuid5 does
    digest[6] = (digest[6] & 0x0F) | 0x50  # version 5
    digest[8] = (digest[8] & 0x3F) | 0x80  # RFC 4122 variant
    h = digest.hex()
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"


def build_message(
    event: Event,
    *,
    idempotency_key: str,
    occurred_at: dt.datetime,
    event_id: str | None = None,
    producer: str | None = None,
    routing: Mapping[str, str] | None = None,
) -> tuple[bytes, dict[str, str]]:
    """Serialise an event and its envelope (pure; the publisher port sends the result).

    ``routing``: extra attributes for subscription filters (never overriding the envelope's own).
    """
    if not idempotency_key:
        raise ValueError("idempotency_key is required")
    env = Envelope(
        event_type=event.EVENT_TYPE,
        event_id=event_id or make_event_id(event.EVENT_TYPE, idempotency_key),
        schema_version=event.SCHEMA_VERSION,
        occurred_at=occurred_at,
        idempotency_key=idempotency_key,
        traceparent=traceparent(),
        producer=producer,
    )
    return event.model_dump_json().encode(), {**(routing or {}), **env.attributes()}


def publish(
    event: Event,
    *,
    idempotency_key: str,
    occurred_at: dt.datetime,
    event_id: str | None = None,
    ordering_key: str | None = None,
    timeout_s: float = 30.0,
    routing: Mapping[str, str] | None = None,
) -> str:
    """Publish to the event's topic through the default publisher port and wait for the server's ack.

    A convenience for code without an injected :class:`shared.events.publisher.Publisher`; the port holds
    the semantics (stable event id, wait for the ack within ``timeout_s``).
    """
    from shared.events.publisher import default_publisher

    return default_publisher().publish(
        event,
        idempotency_key=idempotency_key,
        occurred_at=occurred_at,
        event_id=event_id,
        ordering_key=ordering_key,
        timeout_s=timeout_s,
        routing=routing,
    )


def parse_message(
    data: bytes, attributes: Mapping[str, str], message_id: str, publish_time: str | None = None
) -> Received[Event]:
    """Decode one Pub/Sub message into its registered contract."""
    env = Envelope.from_attributes(attributes)
    cls = _REGISTRY.get((env.event_type, env.schema_version))
    if cls is None:
        load_contracts()
        cls = _REGISTRY.get((env.event_type, env.schema_version))
    if cls is None:
        raise UnknownEventType(env.event_type, env.schema_version)
    try:
        event = cls.model_validate_json(data)
    except ValidationError as exc:
        raise EnvelopeError(f"{env.event_type} v{env.schema_version} body invalid: {exc.error_count()} errors") from exc
    return Received(envelope=env, event=event, message_id=message_id, publish_time=publish_time)


class UnknownEventType(EnvelopeError):
    """No contract registered for this (event_type, schema_version); ``shared.events.consumer`` decides the fate."""

    def __init__(self, event_type: str, version: int) -> None:
        super().__init__(f"no contract for {event_type} v{version}")
        self.event_type = event_type
        self.version = version


def _decode_push_message(message: Mapping[str, Any]) -> Received[Event]:
    try:
        raw = message.get("data") or ""
        data = base64.b64decode(raw, validate=True) if isinstance(raw, str) else bytes(raw)
    except (binascii.Error, TypeError, ValueError) as exc:
        raise EnvelopeError("message data is not base64") from exc
    attrs = message.get("attributes") or {}
    if not isinstance(attrs, Mapping):
        raise EnvelopeError("message attributes are not a map")
    mid = str(message.get("messageId") or message.get("message_id") or "")
    return parse_message(data, attrs, mid, message.get("publishTime") or message.get("publish_time"))


def parse_push(body: Any) -> Received[Event]:
    """Parse a raw Pub/Sub push request body (``{"message": {...}, "subscription": ...}``)."""
    if not isinstance(body, Mapping) or not isinstance(body.get("message"), Mapping):
        raise EnvelopeError("not a Pub/Sub push body")
    return _decode_push_message(body["message"])


def parse_cloud_event(cloud_event: Any) -> Received[Event]:
    """Parse the CloudEvent functions-framework builds from a Pub/Sub push (``data.message``)."""
    data = getattr(cloud_event, "data", None)
    if not isinstance(data, Mapping) or not isinstance(data.get("message"), Mapping):
        raise EnvelopeError("CloudEvent carries no Pub/Sub message")
    return _decode_push_message(data["message"])


def to_json(obj: Any) -> Any:
    """JSON-able form of a model or plain data (results stored by the idempotency utility)."""
    if isinstance(obj, BaseModel):
        return obj.model_dump(mode="json")
    return json.loads(json.dumps(obj, default=str))
