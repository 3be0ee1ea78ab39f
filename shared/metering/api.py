"""The private HTTP API of the ``usage`` function (IAM-only) and its aggregator's push handler.

POST /events                    {"events": [...]} (1..1,000): 200 with a result per event; 503 if not published
GET  /customers/{id}/usage      running totals and the estimated amount of the open period
PUT  /customers/{id}/metered_subscription   the calendar and metered items usage is billed on
POST /meters, GET /meters/{id}  the catalog's meters (immutable definitions)

Validation is :mod:`shared.edge` (body limit, safe JSON, the wrapper: outage -> 503, bug -> generic 500).
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, ValidationError

from shared.domain.calendar import Unit
from shared.domain.meters import Meter
from shared.domain.pricing import PricingError
from shared.edge import (
    BoundedDatetime,
    EdgeError,
    FirestoreId,
    datetime_problem,
    firestore_id_problem,
    http_entry,
    json_body,
    loads,
    read_body,
)
from shared.events.publisher import Publisher, default_publisher
from shared.http import JsonResponse
from shared.log import get_logger
from shared.metering.config import metering_settings
from shared.metering.ingest import MAX_BODY_BYTES, check, publish_events
from shared.metering.store import MeteredItem, MeteringError, MeteringStore
from shared.once import once

log = get_logger(__name__)

_USAGE = re.compile(r"^/customers/(?P<id>[^/]{1,200})/usage/?$")
_ATTACH = re.compile(r"^/customers/(?P<id>[^/]{1,200})/metered_subscription/?$")


class _In(BaseModel):
    # defer_build: built by the first attach, not at import (the usual first request ingests events).
    model_config = ConfigDict(frozen=True, extra="forbid", defer_build=True)


class MeteredItemIn(_In):
    price: FirestoreId = Field(description="a recurring price of the catalog (any model)")
    meter: FirestoreId


class AttachIn(_In):
    """The subscription whose periods usage is billed on: its start (anchor), zone and cadence."""

    subscription_id: FirestoreId
    start_at: BoundedDatetime
    zone: Annotated[str, StringConstraints(min_length=1, max_length=64)]
    interval: Unit = Unit.MONTH
    interval_count: int = Field(default=1, ge=1, le=36)
    items: tuple[MeteredItemIn, ...] = Field(min_length=1, max_length=20)
    threshold: int | None = Field(
        default=None, gt=0, le=10**12, description="progressive billing: invoice early at each multiple (minor units)"
    )


_METER = re.compile(r"^/meters(?:/(?P<id>[^/]{1,200}))?/?$")


@dataclass
class UsageService:
    """The collaborators: the store (Firestore, clock, settings) and the publisher port."""

    store: MeteringStore = field(default_factory=MeteringStore)
    publisher: Publisher = field(default_factory=default_publisher)


@once
def default_service() -> UsageService:
    return UsageService()


@http_entry("usage")
def handle(request: Any, service: UsageService | None = None) -> JsonResponse:
    svc = service or default_service()
    path = request.path or "/"
    try:
        if path.rstrip("/") == "/events":
            _method(request, "POST")
            return ingest(request, svc)
        if m := _USAGE.match(path):
            _method(request, "GET")
            customer = _id(m["id"])
            at = _at(request.args.get("at")) if metering_settings_allow_clock() else None
            try:
                return JsonResponse(svc.store.current_usage(customer, at))
            except PricingError as exc:  # a sum beyond the 10^12 units a line prices: say so, never a 500
                raise EdgeError(422, "usage_out_of_bounds", str(exc)) from None
        if m := _ATTACH.match(path):
            _method(request, "PUT")
            return JsonResponse(attach(_id(m["id"]), json_body(request, AttachIn), svc))
        if m := _METER.match(path):
            if m["id"]:
                _method(request, "GET")
                return JsonResponse(svc.store.meter(_id(m["id"])).model_dump(mode="json"))
            _method(request, "POST")
            meter = json_body(request, Meter)
            status, doc = svc.store.create_meter(meter)
            return JsonResponse(
                Meter.model_validate({k: v for k, v in doc.items() if k != "created_at"}).model_dump(mode="json"),
                status,
            )
    except MeteringError as exc:
        raise EdgeError(exc.status, exc.code, exc.detail) from None
    raise EdgeError(404, "not_found", "no such route")


def _at(raw: str | None) -> dt.datetime | None:
    """The test clock ``at``: an aware instant within the platform's bounds, else 400 (never a 500)."""
    if not raw:
        return None
    try:
        at = dt.datetime.fromisoformat(raw.replace("Z", "+00:00"))
    except ValueError:
        raise EdgeError(400, "invalid_at", "at is an RFC 3339 instant") from None
    if problem := datetime_problem(at):
        raise EdgeError(400, "invalid_at", f"at {problem}")
    return at


