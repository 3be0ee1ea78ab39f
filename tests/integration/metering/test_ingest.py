"""The usage endpoint on the emulators: a result per event, one Pub/Sub message per batch, the aggregator's fold,
the current usage route; a publish that fails is a 503 with nothing accepted (never a silent half-failure)."""

from __future__ import annotations

import base64
import datetime as dt
import json
from typing import Any

import flask
import pytest
from cloudevents.http import CloudEvent

from shared.events.publisher import PubSubPublisher
from shared.metering.aggregator import handle_push
from shared.metering.api import UsageService, handle
from shared.metering.config import MeteringSettings
from shared.metering.store import MeteringDeps, MeteringStore
from tests.conftest import Gcp
from tests.helpers import drain_messages

APP = flask.Flask(__name__)
NOW = dt.datetime(2026, 11, 20, 12, tzinfo=dt.UTC)


def call(svc: UsageService, method: str, path: str, body: Any = None) -> tuple[int, Any]:
    data = json.dumps(body).encode() if body is not None else b""
    with APP.test_request_context(path, method=method, data=data, headers={"Content-Type": "application/json"}):
        resp = handle(flask.request, svc)
    return resp.status_code, resp.get_json()


def _svc(publisher: Any = None) -> UsageService:
    store = MeteringStore(MeteringDeps(clock=lambda: NOW, settings=MeteringSettings))
    return UsageService(store=store, publisher=publisher or PubSubPublisher())


def _ev(i: int, **kw: Any) -> dict[str, Any]:
    return {"id": f"e{i}", "customer": "cus", "event_name": "api_call", "timestamp": "2026-11-20T11:00:00Z"} | kw


class _Dead:
    def publish(self, *a: Any, **k: Any) -> str:
        raise TimeoutError("publish not acknowledged")

    def publish_raw(self, *a: Any, **k: Any) -> list[str]:
        raise TimeoutError("publish not acknowledged")


def test_results_per_event_one_message_then_the_aggregator_folds_it(gcp: Gcp) -> None:
    topic = gcp.topic("usage-events")
    pull = gcp.pull_subscription("usage-events")
    assert topic
    svc = _svc()
    assert call(svc, "POST", "/meters", {"id": "calls", "event_name": "api_call", "aggregation": "count"})[0] == 201
    events = [
        _ev(1),
        _ev(2, properties={"region": "eu"}),
        _ev(1),  # same id again in the request
        _ev(3, timestamp="2026-09-01T00:00:00Z"),  # beyond the 35-day horizon
        _ev(4, timestamp="2026-11-20T12:10:00Z"),  # beyond the 5-minute skew
        _ev(5, properties={"bytes": 1.5}),  # a float
        {"id": "bad id/", "customer": "cus"},
        "not an object",
    ]
    status, body = call(svc, "POST", "/events", {"events": events})
    assert status == 200
    assert body["results"] == ["accepted", "accepted", "duplicate"] + ["rejected"] * 5
    assert [e["index"] for e in body["errors"]] == [2, 3, 4, 5, 6, 7]
    reasons = ["", "", *(e["reason"] for e in body["errors"])]
    assert reasons[3].startswith("timestamp_too_old")
    assert reasons[4].startswith("timestamp_in_future")
    assert "no floats" in reasons[5]
    assert reasons[6].startswith("invalid: id")
    assert (body["accepted"], body["duplicate"], body["rejected"]) == (2, 1, 5)
    # the client retries the whole request (a timeout): accepted again, counted once
    assert call(svc, "POST", "/events", {"events": events[:2]})[1]["accepted"] == 2
    messages = drain_messages(pull)
    assert len(messages) == 2
    for m in messages:
        ce = CloudEvent(
            {"type": "google.cloud.pubsub.topic.v1.messagePublished", "source": "test"},
            {
                "message": {
                    "data": base64.b64encode(m.data).decode(),
                    "attributes": dict(m.attributes),
                    "messageId": m.message_id,
                }
            },
        )
        handle_push(ce)
    handle_push(ce)  # a redelivery of the last one
    from shared.domain.calendar import Period
    from shared.domain.meters import quantities

    nov = Period(0, dt.datetime(2026, 11, 1, tzinfo=dt.UTC), dt.datetime(2026, 12, 1, tzinfo=dt.UTC))
    meter = svc.store.meter("calls")
    assert quantities(meter, svc.store.period_totals("cus", nov)) == {"": 2}  # the aggregator's default shards


def test_a_lost_publish_is_a_503_and_bounds_are_precise(gcp: Gcp) -> None:
    svc = _svc(_Dead())
    for events in ([_ev(1)], [_ev(1), _ev(2, timestamp="2020-01-01T00:00:00Z")]):  # raw and typed publish
        status, body = call(svc, "POST", "/events", {"events": events})
        assert (status, body["error"]) == (503, "temporarily_unavailable")
    assert call(svc, "POST", "/events", {"events": [_ev(i) for i in range(1001)]})[1]["error"] == "too_many_events"
    assert call(svc, "POST", "/events", {"events": []})[0] == 400
    assert call(svc, "GET", "/events")[0] == 405
    assert call(svc, "GET", "/customers/nobody/usage")[1]["error"] == "no_metered_subscription"
    assert call(svc, "POST", "/meters", {"id": "m", "event_name": "x", "aggregation": "sum"})[0] == 422


@pytest.fixture(autouse=True)
def _clock(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("shared.metering.aggregator.utcnow", lambda: NOW)


def test_a_metered_subscription_is_attached_over_http(gcp: Gcp) -> None:
    from shared.billing.catalog import CatalogStore, CreatePrice, CreateProduct

    cat = CatalogStore()
    cat.create_product(CreateProduct(id="api", name="API"))
    pricing = {"model": "package", "package_size": 100, "package_amount": "250"}
    body = {"id": "api-eur", "product": "api", "currency": "EUR", "recurring": {"interval": "month"}}
    cat.create_price(CreatePrice.model_validate(body | {"pricing": pricing}))
    svc = _svc()
    assert call(svc, "POST", "/meters", {"id": "calls", "event_name": "api_call", "aggregation": "count"})[0] == 201
    attach = {"subscription_id": "sub_1", "start_at": "2026-11-15T08:00:00+01:00", "zone": "Europe/Paris"}
    ok = attach | {"items": [{"price": "api-eur", "meter": "calls"}]}
    status, cal = call(svc, "PUT", "/customers/cus/metered_subscription", ok)
    assert (status, cal["anchor_local"], cal["items"][0]["price"]["id"]) == (200, "2026-11-15T08:00:00", "api-eur")
    bad = [
        (attach | {"zone": "Mars/Olympus", "items": ok["items"]}, "unknown_time_zone"),
        (attach | {"items": [{"price": "nope", "meter": "calls"}]}, "unknown_price"),
        (attach | {"items": [{"price": "api-eur", "meter": "nope"}]}, "unknown_meter"),
        (attach | {"items": []}, "invalid_request"),
    ]
    for body_, code in bad:
        assert call(svc, "PUT", "/customers/cus/metered_subscription", body_)[1]["error"] == code
    usage = call(svc, "GET", "/customers/cus/usage?at=2026-11-20T12:00:00Z")[1]
    assert (usage["period_start"], usage["items"][0]["quantity"]) == ("2026-11-15T07:00:00Z", "0")
