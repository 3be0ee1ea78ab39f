"""Dispatch a Pub/Sub push (as a CloudEvent) to the handler for its event type: THE delivery rule.

Acknowledgement is the HTTP status: returning acks, raising nacks so Pub/Sub redelivers with backoff
and, after the subscription's ``max_delivery_attempts``, moves the message to ``<subscription>-dlq``.
An acknowledged message is gone, so a refusal is acknowledged only when losing the message loses
nothing. The rule, in the order it is applied:

1. No Pub/Sub message, attributes that are not a map, no ``event_type`` attribute: the message cannot
   be classified -> :class:`Undeliverable` (dead-lettered). Nothing is guessed from the body.
2. A trigger type of this consumer (``triggers``: envelope-less messages such as the billing tick,
   classified by ``event_type`` alone) -> its ``schema_version`` attribute (absent means 1, Cloud
   Scheduler sends fixed attributes) must be one the trigger supports, and the trigger runs; a
   trigger it refuses raises :class:`Undeliverable` too. A tick could be acknowledged without loss in
   principle (the next tick redoes its work), but a tick refused once is refused every time, so
   acknowledging would turn a misconfigured scheduler into billing that silently stops.
3. A type this consumer handles -> the envelope must parse and a contract must be registered for its
   ``schema_version``; an unsupported version, a missing attribute or a body that breaks the contract
   -> :class:`Undeliverable`. A payment fact refused this way is kept for an operator, never dropped.
4. A type registered in the contracts (any version) that this consumer does not handle -> acknowledged
   with an INFO line: topics carry several types, and every subscription gets its own copy.
5. A type unknown to the contracts -> :class:`Undeliverable`: most likely a producer deployed ahead of
   this consumer; it is replayed (``shared.ops.deadletters``) once the consumer knows the type.

Versioning: every contract declares ``SCHEMA_VERSION``; a consumer supports exactly the versions it
has a registered contract for. Within a version only additive, optional fields are allowed, and
contracts refuse unknown fields, so consumers are deployed before producers set a new field (a
producer that is early gets its messages dead-lettered, not dropped). A breaking change is a new
version number, registered and handled by consumers before any producer publishes it.

:class:`Undeliverable` is logged here once at ERROR with its reason. It is an HTTP 500 exception, so
functions-framework answers it without logging a second traceback. Handler errors (transient: a
Firestore timeout, a concurrent delivery holding the idempotency lease) raise as they are.

Why not publish to the dead-letter topic ourselves and ack: the CloudEvent does not name the
subscription, the functions' service accounts would need publish rights on every dead-letter topic,
and the shared publish helper sends contracts, not raw messages. Redelivery costs a few retries only.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from werkzeug.exceptions import InternalServerError

from shared.events.envelope import EnvelopeError, Received, UnknownEventType, parse_cloud_event, registered
from shared.idempotency import IdempotencyAlreadyInProgressError
from shared.log import bind, get_logger, parse_trace

log = get_logger(__name__)

Handler = Callable[[Received[Any]], object]

IMPLICIT_TRIGGER_VERSION = 1  # a trigger without a schema_version attribute (Cloud Scheduler's fixed attributes)


class Undeliverable(InternalServerError):
    """A message this consumer refuses: nacked so Pub/Sub redelivers it, then dead-letters it."""

    def __init__(self, reason: str) -> None:
        super().__init__(description=reason)
        self.reason = reason

    def __str__(self) -> str:
        return self.reason


@dataclass(frozen=True, slots=True)
class Trigger:
    """An envelope-less message type: the handler gets the raw Pub/Sub message and parses it itself."""

    handle: Callable[[Mapping[str, Any]], object]
    versions: frozenset[int] = frozenset({1})


def known_event_types() -> frozenset[str]:
    """Every event type with a registered contract, whatever its version."""
    return frozenset(etype for etype, _ in registered())


def supported_versions(event_type: str) -> list[int]:
    return sorted(v for t, v in registered() if t == event_type)


def dispatch(
    cloud_event: Any, handlers: Mapping[str, Handler], triggers: Mapping[str, Trigger] | None = None
) -> object:
    """Classify, bind log context and run the matching handler; see the module doc for the rule."""
    data = getattr(cloud_event, "data", None)
    message = data.get("message") if isinstance(data, Mapping) else None
    raw_attrs = message.get("attributes") if isinstance(message, Mapping) else None
    attrs: Mapping[str, Any] = raw_attrs if isinstance(raw_attrs, Mapping) else {}
    tp = attrs.get("traceparent")
    trace = parse_trace({"traceparent": tp}) if isinstance(tp, str) else None
    labels = {k: v for k in ("event_id", "event_type") if isinstance(v := attrs.get(k), str)}
    with bind(trace, **labels):
        try:
            return _route(cloud_event, message, handlers, triggers or {})
        except Undeliverable as exc:
            log.error(
                "undeliverable: nacked, Pub/Sub redelivers then dead-letters it",
                extra={
                    "reason": exc.reason,
                    "schema_version": attrs.get("schema_version"),
                    "message_id": _message_id(message),
                },
            )
            raise


def _message_id(message: object) -> str | None:
    if not isinstance(message, Mapping):
        return None
    mid = message.get("messageId") or message.get("message_id")
    return str(mid) if mid else None


def _route(
    cloud_event: Any, message: object, handlers: Mapping[str, Handler], triggers: Mapping[str, Trigger]
) -> object:
    if not isinstance(message, Mapping):
        raise Undeliverable("no Pub/Sub message in the CloudEvent")
    attrs = message.get("attributes")
    if attrs is not None and not isinstance(attrs, Mapping):
        raise Undeliverable("message attributes are not a map")
    etype = (attrs or {}).get("event_type")
    if not etype or not isinstance(etype, str):
        raise Undeliverable("no event_type attribute: the message cannot be classified")

    trigger = triggers.get(etype)
    if trigger is not None:
        raw = (attrs or {}).get("schema_version")
        try:
            version = IMPLICIT_TRIGGER_VERSION if raw is None else int(raw)
        except (TypeError, ValueError):
            raise Undeliverable(f"{etype}: schema_version {raw!r} is not an integer") from None
        if version not in trigger.versions:
            raise Undeliverable(f"{etype} v{version} is not supported here (supported: {sorted(trigger.versions)})")
        return _run(lambda: trigger.handle(message))

    handler = handlers.get(etype)
    if handler is None:
        if etype in known_event_types():
            log.info("event type not handled here; acknowledged")
            return None
        raise Undeliverable(f"event type {etype!r} is unknown to the contracts (a producer ahead of this consumer?)")
    try:
        msg = parse_cloud_event(cloud_event)
    except UnknownEventType as exc:
        raise Undeliverable(
            f"{etype} v{exc.version} is not supported here (supported: {supported_versions(etype)})"
        ) from exc
    except EnvelopeError as exc:
        raise Undeliverable(str(exc)) from exc
    result = _run(lambda: handler(msg))
    log.info("handled", extra={"message_id": msg.message_id})
    return result


def _run(call: Callable[[], object]) -> object:
    try:
        return call()
    except Undeliverable:
        raise
    except IdempotencyAlreadyInProgressError:
        log.warning("concurrent delivery in progress; nacked for redelivery")
        raise
    except Exception:
        log.exception("handler failed; nacked for redelivery")
        raise
