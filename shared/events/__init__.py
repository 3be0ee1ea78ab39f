"""Versioned event contracts (pydantic) and the Pub/Sub envelope around them."""

from shared.events.envelope import (
    Envelope,
    EnvelopeError,
    Event,
    Received,
    UnknownEventType,
    build_message,
    parse_cloud_event,
    parse_message,
    parse_push,
    publish,
    register,
)

__all__ = [
    "Envelope",
    "EnvelopeError",
    "Event",
    "Received",
    "UnknownEventType",
    "build_message",
    "parse_cloud_event",
    "parse_message",
    "parse_push",
    "publish",
    "register",
]
