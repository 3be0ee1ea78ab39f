"""Fixtures of the billing API tests: a fresh emulator project and a client calling the function's handler."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import flask
import pytest

from shared.billing.api import DEFAULT_BILLING, BillingService
from shared.subscriptions.api import handle
from tests.conftest import Gcp

APP = flask.Flask(__name__)


@dataclass(frozen=True)
class Answer:
    status: int
    body: Any
    headers: dict[str, str]


@dataclass
class Client:
    service: BillingService = DEFAULT_BILLING

    def raw(self, method: str, path: str, data: bytes = b"", headers: dict[str, str] | None = None) -> Answer:
        hdrs = {"Content-Type": "application/json", **(headers or {})}
        with APP.test_request_context(path, method=method, data=data, headers=hdrs):
            resp = handle(flask.request, billing=self.service)
        return Answer(resp.status_code, resp.get_json(), dict(resp.headers))

    def __call__(self, method: str, path: str, body: Any = None, key: str | None = None) -> Answer:
        data = json.dumps(body).encode() if body is not None else b""
        return self.raw(method, path, data, {"Idempotency-Key": key} if key else None)

    def ok(self, method: str, path: str, body: Any = None, key: str | None = None) -> Any:
        a = self(method, path, body, key)
        assert a.status in (200, 201), (a.status, a.body)
        return a.body


@pytest.fixture
def api(gcp: Gcp) -> Client:
    return Client()


def customer_body(**over: Any) -> dict[str, Any]:
    body = {
        "legal_name": "Ada Lovelace GmbH",
        "country": "DE",
        "currency": "EUR",
        "address": {"line1": "Unter den Linden 1", "city": "Berlin", "postal_code": "10117"},
        "tax_ids": [{"type": "eu_vat", "value": "DE 123456789"}],
        "time_zone": "Europe/Berlin",
        "invoice_email": "billing@ada.example",
        "psp_accounts": [
            {"psp": "stripe", "customer_ref": "cus_X", "payment_methods": [{"method_ref": "pm_1", "type": "card"}]}
        ],
        "default_payment_method": {"psp": "stripe", "method_ref": "pm_1"},
    }
    return body | over
