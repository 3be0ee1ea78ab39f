"""Versioned event contracts (pydantic) and the Pub/Sub envelope around them.

Importing the package registers every contract module, so each consumer can tell a type another
consumer handles (acknowledged) from a type nobody knows (dead-lettered): see ``shared.events.consumer``.
"""

# Registration side effect: every contract module here, so every function knows the same shared types.
from shared.events import billing, disputes, payments, probe  # noqa: F401
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
