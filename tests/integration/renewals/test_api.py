"""The subscriptions HTTP API on the emulators: create, replay, cancel, change plan, precise 4xx."""

from __future__ import annotations

import datetime as dt
from typing import Any

import flask
import pytest

from shared.renewals import planner
from shared.renewals.config import renewal_settings
from shared.subscriptions.api import handle
from tests.fixtures.renewals import Env
from tests.helpers import T0

APP = flask.Flask(__name__)
EUR_1 = {"amount": 1, "currency": "EUR"}


def call(method: str, path: str, body: Any = None, content_type: str = "application/json") -> tuple[int, Any]:
    kwargs: dict[str, Any] = {"method": method}
    if body is not None:
        kwargs["json" if content_type == "application/json" else "data"] = body
        if content_type != "application/json":
            kwargs["content_type"] = content_type
    with APP.test_request_context(path, **kwargs):
        resp = handle(flask.request)
    return resp.status_code, resp.get_json()


def create_body(sub_id: str = "sub_api", **over: Any) -> dict[str, Any]:
    body = {
        "subscription_id": sub_id,
        "customer": {"id": "cus-1", "name": "Grace Hopper", "country": "US"},
        "seller_entity": "acme-de",
        "plan": {
            "id": "basic",
            "currency": "USD",
            "interval": "month",
            "lines": [{"description": "Basic", "unit_amount": {"amount": 3000, "currency": "USD"}}],
        },
        "anchor_zone": "America/New_York",
        "start_at": T0.isoformat(),
        "payment_method": {"psp": "stripe", "customer_ref": "cus_x", "method_ref": "pm_card_visa"},
    }
    return body | over


def test_create_is_idempotent_and_conflicts_on_different_terms(env: Env) -> None:
    status, out = call("POST", "/subscriptions", create_body())
    assert status == 201
    assert (out["status"], out["version"], out["due_at"]) == ("active", 1, "2026-01-31T09:00:00Z")
    assert call("POST", "/subscriptions", create_body())[0] == 200
    status, out = call("POST", "/subscriptions", create_body(seller_entity="acme-fr"))
    assert (status, out["error"]) == (409, "subscription_exists")
    (ev,) = [b for _, b in env.pull("subscription-events")]
    assert (ev["version"], ev["to_status"], ev["reason"]) == (1, "active", "created")
    from shared import clients

    stored = clients.firestore().collection("subscriptions").document("sub_api").get().to_dict() or {}
    history = stored["transitions"]
    assert [(t["version"], t["from_status"], t["to_status"], t["reason"]) for t in history] == [
        (1, None, "active", "created")
    ]


@pytest.mark.parametrize(
    ("method", "path", "body", "ctype", "status", "code"),
    [
        ("PUT", "/subscriptions", None, "application/json", 405, "method_not_allowed"),
        ("POST", "/subscriptions", "x", "text/plain", 415, "unsupported_media_type"),
        ("POST", "/subscriptions", [1], "application/json", 400, "malformed_json"),
        ("POST", "/subscriptions", {"customer": {}}, "application/json", 422, "invalid_request"),
        ("GET", "/subscriptions/nope", None, "application/json", 404, "subscription_not_found"),
        ("POST", "/subscriptions/a/b/c", {}, "application/json", 404, "not_found"),
        ("GET", "/subscriptions/x/cancel", None, "application/json", 405, "method_not_allowed"),
    ],
)
def test_bad_requests_get_precise_4xx(
    env: Env, method: str, path: str, body: Any, ctype: str, status: int, code: str
) -> None:
    got_status, out = call(method, path, body, ctype)
    assert (got_status, out["error"]) == (status, code)


@pytest.mark.parametrize(
    ("override", "needle"),
    [
        ({"anchor_zone": "Mars/Olympus"}, "unknown IANA time zone"),
        ({"payment_method": None}, "needs a payment_method"),
        (
            {
                "plan": create_body()["plan"]
                | {"lines": [{"description": "x", "unit_amount": {"amount": 1, "currency": "EUR"}}]}
            },
            "not in the plan currency",
        ),
        ({"plan": create_body()["plan"] | {"interval": "fortnight"}}, "interval"),
    ],
)
def test_invalid_terms_are_422_with_the_reason(env: Env, override: dict[str, Any], needle: str) -> None:
    status, out = call("POST", "/subscriptions", create_body(**override))
    assert status == 422
    assert needle in str(out["detail"])


