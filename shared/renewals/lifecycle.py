"""Subscription events for downstream systems, built from a domain change."""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from typing import Any

from shared.domain.subscriptions import SubState, Transition
from shared.events.billing import SubscriptionTransitioned
from shared.events.envelope import Event


def transition_event(state: SubState, t: Transition) -> SubscriptionTransitioned:
    period = state.current_period
    return SubscriptionTransitioned(
        subscription_id=state.id,
        customer_id=state.customer_id,
        version=t.version,
        from_status=t.from_status,
        to_status=t.to_status,
        reason=t.reason,
        current_period_start=period[0] if period else None,
        current_period_end=period[1] if period else None,
    )


def outbox_item(event: SubscriptionTransitioned, now: dt.datetime) -> tuple[Event, str, dt.datetime]:
    """Idempotency key ``{subscription_id}:{version}``: a republish is the same event downstream."""
    return event, f"{event.subscription_id}:{event.version}", now


def announcement(stored_event: Mapping[str, Any], now: dt.datetime) -> tuple[Event, str, dt.datetime]:
    """The outbox item of a transition as kept on the subscription (just recorded, or re-announced)."""
    return outbox_item(SubscriptionTransitioned.model_validate(stored_event), now)


def stored(event: SubscriptionTransitioned) -> dict[str, Any]:
    """Kept on the subscription as ``last_transition``, to republish after a crash before the publish."""
    return event.model_dump(mode="json")


HISTORY = "transitions"
_HISTORY_FIELDS = ("version", "from_status", "to_status", "reason", "current_period_start", "current_period_end")


def recorded(event: Mapping[str, Any], *, created: bool = False) -> dict[str, Any]:
    """The subscription fields a transition writes: ``last_transition`` (the outbox) and one entry of the
    status history (``transitions``), in the SAME write, so the history costs no extra write.

    The entry is a pure function of the event, so a redelivered transition unions the identical element
    (Firestore's ArrayUnion adds nothing); about 150 bytes per entry, two per period at most, so a monthly
    subscription stays far below the document limit for decades.
    """
    entry = {k: event.get(k) for k in _HISTORY_FIELDS}
    if created:
        return {"last_transition": dict(event), HISTORY: [entry]}
    from google.cloud import firestore as fs

    return {"last_transition": dict(event), HISTORY: fs.ArrayUnion([entry])}
