"""What every invoices use case shares: the injected collaborators and the ONE publish-once helper.

Why one helper: every event the invoices function publishes (finalized, paid, voided, uncollectible,
credit note issued) follows the same rule, so it is written once. The event is published with its
contract's idempotency key (same fact -> same ``event_id``), THEN its name is recorded in the document's
``published`` list, in the same write as whatever else the caller had to store (the archived PDF of a
finalization), so announcing costs no write of its own there. A crash between publish and record only
publishes the same event id again on the redelivery (consumers deduplicate); recording first could lose
the event.
"""

from __future__ import annotations

import datetime as dt
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


@dataclass
class Deps:
    """Collaborators injected into the use cases (one set per function instance)."""

    db: Any = None
    allocator: NumberAllocator | None = None
    clock: Callable[[], dt.datetime] = field(default=_utcnow)
    publish_events: bool = True
    archive: ArchiveWriter = field(default_factory=ArchiveWriter)
    publisher: Publisher | None = None  # None: the process-wide port (shared.events.publisher.default_publisher)

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
            port = self.publisher or default_publisher()
            port.publish(event(), idempotency_key=key, occurred_at=at, routing=routing)
        update = dict(fields or {})
        if not recorded:
            update["published"] = fs.ArrayUnion([what])
            published.append(what)
        if update:
            ref.update(update)
        return {**doc, **(fields or {}), "published": published}
