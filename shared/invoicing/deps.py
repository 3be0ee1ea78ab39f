"""What every invoices use case shares: the injected collaborators and the ONE publish-once helper.

Why one helper: every event the invoices function publishes (finalized, paid, voided, uncollectible,
credit note issued) follows the same rule, so it is written once. The event is published with its
contract's idempotency key (same fact -> same ``event_id``), THEN its name is recorded in the document's
``published`` list, in the same write as whatever else the caller had to store (the archived PDF of a
finalization), so announcing costs no write of its own there. A crash between publish and record only
publishes the same event id again on the redelivery (consumers deduplicate); recording first could lose
the event.

One exception, for the cost of the commonest fact: the delivery that applies a payment records ``paid`` in
the same write as the payment itself, BEFORE publishing ``invoice.paid`` (no write of its own after it).
That write names the fact that owns the announcement (``paid_fact``): every delivery of that fact publishes
``invoice.paid`` again with the same event id (:meth:`Deps.publish_again`), so a crash between the write and
the publish is healed by the redelivery, as before. A process remembers the keys it has published
(:class:`Announced`), so the duplicates one instance sees publish nothing; only a delivery to another
instance (or after a restart) sends the same event id again, which the delivery guarantee allows.
"""

from __future__ import annotations

import datetime as dt
import threading
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from shared import clients
from shared.events import Event
from shared.events.publisher import Publisher, default_publisher
from shared.invoicing.allocator import NumberAllocator
from shared.invoicing.storage import ArchiveWriter


def _utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


class Announced:
    """Idempotency keys this process has published (bounded, newest kept): positive knowledge only.

    Knowing "published" saves a duplicate publish; not knowing it only publishes the same event id again.
    A key is added once ``publish`` has returned (Pub/Sub accepted the message), never before.
    """

    def __init__(self, size: int = 20_000) -> None:
        self.size = size
        self._keys: OrderedDict[str, None] = OrderedDict()
        self._lock = threading.Lock()

    def __contains__(self, key: object) -> bool:
        with self._lock:
            return key in self._keys

    def add(self, key: str) -> None:
        with self._lock:
            self._keys[key] = None
            self._keys.move_to_end(key)
            while len(self._keys) > self.size:
                self._keys.popitem(last=False)


@dataclass
class Deps:
    """Collaborators injected into the use cases (one set per function instance)."""

    db: Any = None
    allocator: NumberAllocator | None = None
    clock: Callable[[], dt.datetime] = field(default=_utcnow)
    publish_events: bool = True
    archive: ArchiveWriter = field(default_factory=ArchiveWriter)
    publisher: Publisher | None = None  # None: the process-wide port (shared.events.publisher.default_publisher)
    announced: Announced = field(default_factory=Announced)  # keys published by this instance

    def __post_init__(self) -> None:
        if self.db is None:
            self.db = clients.firestore()
        if self.allocator is None:
            self.allocator = NumberAllocator(self.db)

    @property
    def alloc(self) -> NumberAllocator:
        assert self.allocator is not None
        return self.allocator

    def publish_once(
        self,
        ref: Any,
        doc: dict[str, Any],
        what: str,
        *,
        event: Callable[[], Event],
        key: str,
        at: dt.datetime,
        fields: dict[str, Any] | None = None,
        again: bool = False,
        routing: dict[str, str] | None = None,
    ) -> dict[str, Any]:
        """Publish ``event()`` unless ``what`` is in ``doc["published"]`` (or ``again``: re-announce), then
        record ``what`` together with ``fields`` in ONE write (none when there is nothing new to record).

        Returns the document as it now stands. ``doc`` is what the caller last read or wrote: it must be
        current enough to say whether ``what`` was recorded (a stale "no" only publishes the same id again).
        ``routing``: attributes that subscription filters select on (``infra/topology.yaml``).
        """
        from google.cloud import firestore as fs

        published = list(doc.get("published", []))
        recorded = what in published
        if (not recorded or again) and self.publish_events:
            self._publish(event(), key, at, routing)
        update = dict(fields or {})
        if not recorded:
            update["published"] = fs.ArrayUnion([what])
            published.append(what)
        if update:
            ref.update(update)
        return {**doc, **(fields or {}), "published": published}

    def publish_again(
        self, *, event: Callable[[], Event], key: str, at: dt.datetime, routing: dict[str, str] | None = None
    ) -> bool:
        """Publish ``event()`` (its key gives the same event id every time) unless this process already did;
        writes nothing. For an announcement recorded BEFORE publishing (see the module docstring): every
        delivery of the fact that owns it calls this. Returns whether it published."""
        if key in self.announced or not self.publish_events:
            return False
        self._publish(event(), key, at, routing)
        return True

    def _publish(self, ev: Event, key: str, at: dt.datetime, routing: dict[str, str] | None) -> None:
        port = self.publisher or default_publisher()
        port.publish(ev, idempotency_key=key, occurred_at=at, routing=routing)
        self.announced.add(key)
