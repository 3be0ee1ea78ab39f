"""The backfill on the emulators: a dropped webhook is recovered by the next run, exactly once.

Webhooks are delivered through the real HTTP path; the PSP's event list is a local Stripe stub served
to the official SDK; Firestore and Pub/Sub are the emulators.
"""

from __future__ import annotations

import copy
import datetime as dt
import json
import threading
from dataclasses import dataclass, field
from typing import Any

import pytest
from pytest_httpserver import HTTPServer
from werkzeug import Request, Response

from shared import clients
from shared.backfill.base import Window
from shared.backfill.config import BackfillSettings, source_settings
from shared.backfill.entry import handle_push
from shared.backfill.registry import SOURCES
from shared.backfill.runner import Backfill, BackfillFailed
from shared.backfill.state import COLLECTION as STATE
from shared.psp import signing
from shared.webhooks.store import COLLECTION, record_id
from tests.conftest import Gcp
from tests.fixtures.psp import compact, load
from tests.helpers import wait_for
from tests.integration.webhooks.support import STRIPE_SECRET, Harness, harness
from tests.logcapture import captured_lines
from tests.unit.events.samples import cloud_event, message

API_KEY = "sk_test_backfill_it"


def settings(**kw: Any) -> BackfillSettings:
    base = {"lookback_s": 86400, "overlap_s": 3600, "delay_s": 60, "max_window_s": 3 * 86400, "page_size": 2,
            "max_pages": 20, "lease_s": 360}  # fmt: skip
    return BackfillSettings(accounts=(("stripe", "default"),), **{**base, **kw})


def stripe_events(n: int, *, created: int) -> list[dict[str, Any]]:
    """n payment_intent.succeeded events plus one type that maps to nothing (a warning closed)."""
    base = load("stripe_payment_intent_succeeded.json")
    events = []
    for i in range(n):
        ev = copy.deepcopy(base)
        ev["id"] = f"evt_bf_{i}"
        ev["created"] = created - i
        ev["data"]["object"]["id"] = f"pi_bf_{i}"
        events.append(ev)
    closed = load("stripe_charge_dispute_closed.json")
    closed["id"], closed["created"] = "evt_bf_warning", created - n
    closed["data"]["object"]["status"] = "warning_closed"
    return [*events, closed]


@dataclass
class StripeStub:
    """``GET /v1/events``: newest first, ``limit`` per page, ``starting_after`` cursor; can fail a page."""

    events: list[dict[str, Any]]
    fail_after: str | None = None  # answer 500 to the page starting after this id
    requests: list[dict[str, list[str]]] = field(default_factory=list)

    def handler(self, req: Request) -> Response:
        args = {k: req.args.getlist(k) for k in req.args}
        self.requests.append(args)
        assert req.headers["Authorization"] == f"Bearer {API_KEY}"
        lo, hi = int(args["created[gte]"][0]), int(args["created[lt]"][0])
        listed = [e for e in sorted(self.events, key=lambda e: -e["created"]) if lo <= e["created"] < hi]
        after = args["starting_after"][0] if "starting_after" in args else None
        if after is not None:
            if after == self.fail_after:
                return Response('{"error": {"message": "unavailable"}}', 500, mimetype="application/json")
            listed = listed[[e["id"] for e in listed].index(after) + 1 :]
        limit = int(args["limit"][0])
        body = {"object": "list", "url": "/v1/events", "data": listed[:limit], "has_more": len(listed) > limit}
        return Response(json.dumps(body), 200, mimetype="application/json")


@pytest.fixture
def h(gcp: Gcp, monkeypatch: pytest.MonkeyPatch) -> Harness:
    return harness(gcp, monkeypatch)


@pytest.fixture
def stub(httpserver: HTTPServer, monkeypatch: pytest.MonkeyPatch) -> StripeStub:
    stub = StripeStub([])
    httpserver.expect_request("/v1/events", method="GET").respond_with_handler(stub.handler)
    monkeypatch.setenv("STRIPE_API_BASE", httpserver.url_for("").rstrip("/"))
    monkeypatch.setenv("STRIPE_API_KEY", API_KEY)
    monkeypatch.delenv("BACKFILL_ACCOUNTS", raising=False)
    return stub


def deliver(h: Harness, ev: dict[str, Any]) -> None:
    body = compact(ev)
    resp = h.post("/stripe", body, {"Stripe-Signature": signing.stripe_header(body, STRIPE_SECRET)})
    assert resp.status_code == 200, resp.get_data(as_text=True)


def snapshots() -> dict[str, Any]:
    return {s.id: s for s in clients.firestore().collection(COLLECTION).stream()}


def record(event_id: str) -> dict[str, Any]:
    snap = clients.firestore().collection(COLLECTION).document(record_id("stripe", "default", event_id)).get()
    return snap.to_dict() or {}


