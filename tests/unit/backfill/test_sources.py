"""Each PSP's event list, through its official SDK (PayPal: plain HTTP), against a local stub that
asserts the exact requests: paths, query parameters (time window, page size, pagination) and auth."""

from __future__ import annotations

import base64
import datetime as dt
import json

import pytest
from pytest_httpserver import HTTPServer
from werkzeug import Request, Response

from shared.backfill.base import SourceError, Window
from shared.backfill.checkout import CheckoutEvents
from shared.backfill.config import SourceSettings
from shared.backfill.gocardless import GoCardlessEvents
from shared.backfill.paypal import PayPalEvents
from shared.backfill.stripe import TYPES, StripeEvents
from tests.fixtures.psp import load

WINDOW = Window(dt.datetime(2026, 1, 31, 8, 0, tzinfo=dt.UTC), dt.datetime(2026, 1, 31, 9, 0, tzinfo=dt.UTC))
START, END = int(WINDOW.start.timestamp()), int(WINDOW.end.timestamp())
CHECKOUT_KEY = "sk_test_fb6e0ac7-9a0b-4c1a-8d2e-3f4a5b6c7d8e"


def settings(httpserver: HTTPServer, psp: str, **creds: str) -> SourceSettings:
    return SourceSettings(psp, "default", False, creds, httpserver.url_for("").rstrip("/"))


def args(req: Request) -> dict[str, list[str]]:
    return {k: req.args.getlist(k) for k in req.args}


def test_stripe_lists_the_window_by_page_with_the_sdk(httpserver: HTTPServer) -> None:
    first, second = load("stripe_payment_intent_succeeded.json"), load("stripe_charge_refunded.json")
    other_mode = {**load("stripe_payment_intent_payment_failed.json"), "livemode": True}
    pages = [
        {"object": "list", "data": [first, other_mode], "has_more": True, "url": "/v1/events"},
        {"object": "list", "data": [second], "has_more": False, "url": "/v1/events"},
    ]
    for page in pages:
        httpserver.expect_ordered_request("/v1/events", method="GET").respond_with_json(page)
    src, cfg = StripeEvents(), settings(httpserver, "stripe", STRIPE_API_KEY="sk_test_backfill")

    p1 = src.page(cfg, WINDOW, None, 2)
    p2 = src.page(cfg, WINDOW, p1.cursor, 2)

    assert [n.event_id for n in p1.notes] == [first["id"]]  # the other mode's event is not ours
    assert p1.cursor == other_mode["id"]  # Stripe's cursor: the last listed id
    assert [(n.event_id, n.event_type) for n in p2.notes] == [(second["id"], "charge.refunded")]
    assert p2.cursor is None
    assert p1.notes[0].payload == first
    assert json.loads(p1.notes[0].raw) == first
    (r1, _), (r2, _) = httpserver.log
    expected = {
        "created[gte]": [str(START)],
        "created[lt]": [str(END)],
        "limit": ["2"],
        **{f"types[{i}]": [t] for i, t in enumerate(TYPES)},
    }
    assert args(r1) == expected
    assert args(r2) == {**expected, "starting_after": [other_mode["id"]]}
    for r in (r1, r2):
        assert r.headers["Authorization"] == "Bearer sk_test_backfill"
    httpserver.check_assertions()


def test_stripe_failure_is_a_source_error(httpserver: HTTPServer) -> None:
    httpserver.expect_request("/v1/events").respond_with_json({"error": {"message": "down"}}, status=500)
    with pytest.raises(SourceError, match="stripe events list"):
        StripeEvents().page(settings(httpserver, "stripe", STRIPE_API_KEY="sk_test_x"), WINDOW, None, 10)


def test_gocardless_lists_the_window_by_cursor_with_the_sdk(httpserver: HTTPServer) -> None:
    batch = load("gocardless_batch.json")["events"]
    pages = [
        {"events": batch[:1], "meta": {"cursors": {"before": None, "after": "EV_CURSOR_1"}, "limit": 1}},
        {"events": batch[1:2], "meta": {"cursors": {"before": "EV_CURSOR_1", "after": None}, "limit": 1}},
    ]
    for page in pages:
        httpserver.expect_ordered_request("/events", method="GET").respond_with_json(page)
    src, cfg = GoCardlessEvents(), settings(httpserver, "gocardless", GOCARDLESS_ACCESS_TOKEN="gc_token_test")

    p1 = src.page(cfg, WINDOW, None, 1)
    p2 = src.page(cfg, WINDOW, p1.cursor, 1)

    assert [(n.event_id, n.event_type) for n in p1.notes] == [(batch[0]["id"], "payments.confirmed")]
    assert p1.cursor == "EV_CURSOR_1"
    assert p2.cursor is None
    assert p2.notes[0].payload == batch[1]
    (r1, _), (r2, _) = httpserver.log
    window = {"created_at[gte]": ["2026-01-31T08:00:00Z"], "created_at[lt]": ["2026-01-31T09:00:00Z"], "limit": ["1"]}
    assert args(r1) == window
    assert args(r2) == {**window, "after": ["EV_CURSOR_1"]}
    for r in (r1, r2):
        assert r.headers["Authorization"] == "Bearer gc_token_test"
        assert r.headers["GoCardless-Version"]


