"""Acceptance probes of the usage API on the emulators, through the real HTTP handler and the push handler:
hostile input gets a 2xx or a precise 4xx (never a 500), a metered subscription one invoice cannot bill is
refused with a code, the consumer nacks what it cannot read (dead-letter, never acked and dropped) and counts a
message delivered twice, out of order or in parallel once."""

from __future__ import annotations

import base64
import datetime as dt
import json
import threading
from collections.abc import Iterator
from decimal import Decimal
from typing import Any
from unittest.mock import ANY

import flask
import pytest
from cloudevents.http import CloudEvent

from shared.domain.calendar import Period
from shared.domain.meters import quantities
from shared.events.consumer import Undeliverable
from shared.events.publisher import PubSubPublisher
from shared.metering.aggregator import default_store, default_window, handle_push
from shared.metering.api import UsageService, default_service, handle
from shared.metering.config import MeteringSettings
from shared.metering.store import MeteringDeps, MeteringStore
from tests.conftest import Gcp
from tests.helpers import drain_messages

APP = flask.Flask(__name__)
NOW = dt.datetime(2026, 11, 20, 12, tzinfo=dt.UTC)
NOV = Period(0, dt.datetime(2026, 11, 1, tzinfo=dt.UTC), dt.datetime(2026, 12, 1, tzinfo=dt.UTC))


