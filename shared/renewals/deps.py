"""The collaborators of the renewals function and the subscriptions API: Firestore, the publisher, the clock.

Why: webhooks and invoicing take their collaborators as constructor arguments; renewals takes them the same
way, as one :class:`Deps` handed from the entry point down to every handler (cosmicpython's bootstrap: the
entry binds the handlers to their dependencies). Tests build a ``Deps`` with a publisher that fails or
stalls, a Firestore that dies or a wall clock past a lease, instead of patching module functions.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from shared import clients
from shared.events.publisher import Publisher, default_publisher
from shared.renewals.config import RenewalSettings, renewal_settings


def utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


@dataclass(frozen=True, slots=True)
class Deps:
    """``db`` is a factory (the shared client is per project and created lazily); ``clock`` is the wall
    clock (leases, and "now" when a request carries no test-clock time)."""

    db: Callable[[], Any] = clients.firestore
    publisher: Publisher = field(default_factory=default_publisher)
    clock: Callable[[], dt.datetime] = utcnow
    settings: Callable[[], RenewalSettings] = renewal_settings


DEFAULT = Deps()