def attach(customer: str, body: AttachIn, svc: UsageService) -> dict[str, Any]:
    """422 for an unknown zone, price or meter, and for items one invoice cannot bill: a one-off or inactive
    price, a price renewing on another cadence, prices in several currencies, a meter twice (its lines would
    share one key). The prices are snapshotted (an invoice names what was sold)."""
    from shared.billing.catalog import CatalogStore
    from shared.billing.deps import BillingError
    from shared.domain.calendar import Cadence, CalendarError, zone

    meters = [i.meter for i in body.items]
    if len(set(meters)) < len(meters):
        raise EdgeError(422, "duplicate_meter", "each meter is billed by one item")
    try:
        zone(body.zone)
        items = [MeteredItem(price=CatalogStore().price(i.price), meter=i.meter) for i in body.items]
        _billable(items, body)
        cal = svc.store.attach(
            customer,
            subscription_id=body.subscription_id,
            start=body.start_at,
            zone=body.zone,
            cadence=Cadence(body.interval, body.interval_count),
            items=items,
            threshold=body.threshold,
        )
    except CalendarError as exc:
        raise EdgeError(422, "unknown_time_zone", str(exc)) from None
    except BillingError as exc:
        raise EdgeError(422, "unknown_price", exc.detail) from None
    except MeteringError as exc:
        raise EdgeError(422, "unknown_meter", exc.detail) from None
    return cal.model_dump(mode="json")


def _billable(items: Sequence[MeteredItem], body: AttachIn) -> None:
    for it in items:
        p, rec = it.price, it.price.recurring
        if not p.active:
            raise EdgeError(422, "price_inactive", f"price {p.id} is archived")
        if rec is None:
            raise EdgeError(422, "price_not_recurring", f"price {p.id} is one-off; usage is billed per period")
        if (rec.interval, rec.interval_count) != (body.interval, body.interval_count):
            raise EdgeError(422, "interval_mismatch", f"price {p.id} renews on another cadence than the subscription")
    if len({it.price.currency for it in items}) > 1:
        raise EdgeError(422, "currency_mismatch", "every metered item of a subscription is in one currency")


def metering_settings_allow_clock() -> bool:
    """``at`` (a test clock) is honoured on the emulators only."""
    from shared.config import get_settings

    return get_settings().on_emulators


def _method(request: Any, method: str) -> None:
    if request.method != method:
        raise EdgeError(405, "method_not_allowed", f"use {method}")


def _id(raw: str) -> str:
    if firestore_id_problem(raw):
        raise EdgeError(404, "invalid_id", "no such id")
    return raw


def ingest(request: Any, svc: UsageService) -> JsonResponse:
    if not (request.mimetype or "").endswith("json"):
        raise EdgeError(415, "unsupported_media_type", "send application/json")
    raw = read_body(request, MAX_BODY_BYTES)
    body = loads(raw)
    events = body.get("events") if isinstance(body, dict) else None
    if not isinstance(events, list) or not events:
        raise EdgeError(400, "malformed_json", 'body must be {"events": [...]} with at least one event')
    cfg = metering_settings()
    if len(events) > cfg.max_events:
        raise EdgeError(413, "too_many_events", f"at most {cfg.max_events} events per request")
    now = svc.store.deps.clock()
    checked = check(events, now, cfg.time_policy)
    if checked.accepted:  # a failed publish raises -> 503: nothing accepted, the client retries the batch
        whole = len(checked.accepted) == len(events) and list(body) == ["events"] and _plain_utf8_object(raw)
        publish_events(checked.accepted, svc.publisher, now, body=raw if whole else None)
    return JsonResponse(checked.answer())


def _plain_utf8_object(raw: bytes) -> bool:
    """The raw body can be spliced into the message: UTF-8 (no BOM, not UTF-16) starting with ``{``."""
    if raw.lstrip()[:1] != b"{":
        return False
    try:
        raw.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True


__all__ = ["UsageService", "ValidationError", "handle"]