def test_paypal_gets_a_token_then_follows_next_links_on_the_same_host(httpserver: HTTPServer) -> None:
    ev = load("paypal_capture_completed.json")
    base = httpserver.url_for("").rstrip("/")
    httpserver.expect_ordered_request("/v1/oauth2/token", method="POST").respond_with_json(
        {"access_token": "A21AAtoken", "token_type": "Bearer", "expires_in": 32400}
    )
    next_href = f"{base}/v1/notifications/webhooks-events?page_size=1&start_time=x&end_time=y&next_page_token=2"
    httpserver.expect_ordered_request("/v1/notifications/webhooks-events", method="GET").respond_with_json(
        {"events": [ev], "count": 1, "links": [{"href": next_href, "rel": "next", "method": "GET"}]}
    )
    httpserver.expect_ordered_request("/v1/notifications/webhooks-events", method="GET").respond_with_json(
        {"events": [], "count": 0, "links": []}
    )
    src = PayPalEvents()
    cfg = settings(httpserver, "paypal", PAYPAL_CLIENT_ID="client-it", PAYPAL_CLIENT_SECRET="secret-it")

    p1 = src.page(cfg, WINDOW, None, 1)
    p2 = src.page(cfg, WINDOW, p1.cursor, 1)

    assert [(n.event_id, n.event_type) for n in p1.notes] == [(ev["id"], "PAYMENT.CAPTURE.COMPLETED")]
    assert p1.cursor == next_href
    assert p2.cursor is None
    assert not p2.notes
    (token, _), (r1, _), (r2, _) = httpserver.log
    assert token.headers["Authorization"] == "Basic " + base64.b64encode(b"client-it:secret-it").decode()
    assert token.form.to_dict() == {"grant_type": "client_credentials"}
    assert args(r1) == {
        "page_size": ["1"],
        "start_time": ["2026-01-31T08:00:00Z"],
        "end_time": ["2026-01-31T09:00:00Z"],
    }
    assert args(r2) == {"page_size": ["1"], "start_time": ["x"], "end_time": ["y"], "next_page_token": ["2"]}
    for r in (r1, r2):  # the token is fetched once and reused
        assert r.headers["Authorization"] == "Bearer A21AAtoken"


def test_paypal_refuses_a_next_link_to_another_host(httpserver: HTTPServer) -> None:
    cfg = settings(httpserver, "paypal", PAYPAL_CLIENT_ID="c", PAYPAL_CLIENT_SECRET="s")
    with pytest.raises(SourceError, match="leaves the API host"):
        PayPalEvents().page(cfg, WINDOW, "https://attacker.example/v1/notifications/webhooks-events", 1)
    assert not httpserver.log


def test_checkout_lists_summaries_by_offset_and_fetches_only_what_is_asked(httpserver: HTTPServer) -> None:
    full = load("checkout_payment_captured.json")
    summary = {"id": full["id"], "type": full["type"], "created_on": full["created_on"], "_links": {}}
    other = {"id": "evt_other", "type": "payment_approved", "created_on": full["created_on"]}
    httpserver.expect_ordered_request("/events", method="GET").respond_with_json(
        {"total_count": 3, "limit": 2, "skip": 0, "data": [summary, other]}
    )
    httpserver.expect_ordered_request("/events", method="GET").respond_with_json(
        {"total_count": 3, "limit": 2, "skip": 2, "data": [{**other, "id": "evt_third"}]}
    )
    httpserver.expect_ordered_request(f"/events/{full['id']}", method="GET").respond_with_json(full)
    src, cfg = CheckoutEvents(), settings(httpserver, "checkout", CHECKOUT_SECRET_KEY=CHECKOUT_KEY)

    p1 = src.page(cfg, WINDOW, None, 2)
    p2 = src.page(cfg, WINDOW, p1.cursor, 2)
    complete = src.full(cfg, p1.notes[0])

    assert [n.event_id for n in p1.notes] == [full["id"], "evt_other"]
    assert p1.cursor == "2"
    assert [n.event_id for n in p2.notes] == ["evt_third"]
    assert p2.cursor is None
    assert complete.payload == full
    assert complete.event_type == "payment_captured"
    (r1, _), (r2, _), (r3, _) = httpserver.log
    window = {"from": ["2026-01-31T08:00:00+00:00"], "to": ["2026-01-31T09:00:00+00:00"], "limit": ["2"]}
    assert args(r1) == {**window, "skip": ["0"]}
    assert args(r2) == {**window, "skip": ["2"]}
    assert args(r3) == {}
    for r in (r1, r2, r3):  # the previous platform's secret key, without a scheme
        assert r.headers["Authorization"] == CHECKOUT_KEY


def test_checkout_failure_is_a_source_error(httpserver: HTTPServer) -> None:
    def boom(_: Request) -> Response:
        return Response("bad gateway", status=502)

    httpserver.expect_request("/events").respond_with_handler(boom)
    with pytest.raises(SourceError, match="checkout events"):
        CheckoutEvents().page(settings(httpserver, "checkout", CHECKOUT_SECRET_KEY=CHECKOUT_KEY), WINDOW, None, 5)
