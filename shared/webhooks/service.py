"""The webhook pipeline: route -> checks -> verify raw bytes -> dedupe -> archive -> normalise -> publish.

Order matters:

1. Cheap refusals first (404 route/account, 405, 413, 415), before the body is even read in full.
2. The adapter verifies the raw bytes and splits the delivery into notifications; nothing is
   stored for a delivery that fails (401/498/400). Each notification is normalised *before* anything
   is stored, so a payload we cannot understand is refused (400, the PSP retries) instead of being
   half-processed.
3. Per notification: atomic dedupe record (which is also the scrubbed archive) -> publish with
   ``idempotency_key = event.fact_key()`` and wait for the ack -> mark published. Unmapped types are
   archived and marked ignored. With ``finishes`` set (the deployed function) the mark is written after
   the response, batched: it guards nothing, see :mod:`shared.webhooks.store`. A Firestore or Pub/Sub
   failure answers 503, so the PSP retries and the retry finishes the job.
4. Nothing consumers cannot store is published: after normalise, every canonical event goes through
   :func:`vet` (every Money within its currency's bound and not negative, times within bounds, strings
   and the fact key short enough for Pub/Sub attributes). One that fails is archived as ``rejected``
   with the reason and acknowledged (200): the PSP would otherwise retry a fact that can never be
   accepted. This is central, so every adapter (PayPal included) gets the same treatment.

Only an outage of Firestore or Pub/Sub produces a 5xx; every kind of input gets a 2xx or a 4xx.
"""

from __future__ import annotations

import datetime as dt
import json
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from shared.edge import MAX_STR_BYTES, firestore_id_problem, json_too_deep, storable
from shared.events import publish
from shared.events.payments import OurRefs, PaymentEvent
from shared.log import bind, get_logger, label
from shared.psp.base import MAX_BODY_BYTES, Adapter, Delivery, Notification, OutOfBounds, PspConfig, WebhookError
from shared.psp.scrub import scrub, scrub_bytes
from shared.webhooks import config as wh_config
from shared.webhooks import store

log = get_logger(__name__)

ACCOUNT_SEGMENT = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$")
PUBLISH_TIMEOUT_S = 8.0  # Adyen gives up after 10 s
_COMPACT = json.JSONEncoder(separators=(",", ":"))  # json.dumps(..., separators=...) builds this on every call


@dataclass(frozen=True, slots=True)
class Answer:
    status: int
    body: Any  # dict -> JSON, str -> text
    mimetype: str = "application/json"
    log: dict[str, Any] | None = None  # when set, the answer is a rejection to log with these fields


class Outage(Exception):
    """Firestore or Pub/Sub failed: answer 503 so the PSP retries."""


@dataclass(frozen=True, slots=True)
class Rejected:
    """An authentic notification whose canonical event consumers could not store: archived, not published."""

    reason: str
    code: str = "out_of_bounds"


# Input-caused failures of an adapter's parsing (pydantic ValidationError is a ValueError).
_PARSE_ERRORS = (ValueError, TypeError, LookupError, AttributeError, ArithmeticError, RecursionError)


_REF_FIELDS = tuple(OurRefs.model_fields)


def vet(event: PaymentEvent) -> PaymentEvent | Rejected:
    """The event if consumers can store it (references not usable as ids dropped), else why not."""
    refs = event.refs
    foreign = [k for k in _REF_FIELDS if (v := getattr(refs, k)) is not None and firestore_id_problem(v)]
    if foreign:  # not one of our ids (a merchant reference from another system): nothing of ours to match
        log.info("foreign references dropped", extra={"refs": foreign})
        kept = {k: None if k in foreign else getattr(refs, k) for k in _REF_FIELDS}
        event = event.model_copy(update={"refs": OurRefs(**kept)})
    problem = storable(event)
    if problem:
        return Rejected(problem)
    if len(event.fact_key().encode()) > MAX_STR_BYTES:
        return Rejected(f"fact key over {MAX_STR_BYTES} bytes")
    return event


def reject(status: int, code: str, detail: str) -> Answer:
    return Answer(status, {"error": code, "detail": detail}, log={"error_code": code, "detail": detail})


def route(path: str, adapters: Mapping[str, Adapter]) -> tuple[Adapter, str] | Answer:
    """``/<psp>`` or ``/<psp>/<account>`` to an adapter and a lower-case account name."""
    parts = [p for p in path.strip("/").split("/") if p] if path else []
    if not parts or len(parts) > 2 or parts[0] not in adapters:
        return reject(404, "unknown_psp", "POST /<psp> or /<psp>/<account>")
    account = wh_config.DEFAULT_ACCOUNT
    if len(parts) == 2:
        if not ACCOUNT_SEGMENT.match(parts[1]):
            return reject(404, "unknown_account", "account must be letters, digits, - or _")
        account = parts[1].lower()
    return adapters[parts[0]], account