def test_test_clock_is_refused_when_disabled(env: Env, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RENEWALS_ALLOW_TEST_CLOCK", "0")
    status, out = call("POST", "/subscriptions", create_body())
    assert (status, out["error"]) == (400, "test_clock_disabled")


def _pay_first_period(sub_id: str) -> None:
    """Settle period 0 the way an outcome would (the collection path is tested elsewhere)."""
    from shared.domain.subscriptions import Outcome
    from shared.renewals import outcomes

    cfg = renewal_settings()
    for s in range(cfg.shards):
        planner.run_shard(s, T0, cfg)
    outcomes.apply(sub_id, Outcome("succeeded", "inv_0", 1, 0, T0, "paid"), T0)


def test_change_plan_adds_proration_lines_to_the_next_invoice(env: Env) -> None:
    call("POST", "/subscriptions", create_body())
    _pay_first_period("sub_api")
    # Period: Jan 31 04:00 EST -> Feb 28 (28 days). Switch with 7 days left.
    at = dt.datetime(2026, 2, 21, 9, 0, tzinfo=dt.UTC)
    new_plan = create_body()["plan"] | {
        "id": "pro",
        "lines": [{"description": "Pro", "unit_amount": {"amount": 7000, "currency": "USD"}}],
    }
    status, out = call("POST", "/subscriptions/sub_api/change-plan", {"plan": new_plan, "at": at.isoformat()})
    assert status == 200, out
    assert [(line["description"], line["unit_amount"]["amount"]) for line in out["pending_lines"]] == [
        ("Unused time on basic", -750),
        ("Remaining time on pro", 1750),
    ]
    env.pull("renewals-due")
    cfg = renewal_settings()
    for s in range(cfg.shards):
        planner.run_shard(s, dt.datetime(2026, 2, 28, 9, 0, tzinfo=dt.UTC), cfg)
    ((_, due),) = env.pull("renewals-due")
    assert [(line["kind"], line["unit_amount"]["amount"]) for line in due["lines"]] == [
        ("plan", 7000),
        ("proration", -750),
        ("proration", 1750),
    ]
    assert call("GET", "/subscriptions/sub_api")[1]["pending_lines"] == []
    bad = new_plan | {"interval": "year"}
    assert call("POST", "/subscriptions/sub_api/change-plan", {"plan": bad, "at": at.isoformat()})[0] == 422


def test_cancel_now_and_at_period_end(env: Env) -> None:
    call("POST", "/subscriptions", create_body("sub_end"))
    _pay_first_period("sub_end")
    status, out = call("POST", "/subscriptions/sub_end/cancel", {"at_period_end": True, "at": T0.isoformat()})
    assert (status, out["status"], out["cancel_at_period_end"]) == (200, "active", True)
    env.pull("renewals-due")
    env.pull("subscription-events")
    end = dt.datetime(2026, 2, 28, 9, 0, tzinfo=dt.UTC)
    cfg = renewal_settings()
    for s in range(cfg.shards):
        planner.run_shard(s, end, cfg)
    assert env.pull("renewals-due") == []  # no renewal: it ended instead
    ((_, ev),) = env.pull("subscription-events")
    assert (ev["to_status"], ev["reason"]) == ("canceled", "canceled_at_period_end")

    call("POST", "/subscriptions", create_body("sub_now"))
    status, out = call("POST", "/subscriptions/sub_now/cancel", {"at": T0.isoformat()})
    assert (status, out["status"], out["due_at"]) == (200, "canceled", None)
    assert call("POST", "/subscriptions/sub_now/cancel", {})[1]["status"] == "canceled"  # idempotent
    assert call("POST", "/subscriptions/sub_now/change-plan", {"plan": create_body()["plan"]})[0] == 409
