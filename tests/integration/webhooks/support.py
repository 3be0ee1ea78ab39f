"""Shared setup of the webhook integration tests: secrets, a service on the test project, Pub/Sub drain."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import pytest
from cryptography import x509
from flask import Flask, Response, request

from shared import clients
from shared.events import Received, parse_message
from shared.events.payments import PaymentEvent
from shared.psp.paypal import CertificateCache, PayPalAdapter
from shared.psp.registry import ADAPTERS
from shared.psp.signing import PayPalPki, paypal_test_pki
from shared.webhooks.http import handle_request
from shared.webhooks.service import WebhookService
from shared.webhooks.store import COLLECTION, DeferredFinishes
from tests.conftest import Gcp
from tests.helpers import drain_messages

ENV = {
    "STRIPE_WEBHOOK_SECRETS": "whsec_it_old_not_a_secret,whsec_it_not_a_secret",
    "STRIPE_WEBHOOK_SECRETS__EU": "whsec_it_eu_not_a_secret",
    "ADYEN_HMAC_KEYS": "44782DEF547AAA06C910C43932B1EB0C71FC68D9D0C057550C48EC2ACF6BA056",
    "ADYEN_BASIC_AUTH": "adyen-it:not-a-password",
    "PAYPAL_WEBHOOK_ID": "WH-IT-NOT-A-SECRET",
    "GOCARDLESS_WEBHOOK_SECRETS": "gc_it_not_a_secret",
    "BRAINTREE_MERCHANT_ID": "merchant_it",
    "BRAINTREE_PUBLIC_KEY": "pub_it",
    "BRAINTREE_PRIVATE_KEY": "priv_it_not_a_secret",
    "CHECKOUT_WEBHOOK_SECRETS": "cko_it_not_a_secret",
    "CHECKOUT_AUTHORIZATION": "cko_auth_it",
}
STRIPE_SECRET = "whsec_it_not_a_secret"
PKI: PayPalPki = paypal_test_pki()


def paypal_adapter() -> PayPalAdapter:
    root = x509.load_pem_x509_certificate(PKI.root_pem)
    return PayPalAdapter(CertificateCache(fetcher=lambda url: PKI.chain_pem, roots=lambda: [root]))


@dataclass
class Harness:
    gcp: Gcp
    subscription: str
    service: WebhookService
    app: Flask = field(init=False)

    def __post_init__(self) -> None:
        app = Flask("webhooks-it")

        @app.route("/", defaults={"path": ""}, methods=["GET", "POST", "PUT", "DELETE", "PATCH"])
        @app.route("/<path:path>", methods=["GET", "POST", "PUT", "DELETE", "PATCH"])
        def entry(path: str) -> Response:
            return handle_request(request, self.service)

        self.app = app

    def post(
        self, path: str, body: bytes, headers: dict[str, str] | None = None, content_type: str = "application/json"
    ) -> Any:
        """One delivery, then the wait for its final-state write that the deployed function makes after
        answering (a PSP's next delivery comes later than that write under normal conditions; the tests of
        a write that never lands use a service without one)."""
        answer = self.app.test_client().post(path, data=body, headers={"Content-Type": content_type, **(headers or {})})
        if self.service.finishes is not None:
            assert self.service.finishes.flush(timeout_s=60), "final-state writes did not finish"
        return answer

    def drain(self) -> list[Received[PaymentEvent]]:
        """Every message on the pull subscription so far (acknowledged)."""
        out: list[Received[PaymentEvent]] = []
        for m in drain_messages(self.subscription, wait=False):
            out.append(parse_message(m.data, dict(m.attributes), m.message_id))  # type: ignore[arg-type]
        return out

    def records(self) -> list[dict[str, Any]]:
        return [d.to_dict() or {} for d in clients.firestore().collection(COLLECTION).stream()]


def harness(
    gcp: Gcp,
    monkeypatch: pytest.MonkeyPatch,
    *,
    publisher: Callable[[PaymentEvent], str] | None = None,
    db: Callable[[], Any] | None = None,
) -> Harness:
    for k in ("PSP_MODE", "PAYPAL_CERT_DIR"):
        monkeypatch.delenv(k, raising=False)
    for k, v in ENV.items():
        monkeypatch.setenv(k, v)
    gcp.topic("payment-events")
    sub = gcp.pull_subscription("payment-events")
    svc = WebhookService(
        adapters={**ADAPTERS, "paypal": paypal_adapter()},
        db=db or clients.firestore,
        publisher=publisher,
        finishes=DeferredFinishes(clients.firestore),  # as deployed: final states after the answer
    )
    return Harness(gcp, sub, svc)
