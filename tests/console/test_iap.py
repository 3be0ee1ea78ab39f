"""Identity-Aware Proxy's signed assertion: the user is whoever the verified token names, never the plain
header; anything unverifiable is a 401 page and changes nothing. The keys are an EC P-256 pair made here,
served by a local stub the way https://www.gstatic.com/iap/verify/public_key serves IAP's."""

from __future__ import annotations

import dataclasses
import time
import uuid
from collections.abc import Callable
from typing import Any

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from google.auth import jwt
from google.auth.crypt import es256
from pytest_httpserver import HTTPServer

from shared import clients
from shared.console import auth
from tests.console.forms import audit_entries, confirm_form, post
from tests.fixtures.console_world import SETTINGS, World

AUDIENCE = "/projects/123456789/global/backendServices/987654321"
Mint = Callable[..., str]


def _pem_private(key: ec.EllipticCurvePrivateKey) -> bytes:
    pkcs8, none = serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    return key.private_bytes(serialization.Encoding.PEM, pkcs8, none)


@dataclasses.dataclass
class Iap:
    settings: Any
    mint: Mint
    keys_path: str


@pytest.fixture
def iap(httpserver: HTTPServer) -> Iap:
    key, kid = ec.generate_private_key(ec.SECP256R1()), f"k-{uuid.uuid4().hex[:8]}"
    public = key.public_key().public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    path = f"/iap/{uuid.uuid4().hex}"  # a fresh key set URL: the per-process cache never mixes tests
    httpserver.expect_request(path, method="GET").respond_with_json({kid: public.decode()})

    def mint(
        email: str = "alice@example.com",
        *,
        audience: str = AUDIENCE,
        issued: float | None = None,
        signer_key: ec.EllipticCurvePrivateKey | None = None,
        issuer: str = auth.IAP_ISSUER,
    ) -> str:
        now = int(time.time() if issued is None else issued)
        claims: dict[str, Any] = {"iss": issuer, "aud": audience, "sub": "accounts.google.com:1", "email": email}
        claims |= {"iat": now, "exp": now + 600}
        signer = es256.ES256Signer.from_string(_pem_private(signer_key or key), key_id=kid)
        token: bytes = jwt.encode(signer, claims)  # type: ignore[no-untyped-call]
        return token.decode()

    settings = dataclasses.replace(SETTINGS, iap_audience=AUDIENCE, iap_certs_url=httpserver.url_for(path))
    return Iap(settings, mint, path)


def _headers(assertion: str | None, claimed: str = "mallory@example.com") -> dict[str, str]:
    """What reaches the function: the unsigned email header (here a lie) and, maybe, the assertion."""
    headers = {auth.IAP_EMAIL_HEADER: f"accounts.google.com:{claimed}"}
    if assertion is not None:
        headers[auth.IAP_ASSERTION_HEADER] = assertion
    return headers


def test_a_valid_assertion_is_the_user_recorded_in_the_audit_entry(
    world: World, iap: Iap, httpserver: HTTPServer
) -> None:
    client = world.app(iap.settings).test_client()
    headers = _headers(iap.mint("alice@example.com"))
    page = client.get("/", headers=headers)
    assert page.status_code == 200
    assert b"alice@example.com" in page.data
    assert b"mallory@example.com" not in page.data
    fields = confirm_form(client, "invoice.void", headers, invoice_id=world.invoices[0])
    r = post(client, "invoice.void", {**fields, "reason": "issued in error", "confirm": "yes"}, headers=headers)
    assert r.status_code == 200, r.data[:600]
    (entry,) = audit_entries(clients.firestore())
    assert entry["by"] == "alice@example.com"
    # the key set was fetched once for the three requests
    assert sum(1 for req, _ in httpserver.log if req.path == iap.keys_path) == 1


@pytest.mark.parametrize(
    "case",
    ["wrong audience", "expired", "bad signature", "wrong issuer", "no assertion", "garbage", "app audience"],
)
def test_an_unverifiable_assertion_is_a_401_page_and_nothing_is_done(world: World, iap: Iap, case: str) -> None:
    other = ec.generate_private_key(ec.SECP256R1())
    assertion: str | None = {
        "wrong audience": lambda: iap.mint(audience="/projects/123456789/global/backendServices/1"),
        "expired": lambda: iap.mint(issued=time.time() - 3600),
        "bad signature": lambda: iap.mint(signer_key=other),
        "wrong issuer": lambda: iap.mint(issuer="https://accounts.google.com"),
        "no assertion": lambda: None,
        "garbage": lambda: "eyJhbGciOiJub25lIn0.e30.",
        "app audience": lambda: iap.mint(audience="/projects/123456789/apps/some-project"),
    }[case]()  # type: ignore[no-untyped-call]
    headers = _headers(assertion, claimed="alice@example.com")
    client = world.app(iap.settings).test_client()
    page = client.get(f"/customers/{world.customer}", headers=headers)
    assert page.status_code == 401
    assert b"unauthenticated" in page.data
    assert world.customer.encode() not in page.data
    fields = {
        "invoice_id": world.invoices[0],
        "idempotency_key": "k" * 32,
        "csrf_token": auth.csrf_token(SETTINGS.csrf_secret, "alice@example.com"),
        "reason": "issued in error",
        "confirm": "yes",
    }
    assert post(client, "invoice.void", fields, headers=headers).status_code == 401
    doc = clients.firestore().collection("invoices").document(world.invoices[0]).get().to_dict() or {}
    assert doc["status"] == "open"
    assert audit_entries(clients.firestore()) == []
