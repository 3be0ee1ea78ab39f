"""Dead-lettered messages: list and replay (the service behind the operator command and the console).

Every push subscription ``<sub>`` has a dead-letter topic ``<sub>-dlq`` and a pull subscription of the
same name on it (Terraform and the local stack create both). A message lands there after the
subscription's maximum delivery attempts, with its data and attributes intact plus Pub/Sub's
``CloudPubSubDeadLetter*`` attributes (source subscription, delivery count, original publish time).

Replay republishes each message to the source subscription's topic with the ORIGINAL data and
attributes (the ``CloudPubSubDeadLetter*`` ones are dropped: they describe the failed round, and
Pub/Sub adds fresh ones if it fails again) through the publisher port every producer uses
(:meth:`shared.events.publisher.Publisher.publish_raw`, which waits for the ack), and only then
acknowledges the dead letter. A crash between the two can publish a message twice; consumers are
idempotent on the envelope's ``idempotency_key``, so that is safe, whereas acknowledging first could
lose a payment fact.

Why here and not in ``shared.ops``: the console function replays too, and operator CLIs never ship in a
function bundle; ``shared.ops.deadletters`` is the command over this module.
"""

from __future__ import annotations

import json
import warnings
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from shared.log import get_logger

if TYPE_CHECKING:
    from google.cloud.pubsub_v1 import SubscriberClient

    from shared.events.publisher import Publisher

log = get_logger(__name__)

DLQ_SUFFIX = "-dlq"
PUBSUB_DLQ_PREFIX = "CloudPubSubDeadLetter"
# Attributes worth showing first: the envelope (shared.events.envelope) and the dead-letter facts.
ENVELOPE_KEYS = ("event_type", "event_id", "schema_version", "occurred_at", "idempotency_key", "producer")


@dataclass(frozen=True, slots=True)
class DeadLetter:
    """One dead-lettered message as pulled from ``<subscription>-dlq``."""

    ack_id: str
    message_id: str
    publish_time: str
    data: bytes
    attributes: dict[str, str]
    ordering_key: str = ""

    @property
    def original_attributes(self) -> dict[str, str]:
        """The attributes the producer published (without Pub/Sub's dead-letter bookkeeping)."""
        return {k: v for k, v in self.attributes.items() if not k.startswith(PUBSUB_DLQ_PREFIX)}

    @property
    def delivery_count(self) -> int | None:
        raw = self.attributes.get(f"{PUBSUB_DLQ_PREFIX}SourceDeliveryCount")
        return int(raw) if raw and raw.isdigit() else None

    @property
    def event_id(self) -> str | None:
        return self.attributes.get("event_id")

    def summary(self) -> dict[str, Any]:
        """A JSON-able description for operators (data shown as text when it is UTF-8)."""
        try:
            body: Any = json.loads(self.data)
        except ValueError:
            body = self.data.decode("utf-8", "replace")
        return {
            "message_id": self.message_id,
            "dead_lettered_at": self.publish_time,
            "delivery_count": self.delivery_count,
            "source_subscription": self.attributes.get(f"{PUBSUB_DLQ_PREFIX}SourceSubscription"),
            "first_published_at": self.attributes.get(f"{PUBSUB_DLQ_PREFIX}SourceTopicPublishTime"),
            "envelope": {k: self.attributes[k] for k in ENVELOPE_KEYS if k in self.attributes},
            "attributes": self.original_attributes,
            "ordering_key": self.ordering_key or None,
            "data": body,
        }


@dataclass(slots=True)
class ReplayReport:
    topic: str
    selected: list[str] = field(default_factory=list)  # dead-letter message ids chosen for replay
    replayed: list[str] = field(default_factory=list)  # dead-letter message ids republished and acked
    republished_ids: list[str] = field(default_factory=list)  # the new message ids on the topic
    skipped: list[str] = field(default_factory=list)  # not selected; released back to the dead-letter queue
    failed: dict[str, str] = field(default_factory=dict)  # message id -> error; stays dead-lettered

    def as_dict(self) -> dict[str, Any]:
        return {
            "topic": self.topic,
            "selected": self.selected,
            "replayed": self.replayed,
            "republished_ids": self.republished_ids,
            "skipped": self.skipped,
            "failed": self.failed,
        }