def test_a_dropped_webhook_is_recovered_once_by_concurrent_and_sequential_runs(h: Harness, stub: StripeStub) -> None:
    now = dt.datetime.now(dt.UTC)
    events = stripe_events(5, created=int(now.timestamp()) - 600)
    stub.events = events
    dropped, unmapped = events[2], events[-1]
    for ev in events:
        if ev not in (dropped, unmapped):
            deliver(h, ev)
    delivered = {m.event.psp_event_id for m in h.drain()}
    assert delivered == {e["id"] for e in events[:5]} - {dropped["id"]}
    before = {k: s.update_time for k, s in snapshots().items()}
    assert len(before) == 4

    bf = Backfill(h.service, db=clients.firestore)
    barrier = threading.Barrier(2)
    results: list[Any] = []

    def run() -> None:
        barrier.wait()
        results.append(bf.run_tick(settings()))

    with captured_lines() as lines:
        threads = [threading.Thread(target=run) for _ in range(2)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        bf.run_tick(settings())
        bf.run_tick(settings())

    assert len(results) == 2
    published = h.drain()
    assert [m.event.psp_event_id for m in published] == [dropped["id"]]  # exactly one new canonical event
    assert published[0].envelope.idempotency_key == published[0].event.fact_key()
    after = snapshots()
    assert len(after) == 6
    for key, t in before.items():  # the delivered ones untouched
        assert after[key].update_time == t
        assert "backfilled" not in (after[key].to_dict() or {})
    # final states are written after the answer, by the webhooks service's background finisher
    rec = wait_for(lambda: (r := record(dropped["id"]))["state"] == "published" and r)
    assert rec["backfilled"] is True
    assert rec["fact_key"] == published[0].event.fact_key()
    archived = json.loads(rec["raw"])  # the PSP's event, scrubbed like a webhook's (the fixture holds a PAN)
    assert archived["id"] == dropped["id"]
    assert archived["data"]["object"]["payment_method_details"]["card"]["number"] == "[PAN]"
    ignored = wait_for(lambda: (r := record(unmapped["id"]))["state"] == "ignored" and r)  # authentic, unmappable
    assert ignored["backfilled"] is True
    gaps = [ln for ln in lines if ln.get("event") == "webhook.gap_detected"]
    assert sorted(g["psp_event_id"] for g in gaps) == sorted([dropped["id"], unmapped["id"]])
    for g in gaps:
        assert g["logging.googleapis.com/labels"]["psp"] == "stripe"
        assert g["logging.googleapis.com/labels"]["account"] == "default"
    state = clients.firestore().collection(STATE).document("stripe:default").get().to_dict() or {}
    assert state["watermark"] is not None
    assert state["lease_until"] is None
    assert state["cursor"] is None


def test_concurrent_reconciliations_of_the_same_gap_publish_once(h: Harness, stub: StripeStub) -> None:
    """Without the account lease (two runs that both listed the page): the webhook record decides."""
    now = dt.datetime.now(dt.UTC)
    (ev, _) = stripe_events(1, created=int(now.timestamp()) - 600)
    stub.events = [ev]
    cfg = source_settings("stripe", "default")
    assert cfg is not None
    page = SOURCES["stripe"].page(cfg, Window(now - dt.timedelta(hours=1), now), None, 10)
    assert [n.event_id for n in page.notes] == [ev["id"]]
    bf = Backfill(h.service, db=clients.firestore)
    barrier = threading.Barrier(4)
    outcomes: list[dict[str, int]] = []

    def run() -> None:
        barrier.wait()
        outcomes.append(dict(bf.reconcile(SOURCES["stripe"], cfg, page.notes)))

    threads = [threading.Thread(target=run) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert [m.event.psp_event_id for m in h.drain()] == [ev["id"]]
    assert sum(o.get("published", 0) for o in outcomes) == 1
    # The record's final state is written after the answer, by the webhooks service's background finisher.
    assert wait_for(lambda: record(ev["id"])["state"] == "published")


def test_a_failing_psp_nacks_the_tick_and_the_next_one_resumes_at_the_cursor(
    h: Harness, stub: StripeStub, monkeypatch: pytest.MonkeyPatch
) -> None:
    now = dt.datetime.now(dt.UTC)
    events = stripe_events(4, created=int(now.timestamp()) - 600)[:4]
    stub.events = events
    first_gap, second_gap = events[1], events[3]  # page 1 holds events 0-1, page 2 events 2-3
    for ev in (events[0], events[2]):
        deliver(h, ev)
    h.drain()
    stub.fail_after = events[1]["id"]
    monkeypatch.setenv("BACKFILL_PAGE_SIZE", "2")
    monkeypatch.setenv("BACKFILL_DELAY_S", "60")
    tick = cloud_event(message(b"{}", {"event_type": "backfill.tick"}))

    with pytest.raises(BackfillFailed):  # through the function's entry: a nack
        handle_push(tick)

    assert [m.event.psp_event_id for m in h.drain()] == [first_gap["id"]]
    state = clients.firestore().collection(STATE).document("stripe:default").get().to_dict() or {}
    assert state["cursor"] == events[1]["id"]  # page 1 done and kept
    assert state.get("watermark") is None
    assert "unavailable" in state["last_error"] or "APIError" in state["last_error"]
    assert state["lease_until"] is None
    window = (state["window_start"], state["window_end"])

    stub.fail_after = None
    handle_push(tick)

    assert stub.requests[-1]["starting_after"] == [events[1]["id"]]  # resumed, not restarted
    assert int(stub.requests[-1]["created[lt]"][0]) == int(window[1].timestamp())
    assert [m.event.psp_event_id for m in h.drain()] == [second_gap["id"]]
    state = clients.firestore().collection(STATE).document("stripe:default").get().to_dict() or {}
    assert state["watermark"] == window[1]
    assert state["cursor"] is None
    assert state["last_error"] is None