@dataclass
class WebhookService:
    """Stateless apart from its collaborators, which tests replace (clock, publisher, Firestore).

    ``finishes``: where final states go; None writes each in the request (one more RPC before the answer).
    """

    adapters: Mapping[str, Adapter]
    db: Callable[[], Any]
    publisher: Callable[[PaymentEvent], str] | None = None
    clock: Callable[[], dt.datetime] = lambda: dt.datetime.now(dt.UTC)
    finishes: store.DeferredFinishes | None = None

    def handle(
        self,
        *,
        method: str,
        path: str,
        headers: Mapping[str, str],
        mimetype: str,
        content_length: int | None,
        read_body: Callable[[int], bytes],
    ) -> Answer:
        received_at = self.clock()
        routed = route(path, self.adapters)
        if isinstance(routed, Answer):
            return routed
        adapter, account = routed
        if method != "POST":
            return reject(405, "method_not_allowed", "use POST")
        try:
            cfg = wh_config.load(adapter, account)
        except wh_config.ModeError as exc:
            return reject(404, "account_misconfigured", str(exc))
        if cfg is None:
            return reject(404, "unknown_account", f"{adapter.name} account {account!r} is not configured")
        label(account=cfg.account)  # a configured account only: the metric's label values stay bounded
        if content_length is not None and content_length > MAX_BODY_BYTES:
            return reject(413, "payload_too_large", f"body over {MAX_BODY_BYTES} bytes")
        if (mimetype or "").lower() not in adapter.content_types:
            return reject(415, "unsupported_media_type", f"send {' or '.join(adapter.content_types)}")
        body = read_body(MAX_BODY_BYTES + 1)
        if len(body) > MAX_BODY_BYTES:
            return reject(413, "payload_too_large", f"body over {MAX_BODY_BYTES} bytes")
        # Before any parser sees it (Adyen parses before the item HMACs, so Basic auth alone gets here).
        if "json" in mimetype.lower() and json_too_deep(body):
            return reject(400, "json_too_deep", "JSON nested too deeply")
        delivery = Delivery(body=body, headers=headers, content_type=mimetype, received_at=received_at)
        try:
            notes = adapter.verify(delivery, cfg)
            for n in notes:
                if len(n.event_id.encode()) > MAX_STR_BYTES or len(n.event_type.encode()) > MAX_STR_BYTES:
                    return reject(400, "unprocessable_payload", f"notification id or type over {MAX_STR_BYTES} bytes")
            events = [self._normalise(adapter, n, cfg) for n in notes]
        except WebhookError as exc:
            status = adapter.invalid_signature_status if exc.status == 401 else exc.status
            return reject(status, exc.code, exc.detail)
        except _PARSE_ERRORS as exc:
            # Authentic but not the shape we understand.
            return reject(400, "unprocessable_payload", f"{type(exc).__name__}: {str(exc)[:300]}")
        outcomes = [self._process(adapter, cfg, delivery, n, e) for n, e in zip(notes, events, strict=True)]
        if "busy" in outcomes:
            return reject(409, "in_progress", "the same notification is being processed; retry later")
        summary = {k: outcomes.count(k) for k in ("published", "duplicate", "ignored")}
        if "rejected" in outcomes:
            summary["rejected"] = outcomes.count("rejected")
        if adapter.ack_mimetype == "text/plain":
            return Answer(200, adapter.ack_body, "text/plain")
        return Answer(200, {"received": len(notes), **summary})

    @staticmethod
    def _normalise(adapter: Adapter, note: Notification, cfg: PspConfig) -> PaymentEvent | Rejected | None:
        try:
            event = adapter.normalise(note, cfg)
        except OutOfBounds as exc:
            return Rejected(exc.detail)
        return None if event is None else vet(event)

    def _process(
        self,
        adapter: Adapter,
        cfg: PspConfig,
        delivery: Delivery,
        note: Notification,
        event: PaymentEvent | Rejected | None,
    ) -> str:
        headers = {h: v for h in adapter.headers_of_interest if (v := delivery.header(h)) is not None}
        headers["Content-Type"] = delivery.content_type
        raw = scrub(note.raw) if note.raw else scrub_bytes(delivery.body)
        return self._store_and_publish(
            adapter, cfg, note, event, received_at=delivery.received_at, headers=headers, raw=raw
        )

    def ingest(self, adapter: Adapter, cfg: PspConfig, note: Notification, *, backfilled: bool = True) -> str:
        """Feed one already verified notification (fetched from the PSP's API) through the webhook's own
        pipeline: the same dedupe record, canonical event and publish, so a webhook arriving before or
        after it is a duplicate. The record is marked ``backfilled``.

        Unlike a webhook, nobody retries a notification we cannot parse, so one is archived as
        ``rejected`` (with the reason) instead of refused. Returns the outcome (``published``,
        ``duplicate``, ``busy``, ``ignored``, ``rejected``); raises :class:`Outage`.
        """
        try:
            event = self._normalise(adapter, note, cfg)
        except WebhookError as exc:
            event = Rejected(exc.detail, code=exc.code)
        except _PARSE_ERRORS as exc:
            event = Rejected(f"{type(exc).__name__}: {str(exc)[:300]}", code="unprocessable_payload")
        raw = scrub(note.raw or json.dumps(note.payload, separators=(",", ":"), default=str))
        headers = {"Content-Type": "application/json", "X-Backfill": "1"}
        return self._store_and_publish(
            adapter, cfg, note, event, received_at=self.clock(), headers=headers, raw=raw, backfilled=backfilled
        )

    def _store_and_publish(
        self,
        adapter: Adapter,
        cfg: PspConfig,
        note: Notification,
        event: PaymentEvent | Rejected | None,
        *,
        received_at: dt.datetime,
        headers: Mapping[str, str],
        raw: str,
        backfilled: bool = False,
    ) -> str:
        with bind(event_id=note.event_id):
            # Few, flat fields: every Firestore field costs CPU to encode on the webhook's hot path. The
            # canonical event is re-derivable from the archived payload; ``fact_key`` finds it downstream.
            record: dict[str, Any] = {
                "psp": adapter.name,
                "account": cfg.account,
                "psp_event_id": note.event_id,
                "psp_event_type": note.event_type,
                "received_at": received_at,
                "headers": _COMPACT.encode(headers),
                **store.archived_raw(raw),
            }
            marks: dict[str, Any] = {"backfilled": True} if backfilled else {}
            record.update(marks)
            if isinstance(event, PaymentEvent):
                record["fact_key"] = event.fact_key()
            elif isinstance(event, Rejected):
                record["reject_reason"] = event.reason[:500]
            doc_id = store.record_id(adapter.name, cfg.account, note.event_id)
            try:
                claimed = store.claim(self.db(), doc_id, record, self.clock())
            except Exception as exc:
                raise Outage(f"firestore: {type(exc).__name__}: {exc}") from exc
            if claimed.outcome is store.Claim.DONE:
                log.info("duplicate notification acknowledged", extra={"psp_event_type": note.event_type})
                return "duplicate"
            if claimed.outcome is store.Claim.BUSY:
                log.info("notification in progress elsewhere", extra={"psp_event_type": note.event_type})
                return "busy"
            try:
                if event is None:
                    self._finish(claimed, store.IGNORED, **marks)
                    log.info("notification archived, type not mapped", extra={"psp_event_type": note.event_type})
                    return "ignored"
                if isinstance(event, Rejected):
                    self._finish(claimed, store.REJECTED, **marks)
                    extra = {"psp_event_type": note.event_type, "error_code": event.code, "detail": event.reason}
                    log.warning(f"notification archived, not published: {event.code.replace('_', ' ')}", extra=extra)
                    return "rejected"
                message_id = self._publish(event)
                self._finish(claimed, store.PUBLISHED, message_id=message_id, **marks)
            except Exception as exc:
                store.release(claimed)
                raise Outage(f"{type(exc).__name__}: {exc}") from exc
            log.info(
                "canonical event published",
                extra={"event_type": event.EVENT_TYPE, "fact_key": event.fact_key(), "message_id": message_id},
            )
            return "published"

    def _finish(self, claimed: store.Claimed, state: str, **fields: Any) -> None:
        if self.finishes is None:
            store.finish(claimed, state, **fields)
        else:
            self.finishes.add(claimed, state, **fields)

    def _publish(self, event: PaymentEvent) -> str:
        if self.publisher is not None:
            return self.publisher(event)
        return publish(
            event, idempotency_key=event.fact_key(), occurred_at=event.psp_created_at, timeout_s=PUBLISH_TIMEOUT_S
        )
