"""Status codes of the pipeline's cheap checks, before any storage is reachable."""

from __future__ import annotations

from typing import Any

import pytest

from shared.psp.registry import ADAPTERS
from shared.psp.signing import stripe_header
from shared.webhooks.service import WebhookService
from tests.fixtures.psp import compact, load

SECRET = "whsec_unit_not_a_secret"


def no_db() -> Any:
    raise AssertionError("nothing may be stored for a rejected delivery")


SVC = WebhookService(adapters=ADAPTERS, db=no_db)


@pytest.fixture(autouse=True)
def _env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("PSP_MODE", "GOCARDLESS_WEBHOOK_SECRETS"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("STRIPE_WEBHOOK_SECRETS", SECRET)
    monkeypatch.setenv("STRIPE_WEBHOOK_SECRETS__EU", SECRET)
    monkeypatch.setenv("GOCARDLESS_WEBHOOK_SECRETS", "gc")
    monkeypatch.setenv("ADYEN_HMAC_KEYS", "00ff")
    monkeypatch.setenv("ADYEN_BASIC_AUTH", "u:p")


def call(
    path: str = "/stripe",
    *,
    method: str = "POST",
    body: bytes = b"{}",
    mimetype: str = "application/json",
    headers: dict[str, str] | None = None,
    length: int | None = None,
):
    return SVC.handle(
        method=method,
        path=path,
        headers=headers or {},
        mimetype=mimetype,
        content_length=len(body) if length is None else length,
        read_body=lambda n: body[:n],
    )


@pytest.mark.parametrize(
    "path", ["/", "", "/unknown", "/stripe/eu/extra", "/Stripe", "/stripe/us", "/stripe/..", "/stripe/a b"]
)
def test_unknown_psp_or_account_is_404(path: str) -> None:
    assert call(path).status == 404


def test_known_account_route_passes_routing() -> None:
    assert call("/stripe/EU").status == 401  # account names are case-insensitive; then the signature fails


@pytest.mark.parametrize("method", ["GET", "PUT", "DELETE", "PATCH"])
def test_wrong_method_is_405(method: str) -> None:
    assert call(method=method).status == 405


def test_body_over_one_mib_is_413_by_header_or_by_stream() -> None:
    big = b"x" * (1024 * 1024 + 1)
    assert call(body=big).status == 413
    assert call(body=big, length=None).status == 413
    chunked = SVC.handle(
        method="POST",
        path="/stripe",
        headers={},
        mimetype="application/json",
        content_length=None,
        read_body=lambda n: big[:n],
    )
    assert chunked.status == 413


def test_wrong_content_type_is_415() -> None:
    assert call(mimetype="text/plain").status == 415
    assert call("/braintree", mimetype="application/json").status in (404, 415)


def test_bad_signature_is_401_but_498_for_gocardless() -> None:
    assert call(headers={"Stripe-Signature": "t=1,v1=00"}).status == 401
    assert call("/gocardless", headers={"Webhook-Signature": "00"}).status == 498


def test_adyen_rejection_is_401() -> None:
    assert call("/adyen").status == 401


def test_signed_but_malformed_is_400() -> None:
    body = b'{"id": "evt_1", "type": "payment_intent.succeeded", "livemode": false, "data": {"object": {"id": 5}}}'
    answer = call(body=body, headers={"Stripe-Signature": stripe_header(body, SECRET)})
    assert answer.status == 400
    assert answer.log is not None


def test_mode_mismatch_is_400(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PSP_MODE", "live")
    body = compact(load("stripe_payment_intent_succeeded.json"))
    assert call(body=body, headers={"Stripe-Signature": stripe_header(body, SECRET)}).status == 400


def test_invalid_mode_setting_is_404_not_500(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PSP_MODE", "production")
    assert call().status == 404
