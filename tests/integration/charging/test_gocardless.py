"""GoCardless through gocardless-pro against a local stub: the exact payment request, its key, its answers."""

from __future__ import annotations

import json
from typing import Any

import pytest
from pytest_httpserver import HTTPServer

from shared.charging import ChargeRejected, ChargeUnavailable, charger_for
from shared.charging import gocardless as gc
from shared.charging.gocardless import GoCardlessCharger
from tests.integration.charging.conftest import req

TOKEN = "sandbox_demo_token_not_a_secret"
MANDATE = "MD000123"


@pytest.fixture
def gc_env(httpserver: HTTPServer, monkeypatch: pytest.MonkeyPatch) -> HTTPServer:
    monkeypatch.setenv("GOCARDLESS_ACCESS_TOKEN", TOKEN)
    monkeypatch.setenv("GOCARDLESS_API_URL", httpserver.url_for("").rstrip("/"))
    return httpserver


def payment(status: str, pid: str = "PM00AB12") -> dict[str, Any]:
    return {
        "payments": {
            "id": pid,
            "created_at": "2026-01-01T00:00:00.000Z",
            "charge_date": "2026-01-06",
            "amount": 1099,
            "currency": "EUR",
            "status": status,
            "metadata": {"invoice_id": "inv_42", "attempt_id": "inv_42:1", "subscription_id": "sub_7"},
            "links": {"mandate": MANDATE, "creditor": "CR123"},
        }
    }


def gc_error(status: int, type_: str, reason: str, **links: str) -> dict[str, Any]:
    err = {"reason": reason, "message": reason.replace("_", " ")} | ({"links": links} if links else {})
    return {"error": {"type": type_, "code": status, "message": reason, "errors": [err], "request_id": "RQ1"}}


def test_payment_against_the_mandate_is_exact_and_pending(gc_env: HTTPServer) -> None:
    gc_env.expect_request("/payments", method="POST").respond_with_json(payment("pending_submission"), status=201)
    result = GoCardlessCharger().charge(req("gocardless", MANDATE))
    assert (result.status, result.psp_payment_id, result.livemode) == ("pending", "PM00AB12", False)
    assert result.created_at.isoformat() == "2026-01-01T00:00:00+00:00"
    ((sent, _),) = gc_env.log
    assert sent.headers["Idempotency-Key"] == "renewal-inv_42-1"
    assert sent.headers["Authorization"] == f"Bearer {TOKEN}"
    assert sent.headers["GoCardless-Version"] == "2015-07-06"
    assert json.loads(sent.get_data()) == {
        "payments": {
            "amount": 1099,
            "currency": "EUR",
            "links": {"mandate": MANDATE},
            "metadata": {"invoice_id": "inv_42", "attempt_id": "inv_42:1", "subscription_id": "sub_7"},
            "description": "Pro plan",
        }
    }


@pytest.mark.parametrize("subscription_id", ["sub_7", None])
def test_metadata_fits_gocardless_limits(subscription_id: str | None) -> None:
    r = req("gocardless", MANDATE, subscription_id=subscription_id)
    md = gc.metadata(r)
    assert len(md) <= 3
    assert all(len(k) <= 50 and len(v) <= 500 for k, v in md.items())
    assert md["invoice_id"] == "inv_42"
    assert md["attempt_id"] == "inv_42:1"
    assert md.get("subscription_id", md.get("customer_id")) == (subscription_id or "c-1")


def test_idempotent_creation_conflict_resolves_to_the_existing_payment(gc_env: HTTPServer) -> None:
    conflict = gc_error(409, "invalid_state", "idempotent_creation_conflict", conflicting_resource_id="PM00FIRST")
    gc_env.expect_ordered_request("/payments", method="POST").respond_with_json(conflict, status=409)
    gc_env.expect_ordered_request("/payments/PM00FIRST", method="GET").respond_with_json(
        payment("confirmed", pid="PM00FIRST")
    )
    result = GoCardlessCharger().charge(req("gocardless", MANDATE))
    assert (result.status, result.psp_payment_id) == ("succeeded", "PM00FIRST")
    assert [(r.method, r.path) for r, _ in gc_env.log] == [("POST", "/payments"), ("GET", "/payments/PM00FIRST")]
    gc_env.check_assertions()