@pytest.fixture(autouse=True)
def _clock(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """The push handler's own service (its meter cache) starts afresh in each test's project, and is left afresh
    for the next test module."""
    monkeypatch.setattr("shared.metering.aggregator.utcnow", lambda: NOW)
    for cached in (default_service, default_store, default_window):
        cached.cache_clear()
    yield
    for cached in (default_service, default_store, default_window):
        cached.cache_clear()


def raw_call(svc: UsageService, method: str, path: str, data: bytes = b"", ct: str = "application/json") -> Any:
    with APP.test_request_context(path, method=method, data=data, headers={"Content-Type": ct}):
        resp = handle(flask.request, svc)
    return resp.status_code, resp.get_json()


def call(svc: UsageService, method: str, path: str, body: Any = None) -> Any:
    return raw_call(svc, method, path, json.dumps(body).encode() if body is not None else b"")


def _svc() -> UsageService:
    return UsageService(MeteringStore(MeteringDeps(clock=lambda: NOW, settings=MeteringSettings)), PubSubPublisher())


def _ev(i: int | str, **kw: Any) -> dict[str, Any]:
    return {"id": f"e{i}", "customer": "cus", "event_name": "api_call", "timestamp": "2026-11-20T11:00:00Z"} | kw


def _push(data: bytes, attributes: dict[str, str], message_id: str = "1") -> object:
    message = {"data": base64.b64encode(data).decode(), "attributes": attributes, "messageId": message_id}
    ce = CloudEvent({"type": "google.cloud.pubsub.topic.v1.messagePublished", "source": "test"}, {"message": message})
    return handle_push(ce)


RAW_BODIES: list[tuple[str, bytes, str, int, str | None]] = [
    ("not an object", b'[{"id": "e1"}]', "application/json", 400, "malformed_json"),
    ("a string", b'"events"', "application/json", 400, "malformed_json"),
    ("no events", b"{}", "application/json", 400, "malformed_json"),
    ("zero events", b'{"events": []}', "application/json", 400, "malformed_json"),
    ("NaN", b'{"events": [{"properties": {"k": NaN}}]}', "application/json", 400, "malformed_json"),
    ("Infinity", b'{"events": [{"properties": {"k": Infinity}}]}', "application/json", 400, "malformed_json"),
    ("latin-1", b'{"events": [{"event_name": "\xe9"}]}', "application/json", 400, "malformed_json"),
    ("deep", b'{"events": [' + b"[" * 64 + b"]" * 64 + b"]}", "application/json", 400, "json_too_deep"),
    ("2 MiB+", b'{"events": ["' + b"x" * (2 * 1024 * 1024) + b'"]}', "application/json", 413, "payload_too_large"),
    ("text/plain", b'{"events": []}', "text/plain", 415, "unsupported_media_type"),
    ("no content type", b'{"events": []}', "", 415, "unsupported_media_type"),
]


@pytest.mark.parametrize(("label", "data", "ct", "status", "code"), RAW_BODIES, ids=[b[0] for b in RAW_BODIES])
def test_malformed_bodies_get_a_precise_4xx(gcp: Gcp, label: str, data: bytes, ct: str, status: int, code: str) -> None:
    got, body = raw_call(_svc(), "POST", "/events", data, ct)
    assert (got, body["error"]) == (status, code), label


HOSTILE_EVENTS: list[Any] = [
    *(_ev("x", customer=c) for c in (".", "..", "__x__", "a~b", "a/b", "x" * 1501, "é", "a\x00b", "")),
    *({**_ev("x"), "id": v} for v in (".", "..", "__x__", "~", "a~b", "/", "x" * 1501, "\u2603", "\n", "", 42, None)),
    *(_ev("x", event_name=n) for n in ("", "x" * 101, None, 3, "\ud800")),
    *(_ev("x", properties={"k": v}) for v in ({"a": 1}, [1], "x" * 257, True, None, 10**13, -(10**13), 2**70, 0.5)),
    *(_ev("x", properties={k: 1}) for k in ("", "x" * 65, "\ud800")),
    _ev("x", properties={f"k{i}": i for i in range(21)}),
    *(
        _ev("x", timestamp=t)
        for t in (
            "2026-11-20T11:00:00",  # no zone
            "2026-11-20",
            "2026-11-20T23:59:60Z",  # a leap second
            "0001-01-01T00:00:00+01:00",
            "9999-12-31T23:59:59-01:00",
            "2026-09-01T00:00:00Z",  # beyond the horizon
            "2026-11-20T12:10:00Z",  # beyond the skew
            "garbage",
            None,
        )
    ),
    _ev("x", unknown=1),
    "an event is an object",
    [1, 2],
    None,
]


def test_every_hostile_event_is_rejected_with_a_reason_and_the_rest_accepted(gcp: Gcp) -> None:
    gcp.topic("usage-events")
    pull = gcp.pull_subscription("usage-events")
    svc = _svc()
    good = [
        _ev("ok1", properties={"a.b": 1, "__x__": "v", "s": "x" * 256, "n": -(10**12), "d": "1.000000000001"}),
        _ev("ok2", timestamp="2026-11-20T12:04:59+01:00"),  # zones: 11:04:59Z
        _ev("ok3", event_name="a\x00b\u2603", customer="cus2"),
        _ev("ok1", customer="other"),  # the same id for another customer is another event
    ]
    status, body = call(svc, "POST", "/events", {"events": HOSTILE_EVENTS + good})
    n = len(HOSTILE_EVENTS)
    assert status == 200
    assert body["results"] == ["rejected"] * n + ["accepted"] * 4
    assert [e["index"] for e in body["errors"]] == list(range(n))
    assert all(e["reason"] for e in body["errors"])
    messages = drain_messages(pull)
    assert len(messages) == 1
    assert len(json.loads(messages[0].data)["events"]) == 4
    m = messages[0]
    _push(m.data, dict(m.attributes), m.message_id)  # the accepted events are readable by the aggregator


def test_batches_of_1000_and_1001_and_duplicates_within_and_across_requests(gcp: Gcp) -> None:
    gcp.topic("usage-events")
    pull = gcp.pull_subscription("usage-events")
    svc = _svc()
    assert call(svc, "POST", "/meters", {"id": "calls", "event_name": "api_call", "aggregation": "count"})[0] == 201
    status, body = call(svc, "POST", "/events", {"events": [_ev(i % 600) for i in range(1000)]})
    assert (status, body["accepted"], body["duplicate"], body["rejected"]) == (200, 600, 400, 0)
    assert call(svc, "POST", "/events", {"events": [_ev(i) for i in range(1001)]})[1]["error"] == "too_many_events"
    status, body = call(svc, "POST", "/events", {"events": [_ev(i) for i in range(590, 610)]})  # 10 seen before
    assert (status, body["accepted"]) == (200, 20)
    for m in reversed(drain_messages(pull)):  # out of order
        _push(m.data, dict(m.attributes), m.message_id)
    assert quantities(svc.store.meter("calls"), svc.store.period_totals("cus", NOV)) == {"": 610}


ROUTES = ["/events", "/meters", "/meters/calls", "/customers/cus/usage", "/customers/cus/metered_subscription"]
ALLOWED = {"/events": "POST", "/meters": "POST", "/meters/calls": "GET", "/customers/cus/usage": "GET"}


def test_every_route_with_a_wrong_method_is_405_and_unknown_routes_404(gcp: Gcp) -> None:
    svc = _svc()
    for route in ROUTES:
        for method in ("GET", "POST", "PUT", "DELETE", "PATCH"):
            if method != ALLOWED.get(route, "PUT"):
                assert call(svc, method, route, {}) == (405, {"error": "method_not_allowed", "detail": ANY})
    for route in ("/", "/nope", "/customers//usage", "/customers/cus", "/meters/a/b", "/events/x"):
        assert call(svc, "GET", route)[0] == 404
    for cid in ("..", "__x__", "a~b", "%E2%98%83", "x" * 150):
        assert call(svc, "GET", f"/customers/{cid}/usage") == (404, {"error": "invalid_id", "detail": "no such id"})


def _catalog() -> None:
    from shared.billing.catalog import CatalogStore, CreatePrice, CreateProduct

    cat = CatalogStore()
    cat.create_product(CreateProduct(id="api", name="API"))
    for pid, currency, recurring in [
        ("eur", "EUR", {"interval": "month"}),
        ("eur2", "EUR", {"interval": "month"}),
        ("usd", "USD", {"interval": "month"}),
        ("once", "EUR", None),
        ("yearly", "EUR", {"interval": "year"}),
        ("archived", "EUR", {"interval": "month"}),
    ]:
        body: dict[str, Any] = {
            "id": pid,
            "product": "api",
            "currency": currency,
            "pricing": {"model": "per_unit", "unit_amount": "2"},
        }
        body |= {"active": pid != "archived"} | ({"recurring": recurring} if recurring else {})
        cat.create_price(CreatePrice.model_validate(body))


def test_a_metered_subscription_one_invoice_cannot_bill_is_refused_with_a_code(gcp: Gcp) -> None:
    _catalog()
    svc = _svc()
    for mid in ("calls", "bytes"):
        assert call(svc, "POST", "/meters", {"id": mid, "event_name": "api_call", "aggregation": "count"})[0] == 201
    base = {"subscription_id": "sub_1", "start_at": "2026-11-15T08:00:00+01:00", "zone": "Europe/Paris"}
    cases = [
        ([{"price": "eur", "meter": "calls"}, {"price": "usd", "meter": "bytes"}], "currency_mismatch"),
        ([{"price": "once", "meter": "calls"}], "price_not_recurring"),
        ([{"price": "yearly", "meter": "calls"}], "interval_mismatch"),
        ([{"price": "archived", "meter": "calls"}], "price_inactive"),
        ([{"price": "eur", "meter": "calls"}, {"price": "eur2", "meter": "calls"}], "duplicate_meter"),
        ([{"price": "nope", "meter": "calls"}], "unknown_price"),
        ([{"price": "eur", "meter": "nope"}], "unknown_meter"),
    ]
    for items, code in cases:
        status, body = call(svc, "PUT", "/customers/cus/metered_subscription", base | {"items": items})
        assert (status, body["error"]) == (422, code)
        assert call(svc, "GET", "/customers/cus/usage")[1]["error"] == "no_metered_subscription"  # nothing attached
    zone_bad = base | {"zone": "Mars/Olympus", "items": [{"price": "eur", "meter": "calls"}]}
    assert call(svc, "PUT", "/customers/cus/metered_subscription", zone_bad)[1]["error"] == "unknown_time_zone"
    yearly = base | {"interval": "year", "items": [{"price": "yearly", "meter": "calls"}]}
    assert call(svc, "PUT", "/customers/cus/metered_subscription", yearly)[0] == 200
    two = base | {"items": [{"price": "eur", "meter": "calls"}, {"price": "eur2", "meter": "bytes"}]}
    assert call(svc, "PUT", "/customers/cus/metered_subscription", two)[0] == 200
    status, usage = call(svc, "GET", "/customers/cus/usage")  # attached, no usage yet: zeros, not an error
    assert status == 200
    assert [(i["meter"], i["quantity"], i["amount"]["amount"]) for i in usage["items"]] == [
        ("calls", "0", 0),
        ("bytes", "0", 0),
    ]
    assert usage["estimated_amount"] == {"amount": 0, "currency": "EUR"}


def test_the_test_clock_at_is_checked_never_a_500(gcp: Gcp) -> None:
    _catalog()
    svc = _svc()
    assert call(svc, "POST", "/meters", {"id": "calls", "event_name": "api_call", "aggregation": "count"})[0] == 201
    body: dict[str, Any] = {"subscription_id": "s", "start_at": "2026-11-15T08:00:00+01:00", "zone": "Europe/Paris"}
    body |= {"items": [{"price": "eur", "meter": "calls"}]}
    assert call(svc, "PUT", "/customers/cus/metered_subscription", body)[0] == 200
    for at in ("garbage", "2026-11-20T12:00:00", "0001-01-01T00:00:00Z", "9999-12-31T23:59:59Z", "2026-02-30T00:00Z"):
        assert call(svc, "GET", f"/customers/cus/usage?at={at}")[1]["error"] == "invalid_at"
    status, usage = call(svc, "GET", "/customers/cus/usage?at=2026-12-15T07:59:59%2B01:00")  # DST-free Paris
    assert (status, usage["period_start"], usage["period_end"]) == (200, "2026-11-15T07:00:00Z", "2026-12-15T07:00:00Z")


METERS_BAD = [
    ({"aggregation": "median"}, "aggregation"),
    ({"aggregation": "sum"}, "property"),
    ({"aggregation": "count", "property": "p"}, "property"),
    ({"filters": {"r": [str(i) for i in range(21)]}}, "filter"),
    ({"filters": {f"k{i}": ["a"] for i in range(11)}}, "filters"),
    ({"filters": {"r": []}}, "filter"),
    ({"filters": {"__x__": ["a"]}}, "__x__"),
    ({"filters": {"\ud800": ["a"]}}, "UTF-8"),
    ({"filters": {"r": ["\udc00"]}}, "UTF-8"),
    ({"filters": {"r": ["x" * 257]}}, "256"),
    ({"filters": {"r": [1]}}, "string"),
    ({"group_by": ""}, "group_by"),
    ({"id": "__x__"}, "id"),
    ({"unknown": 1}, "unknown"),
]


@pytest.mark.parametrize(("change", "why"), METERS_BAD, ids=[w for _, w in METERS_BAD])
def test_an_invalid_meter_is_a_422_with_a_code(gcp: Gcp, change: dict[str, Any], why: str) -> None:
    meter = {"id": "m", "event_name": "api_call", "aggregation": "count"} | change
    status, body = call(_svc(), "POST", "/meters", meter)
    assert (status, body["error"]) == (422, "invalid_request")


def test_meters_of_each_aggregation_with_filters_and_group_by_count_exactly(gcp: Gcp) -> None:
    gcp.topic("usage-events")
    pull = gcp.pull_subscription("usage-events")
    svc = _svc()
    common = {"event_name": "call", "filters": {"region": ["eu", "us"]}, "group_by": "tier"}
    for agg in ("count", "sum", "max", "unique_count", "latest"):
        meter = {"id": agg, "aggregation": agg, **common} | ({"property": "v"} if agg != "count" else {})
        assert call(svc, "POST", "/meters", meter)[0] == 201
        assert call(svc, "POST", "/meters", meter)[0] == 200  # the same definition again
        assert call(svc, "POST", "/meters", meter | {"group_by": "other"})[1]["error"] == "meter_exists"
    rows = [  # (region, tier, v, minute)
        ("eu", "gold", "1.5", 1),
        ("us", "gold", 3, 2),
        ("eu", "free", "0.000000000001", 3),
        ("asia", "gold", 100, 4),  # filtered out
        ("eu", "gold", "1_000", 5),  # not a number: counts for count only (the meters with a property skip it)
        ("eu", "gold", "2.5", 0),  # earliest: not the latest
    ]
    events = [
        _ev(i, event_name="call", timestamp=f"2026-11-20T11:0{m}:00Z", properties={"region": r, "tier": t, "v": v})
        for i, (r, t, v, m) in enumerate(rows)
    ]
    assert call(svc, "POST", "/events", {"events": events})[1]["accepted"] == len(rows)
    for m in drain_messages(pull):
        _push(m.data, dict(m.attributes), m.message_id)
        _push(m.data, dict(m.attributes), m.message_id)  # redelivered
    totals = svc.store.period_totals("cus", NOV)
    got = {
        agg: {g: f"{q:f}" for g, q in quantities(svc.store.meter(agg), totals).items()}
        for agg in ("count", "sum", "max", "unique_count", "latest")
    }
    assert got == {
        "count": {"free": "1", "gold": "4"},
        "sum": {"free": "0.000000000001", "gold": "7"},
        "max": {"free": "0.000000000001", "gold": "3"},
        "unique_count": {"free": "1", "gold": "4"},
        "latest": {"free": "0.000000000001", "gold": "3"},
    }


def _message(svc: UsageService, pull: str, events: list[dict[str, Any]]) -> Any:
    assert call(svc, "POST", "/events", {"events": events})[1]["accepted"] == len(events)
    (m,) = drain_messages(pull)
    return m


def test_the_consumer_nacks_what_it_cannot_read_and_counts_redeliveries_once(gcp: Gcp) -> None:
    gcp.topic("usage-events")
    pull = gcp.pull_subscription("usage-events")
    svc = _svc()
    assert call(svc, "POST", "/meters", {"id": "calls", "event_name": "api_call", "aggregation": "count"})[0] == 201
    m = _message(svc, pull, [_ev(i) for i in range(5)])
    attrs = dict(m.attributes)
    data = json.loads(m.data)
    naive = json.dumps(data | {"received_at": "2026-11-20T12:00:00"}).encode()
    for bad_data, bad_attrs in [
        (b"garbage", attrs),
        (b"{}", attrs),
        (json.dumps(data | {"events": []}).encode(), attrs),
        (json.dumps(data | {"events": [{"id": "__x__"}]}).encode(), attrs),
        (naive, attrs),  # a producer's naive clock: a contract violation, not a crash on every redelivery
        (m.data, attrs | {"schema_version": "2"}),
        (m.data, attrs | {"schema_version": "x"}),
        (m.data, {k: v for k, v in attrs.items() if k != "event_type"}),
    ]:
        with pytest.raises(Undeliverable):  # nacked: redelivered, then dead-lettered; the reason is logged
            _push(bad_data, bad_attrs)
    assert svc.store.period_totals("cus", NOV) == {}  # nothing was folded (nor acknowledged) from them

    later = _message(svc, pull, [_ev(i) for i in range(3, 9)])  # overlaps the first
    deliveries = [(m, "1"), (later, "2"), (m, "1"), (later, "3")] * 3
    threads = [
        threading.Thread(target=_push, args=(d.data, dict(d.attributes), mid)) for d, mid in reversed(deliveries)
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert quantities(svc.store.meter("calls"), svc.store.period_totals("cus", NOV)) == {"": 9}


# -- the estimate is what the close bills, for every aggregation and every price model --------------------------

PRICING: list[dict[str, Any]] = [
    {"model": "per_unit", "unit_amount": "0.37"},
    {"model": "package", "package_size": 7, "package_amount": "250"},
    {"model": "graduated", "tiers": [{"up_to": 5, "unit_amount": "100", "flat_amount": "9"}, {"unit_amount": "1.5"}]},
    {
        "model": "volume",
        "tiers": [{"up_to": 5, "unit_amount": "100"}, {"up_to": 50, "unit_amount": "3"}, {"unit_amount": "0.01"}],
    },
]


@pytest.mark.parametrize("shift", range(len(PRICING)))
def test_the_estimate_is_what_the_close_bills_for_every_aggregation_and_price_model(gcp: Gcp, shift: int) -> None:
    import concurrent.futures
    import random

    from shared.domain.calendar import Cadence, Unit
    from shared.domain.catalog import Price
    from shared.domain.meters import Event
    from shared.metering.store import MeteredItem
    from tests.unit.metering.test_meters import METERS, recompute

    start = dt.datetime(2026, 10, 31, 23, tzinfo=dt.UTC)  # midnight in Berlin, a DST change inside the period
    clock = [start + dt.timedelta(days=3)]
    cfg = MeteringSettings(shards=3, grace_s=3600)
    store = MeteringStore(MeteringDeps(clock=lambda: clock[0], settings=lambda: cfg))
    for meter in METERS:
        store.create_meter(meter)
    items = [
        MeteredItem(
            price=Price.model_validate(
                {
                    "id": f"p_{m.id}",
                    "product_id": "api",
                    "currency": "EUR",
                    "recurring": {"interval": "month"},
                    "pricing": PRICING[(i + shift) % len(PRICING)],
                }
            ),
            meter=m.id,
        )
        for i, m in enumerate(METERS)
    ]
    store.attach(
        "cus", subscription_id="s", start=start, zone="Europe/Berlin", cadence=Cadence(Unit.MONTH), items=items
    )
    rnd = random.Random(shift)
    events = [
        Event(
            id=f"e{i}",
            customer="cus",
            name=rnd.choice(["api_call", "storage"]),
            timestamp=start + dt.timedelta(seconds=rnd.randrange(0, 29 * 86400)),
            properties={
                "bytes": rnd.randrange(0, 40),
                "gb": f"{rnd.randrange(0, 90)}.{rnd.randrange(0, 1000):03d}",
                "region": rnd.choice(["eu-west", "eu-north", "us-east"]),
                "user": f"u{rnd.randrange(0, 12)}",
            },
        )
        for i in range(240)
    ]
    sent = events + rnd.sample(events, 60)  # duplicates
    rnd.shuffle(sent)  # out of order
    with concurrent.futures.ThreadPoolExecutor(4) as pool:  # in parallel
        list(pool.map(store.apply, [sent[i : i + 50] for i in range(0, len(sent), 50)]))
    usage = store.current_usage("cus")
    expected = {
        (m.id, g): max(q, Decimal(0)) for m in METERS for g, q in (recompute(m, events) or {"": Decimal(0)}).items()
    }
    assert {(i["meter"], i["group"]): Decimal(i["quantity"]) for i in usage["items"]} == expected
    cal = store.calendar("cus")
    assert cal is not None
    period = cal.schedule.period(0)
    clock[0] = period.end + dt.timedelta(hours=1)
    lines = store.close("cus", period, "s:p1")
    assert sorted((x.quantity, x.amount.amount) for x in lines) == sorted(
        (Decimal(i["quantity"]), i["amount"]["amount"]) for i in usage["items"]
    )
    assert sum(x.amount.amount for x in lines) == usage["estimated_amount"]["amount"] > 0


def test_an_internal_producer_batch_over_1000_events_goes_out_within_the_contract(gcp: Gcp) -> None:
    from shared.events.usage import UsageEventIn
    from shared.metering.ingest import publish_events

    gcp.topic("usage-events")
    pull = gcp.pull_subscription("usage-events")
    svc = _svc()
    assert call(svc, "POST", "/meters", {"id": "calls", "event_name": "api_call", "aggregation": "count"})[0] == 201
    events = [UsageEventIn.model_validate(_ev(i)) for i in range(2500)]
    publish_events(events, svc.publisher, NOW)
    with pytest.raises(ValueError, match="at least one event"):
        publish_events([], svc.publisher, NOW)
    messages = drain_messages(pull)
    assert sorted(len(json.loads(m.data)["events"]) for m in messages) == [500, 1000, 1000]
    for m in messages:  # none is dead-lettered: every event counts
        _push(m.data, dict(m.attributes), m.message_id)
    assert quantities(svc.store.meter("calls"), svc.store.period_totals("cus", NOV)) == {"": 2500}


def test_any_string_a_property_may_hold_is_a_group_and_a_unique_value(gcp: Gcp) -> None:
    gcp.topic("usage-events")
    pull = gcp.pull_subscription("usage-events")
    svc = _svc()
    meter = {"id": "users", "event_name": "e", "aggregation": "unique_count", "property": "u", "group_by": "g"}
    assert call(svc, "POST", "/meters", meter)[0] == 201
    odd = ["", "\x00", "a\x00b", "\u2603", "\U0001f600", "x" * 256, "__x__", ".", "..", "a/b", "a~b", "`", " ", "1"]
    events = [_ev(i, event_name="e", properties={"g": s, "u": s}) for i, s in enumerate(odd)]
    events.append(_ev("int", event_name="e", properties={"g": 1, "u": 1}))  # the int 1 is the string "1"
    assert call(svc, "POST", "/events", {"events": events})[1]["accepted"] == len(events)
    for m in drain_messages(pull):
        _push(m.data, dict(m.attributes), m.message_id)
    got = quantities(svc.store.meter("users"), svc.store.period_totals("cus", NOV))
    assert got == dict.fromkeys(odd, 1)  # group "1" holds the int and the string: one unique value


def test_a_usage_quantity_beyond_what_a_line_can_price_is_a_precise_4xx(gcp: Gcp) -> None:
    _catalog()
    gcp.topic("usage-events")
    pull = gcp.pull_subscription("usage-events")
    svc = _svc()
    meter = {"id": "bytes", "event_name": "api_call", "aggregation": "sum", "property": "b"}
    assert call(svc, "POST", "/meters", meter)[0] == 201
    body: dict[str, Any] = {"subscription_id": "s", "start_at": "2026-11-15T08:00:00+01:00", "zone": "Europe/Paris"}
    body |= {"items": [{"price": "eur", "meter": "bytes"}]}
    assert call(svc, "PUT", "/customers/cus/metered_subscription", body)[0] == 200
    events = [_ev(i, properties={"b": 10**12}) for i in range(2)]  # each within bounds, their sum is not
    assert call(svc, "POST", "/events", {"events": events})[1]["accepted"] == 2
    for m in drain_messages(pull):
        _push(m.data, dict(m.attributes), m.message_id)
    status, answer = call(svc, "GET", "/customers/cus/usage")
    assert (status, answer["error"]) == (422, "usage_out_of_bounds")