class DeadLetters:
    """Pull, show and replay the dead letters of the push subscriptions of one project."""

    def __init__(
        self,
        project: str,
        *,
        subscriber: SubscriberClient | None = None,
        publisher: Publisher | None = None,
        pull_timeout_s: float = 10.0,
    ) -> None:
        from google.cloud import pubsub_v1

        from shared.events.publisher import PubSubPublisher

        self.project = project
        self.subscriber = subscriber or pubsub_v1.SubscriberClient()
        # The port over a client of its own: message ordering must be on to republish a message with its
        # ordering key (the functions' shared client has it off), and the full topic path keeps the
        # replay in ``project`` whatever GOOGLE_CLOUD_PROJECT says.
        self.publisher: Publisher = publisher or PubSubPublisher(
            pubsub_v1.PublisherClient(publisher_options=pubsub_v1.types.PublisherOptions(enable_message_ordering=True))
        )
        self.pull_timeout_s = pull_timeout_s

    def _sub_path(self, name: str) -> str:
        return str(self.subscriber.subscription_path(self.project, name))

    def source_topic(self, subscription: str) -> str:
        """The topic the source subscription reads: where a replayed message belongs."""
        sub = self.subscriber.get_subscription(request={"subscription": self._sub_path(subscription)})
        return str(sub.topic)

    def _pull(self, subscription: str, limit: int) -> list[DeadLetter]:
        """Lease up to ``limit`` dead letters (each stays invisible to others until acked or released)."""
        path = self._sub_path(subscription + DLQ_SUFFIX)
        out: list[DeadLetter] = []
        seen: set[str] = set()
        empty_rounds = 0
        # return_immediately may answer empty while messages exist (real service); try twice.
        while len(out) < limit and empty_rounds < 2:
            with warnings.catch_warnings():
                # Deprecated for streaming workers, but an operator command wants "what is there now",
                # not to block until a message arrives.
                warnings.filterwarnings("ignore", "The return_immediately flag", DeprecationWarning)
                resp = self.subscriber.pull(
                    request={
                        "subscription": path,
                        "max_messages": min(100, limit - len(out)),
                        "return_immediately": True,
                    },
                    timeout=self.pull_timeout_s,
                )
            fresh = [m for m in resp.received_messages if m.message.message_id not in seen]
            if not fresh:
                empty_rounds += 1
                continue
            empty_rounds = 0
            for m in fresh:
                seen.add(m.message.message_id)
                out.append(
                    DeadLetter(
                        ack_id=m.ack_id,
                        message_id=m.message.message_id,
                        publish_time=m.message.publish_time.isoformat() if m.message.publish_time else "",
                        data=bytes(m.message.data),
                        attributes=dict(m.message.attributes),
                        ordering_key=m.message.ordering_key,
                    )
                )
        return out

    def _release(self, subscription: str, letters: Iterable[DeadLetter]) -> None:
        ack_ids = [d.ack_id for d in letters]
        if ack_ids:
            self.subscriber.modify_ack_deadline(
                request={
                    "subscription": self._sub_path(subscription + DLQ_SUFFIX),
                    "ack_ids": ack_ids,
                    "ack_deadline_seconds": 0,
                }
            )

    def _ack(self, subscription: str, letters: Iterable[DeadLetter]) -> None:
        ack_ids = [d.ack_id for d in letters]
        if ack_ids:
            self.subscriber.acknowledge(
                request={"subscription": self._sub_path(subscription + DLQ_SUFFIX), "ack_ids": ack_ids}
            )

    def list(self, subscription: str, limit: int = 100) -> list[DeadLetter]:
        """Show dead letters without consuming them (they are released right after reading)."""
        letters = self._pull(subscription, limit)
        self._release(subscription, letters)
        return letters

    def replay(
        self,
        subscription: str,
        *,
        limit: int = 100,
        select: Callable[[DeadLetter], bool] | None = None,
        dry_run: bool = False,
        publish_timeout_s: float = 30.0,
    ) -> ReplayReport:
        """Republish selected dead letters to the source topic, then acknowledge them."""
        from shared.events.publisher import RawMessage

        topic = self.source_topic(subscription)
        report = ReplayReport(topic=topic)
        letters = self._pull(subscription, limit)
        chosen = [d for d in letters if select is None or select(d)]
        chosen_ids = {d.message_id for d in chosen}
        rest = [d for d in letters if d.message_id not in chosen_ids]
        report.selected = [d.message_id for d in chosen]
        report.skipped = [d.message_id for d in rest]
        if dry_run:
            self._release(subscription, letters)
            return report
        self._release(subscription, rest)
        done: list[DeadLetter] = []
        for d in chosen:
            # One message per call: a failure then belongs to exactly one dead letter, which stays put.
            message = RawMessage(topic, d.data, d.original_attributes, d.ordering_key or None)
            try:
                (new_id,) = self.publisher.publish_raw([message], timeout_s=publish_timeout_s)
            except Exception as exc:
                report.failed[d.message_id] = f"{type(exc).__name__}: {exc}"
                log.error(
                    "dead letter replay failed; left in the dead-letter queue",
                    extra={"message_id": d.message_id, "event_id": d.event_id, "error": str(exc)},
                )
                self._release(subscription, [d])
                continue
            done.append(d)
            report.replayed.append(d.message_id)
            report.republished_ids.append(str(new_id))
            log.info(
                "dead letter replayed",
                extra={"message_id": d.message_id, "new_message_id": str(new_id), "event_id": d.event_id},
            )
        self._ack(subscription, done)
        return report
