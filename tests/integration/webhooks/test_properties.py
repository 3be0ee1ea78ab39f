"""Property: whatever arrives (paths, methods, headers, bodies, even correctly signed junk), the answer
is never a 5xx and nothing is stored or published. Counted on the real emulators."""

from __future__ import annotations

import json
from urllib.parse import quote

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from shared.psp import signing
from tests.conftest import Gcp
from tests.integration.webhooks.support import ENV, STRIPE_SECRET, Harness, harness

PSPS = ["stripe", "adyen", "paypal", "gocardless", "braintree", "checkout"]
paths = st.one_of(
    st.sampled_from([f"/{p}" for p in PSPS] + [f"/{p}/eu" for p in PSPS]),
    # Any text, percent-encoded as an HTTP request target carries it ("//x" would be a network path
    # reference that the test client reads as a host name, which no PSP can send).
    st.text(st.characters(blacklist_categories=["Cs"], blacklist_characters="?#"), max_size=30).map(
        lambda s: "/" + quote(s.lstrip("/"), safe="/")
    ),
)
header_names = st.sampled_from(
    [
        "Stripe-Signature",
        "Authorization",
        "Webhook-Signature",
        "Cko-Signature",
        "PAYPAL-TRANSMISSION-SIG",
        "PAYPAL-CERT-URL",
        "PAYPAL-AUTH-ALGO",
        "PAYPAL-TRANSMISSION-ID",
        "PAYPAL-TRANSMISSION-TIME",
        "X-Anything",
    ]
)
header_values = st.text(st.characters(min_codepoint=32, max_codepoint=126), max_size=80)
content_types = st.sampled_from(
    ["application/json", "application/x-www-form-urlencoded", "text/plain", "", "application/json; charset=utf-8"]
)
json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=10), inner, max_size=4),
    max_leaves=12,
)


@pytest.fixture
def h(gcp: Gcp, monkeypatch: pytest.MonkeyPatch) -> Harness:
    return harness(gcp, monkeypatch)


@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    path=paths,
    method=st.sampled_from(["POST", "POST", "POST", "GET", "PUT"]),
    headers=st.dictionaries(header_names, header_values, max_size=5),
    content_type=content_types,
    body=st.binary(max_size=2048),
)
def test_random_requests_never_5xx_and_store_nothing(
    h: Harness, path: str, method: str, headers: dict[str, str], content_type: str, body: bytes
) -> None:
    r = h.app.test_client().open(path, method=method, data=body, headers={"Content-Type": content_type, **headers})
    assert r.status_code < 500, (r.status_code, r.get_data(as_text=True))
    assert h.records() == []


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(payload=json_values, psp=st.sampled_from(["stripe", "gocardless", "checkout", "adyen"]))
def test_correctly_signed_junk_is_4xx_and_stores_nothing(h: Harness, payload: object, psp: str) -> None:
    body = json.dumps(payload).encode()
    headers = {
        "stripe": {"Stripe-Signature": signing.stripe_header(body, STRIPE_SECRET)},
        "gocardless": {"Webhook-Signature": signing.hex_hmac(body, ENV["GOCARDLESS_WEBHOOK_SECRETS"])},
        "checkout": {
            "Cko-Signature": signing.hex_hmac(body, ENV["CHECKOUT_WEBHOOK_SECRETS"]),
            "Authorization": ENV["CHECKOUT_AUTHORIZATION"],
        },
        "adyen": {"Authorization": signing.basic_auth(ENV["ADYEN_BASIC_AUTH"])},
    }[psp]
    r = h.post(f"/{psp}", body, headers)
    # A GoCardless batch with an empty events list is authentic and simply has nothing to store.
    assert r.status_code < 500
    if r.status_code < 300:
        assert psp == "gocardless"
        assert isinstance(payload, dict)
        assert payload.get("events") == []
    assert h.records() == []


def test_fixed_junk_leaves_firestore_and_pubsub_empty(h: Harness) -> None:
    """Hand-picked near misses, then count both what Firestore holds and what reached the topic."""
    client = h.app.test_client()
    for path in ["/stripe", "/adyen", "/paypal", "/gocardless", "/braintree", "/checkout", "/nope", "/stripe/x/y"]:
        for body in [b"", b"{}", b'{"id":"evt_1","type":"payment_intent.succeeded","livemode":false}', b"\x00\xff"]:
            for ct in ["application/json", "application/x-www-form-urlencoded"]:
                assert client.post(path, data=body, headers={"Content-Type": ct}).status_code < 500
    assert h.records() == []
    assert h.drain() == []
