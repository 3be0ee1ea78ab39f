"""Dispatch a Pub/Sub push (as a CloudEvent) to the handler registered for its event type.

Acknowledgement is the HTTP status: returning acks, raising nacks so Pub/Sub redelivers with backoff
and, after the subscription's maximum attempts, moves the message to its dead-letter topic. So:

* an event type this consumer does not handle is acknowledged and logged (topics carry several types);
* a malformed message raises: retrying cannot fix it, but dead-lettering keeps it for an operator
  instead of silently dropping money-relevant data;
* a handler error raises, and so does an in-progress idempotency lease held by a concurrent delivery.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from shared.events.envelope import EnvelopeError, Received, UnknownEventType, parse_cloud_event
from shared.idempotency import IdempotencyAlreadyInProgressError
from shared.log import bind, get_logger, parse_trace

log = get_logger(__name__)

Handler = Callable[[Received[Any]], object]


def dispatch(cloud_event: Any, handlers: Mapping[str, Handler]) -> object:
    """Parse, bind log context, and run the matching handler; see the module doc for ack rules."""
    try:
        msg = parse_cloud_event(cloud_event)
    except UnknownEventType as exc:
        log.info("event type not handled here; acknowledged", extra={"event_type": exc.event_type})
        return None
    except EnvelopeError as exc:
        log.error("malformed message; will be retried then dead-lettered", extra={"error": str(exc)})
        raise
    env = msg.envelope
    trace = parse_trace({"traceparent": env.traceparent}) if env.traceparent else None
    with bind(trace, event_id=env.event_id, event_type=env.event_type):
        handler = handlers.get(env.event_type)
        if handler is None:
            log.info("event type not handled here; acknowledged")
            return None
        try:
            result = handler(msg)
        except IdempotencyAlreadyInProgressError:
            log.warning("concurrent delivery in progress; nacked for redelivery")
            raise
        except Exception:
            log.exception("handler failed; nacked for redelivery")
            raise
        log.info("handled", extra={"message_id": msg.message_id})
        return result
