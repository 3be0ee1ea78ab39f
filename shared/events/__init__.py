"""Versioned event contracts (pydantic) and the Pub/Sub envelope around them.

Every contract module is registered before the registry is consulted (``registered()``, a type not
found by ``parse_message``), so each consumer can tell a type another consumer handles (acknowledged)
from a type nobody knows (dead-lettered): see ``shared.events.consumer``. Not at import: a function that
only publishes (webhooks) then builds only the contracts it uses, which keeps its cold start short.
"""

from shared.events.envelope import (
    Envelope,
    EnvelopeError,
    Event,
    Received,
    UnknownEventType,
    build_message,
    load_contracts,
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
    "load_contracts",
    "parse_cloud_event",
    "parse_message",
    "parse_push",
    "publish",
    "register",
]