@pytest.mark.parametrize(
    ("status", "result", "retryable"),
    [
        ("pending_customer_approval", "pending", True),
        ("submitted", "pending", True),
        ("paid_out", "succeeded", True),
        ("failed", "failed", True),  # soft: a later attempt may be collected (the cause came by webhook)
        ("cancelled", "failed", False),  # hard: this payment can never be collected
    ],
)
def test_adopted_payment_status(gc_env: HTTPServer, status: str, result: str, retryable: bool) -> None:
    conflict = gc_error(409, "invalid_state", "idempotent_creation_conflict", conflicting_resource_id="PM00FIRST")
    gc_env.expect_request("/payments", method="POST").respond_with_json(conflict, status=409)
    gc_env.expect_request("/payments/PM00FIRST", method="GET").respond_with_json(payment(status, pid="PM00FIRST"))
    r = GoCardlessCharger().charge(req("gocardless", MANDATE))
    assert (r.status, r.retryable) == (result, retryable)
    if result == "failed":
        assert r.decline_code == status


def test_server_error_is_unavailable_and_the_retry_sends_the_same_key(gc_env: HTTPServer) -> None:
    boom = {"error": {"type": "gocardless", "code": 500, "message": "Internal error", "errors": []}}
    gc_env.expect_ordered_request("/payments", method="POST").respond_with_json(boom, status=500)
    gc_env.expect_ordered_request("/payments", method="POST").respond_with_json(payment("pending_submission"), 201)
    c = GoCardlessCharger()
    with pytest.raises(ChargeUnavailable):
        c.charge(req("gocardless", MANDATE))
    assert c.charge(req("gocardless", MANDATE)).status == "pending"
    bodies = [r.get_data() for r, _ in gc_env.log]
    assert [r.headers["Idempotency-Key"] for r, _ in gc_env.log] == ["renewal-inv_42-1", "renewal-inv_42-1"]
    assert bodies[0] == bodies[1]


def test_next_attempt_gets_a_new_key(gc_env: HTTPServer) -> None:
    gc_env.expect_request("/payments", method="POST").respond_with_json(payment("pending_submission"), status=201)
    c = GoCardlessCharger()
    c.charge(req("gocardless", MANDATE, attempt=2))
    c.charge(req("gocardless", MANDATE, attempt=3))
    assert [r.headers["Idempotency-Key"] for r, _ in gc_env.log] == ["renewal-inv_42-2", "renewal-inv_42-3"]


def test_rate_limit_is_unavailable(gc_env: HTTPServer) -> None:
    limited = {"error": {"type": "invalid_api_usage", "code": 429, "message": "Rate limit exceeded", "errors": []}}
    gc_env.expect_request("/payments").respond_with_json(limited, status=429)
    with pytest.raises(ChargeUnavailable):
        GoCardlessCharger().charge(req("gocardless", MANDATE))


def test_timeout_is_unavailable(silent_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GOCARDLESS_ACCESS_TOKEN", TOKEN)
    monkeypatch.setenv("GOCARDLESS_API_URL", silent_url)
    monkeypatch.setattr(gc, "TIMEOUT_S", 0.2)
    with pytest.raises(ChargeUnavailable, match="gocardless unavailable"):
        GoCardlessCharger().charge(req("gocardless", MANDATE))


@pytest.mark.parametrize(
    ("status", "body"),
    [
        (401, {"error": {"type": "invalid_api_usage", "code": 401, "message": "Unauthorized", "errors": []}}),
        (422, gc_error(422, "invalid_state", "mandate_is_inactive")),
        (422, gc_error(422, "validation_failed", "invalid_amount")),
    ],
)
def test_refused_requests_are_rejected(gc_env: HTTPServer, status: int, body: dict[str, Any]) -> None:
    gc_env.expect_request("/payments").respond_with_json(body, status=status)
    with pytest.raises(ChargeRejected):
        GoCardlessCharger().charge(req("gocardless", MANDATE))


def test_missing_token_is_rejected(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("GOCARDLESS_ACCESS_TOKEN", raising=False)
    with pytest.raises(ChargeRejected):
        charger_for("gocardless")
    monkeypatch.setenv("GOCARDLESS_ACCESS_TOKEN__EU", TOKEN)
    assert isinstance(charger_for("gocardless", "eu"), GoCardlessCharger)
