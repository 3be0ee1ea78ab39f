"""Hostile but correctly signed deliveries, for every PSP: deep nesting, absurd amounts, dates at the ends
of the calendar, huge strings, ids Firestore refuses. Never a 5xx; a refusal stores and publishes nothing;
an out-of-bounds canonical event is archived as ``rejected`` and never published. On the real emulators."""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from shared.edge import MAX_JSON_DEPTH, firestore_id_problem, storable
from shared.psp import signing
from tests.conftest import Gcp
from tests.fixtures.psp import compact, load, raw
from tests.integration.webhooks.support import ENV, PKI, STRIPE_SECRET, Harness, harness

PSPS = ["stripe", "adyen", "paypal", "gocardless", "braintree", "checkout"]
HYPO = settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
PLACEHOLDER = "__HOSTILE__"


@pytest.fixture
def h(gcp: Gcp, monkeypatch: pytest.MonkeyPatch) -> Harness:
    return harness(gcp, monkeypatch)


def _json_body(payload: dict[str, Any], raw_value: bytes | None) -> bytes:
    body = compact(payload)
    return body if raw_value is None else body.replace(json.dumps(PLACEHOLDER).encode(), raw_value)


def deliver(h: Harness, psp: str, mutate: Callable[[Any], None], raw_value: bytes | None = None) -> Any:
    """Post the PSP's fixture, changed by ``mutate`` (and ``PLACEHOLDER`` replaced by raw JSON), signed."""
    if psp == "stripe":
        p = load("stripe_payment_intent_succeeded.json")
        mutate(p)
        body = _json_body(p, raw_value)
        return h.post("/stripe", body, {"Stripe-Signature": signing.stripe_header(body, STRIPE_SECRET)})
    if psp == "adyen":
        p = load("adyen_authorisation.json")
        mutate(p["notificationItems"][0]["NotificationRequestItem"])
        p = signing.adyen_sign(p, ENV["ADYEN_HMAC_KEYS"])
        return h.post(
            "/adyen", _json_body(p, raw_value), {"Authorization": signing.basic_auth(ENV["ADYEN_BASIC_AUTH"])}
        )
    if psp == "paypal":
        p = json.loads(raw("paypal_capture_completed.json"))
        mutate(p)
        body = _json_body(p, raw_value)
        return h.post("/paypal", body, PKI.headers(body, ENV["PAYPAL_WEBHOOK_ID"]))
    if psp == "gocardless":
        p = load("gocardless_batch.json")
        p["events"] = p["events"][:1]  # one notification: the others of the batch are not under test
        mutate(p["events"][0])
        body = _json_body(p, raw_value)
        return h.post(
            "/gocardless", body, {"Webhook-Signature": signing.hex_hmac(body, ENV["GOCARDLESS_WEBHOOK_SECRETS"])}
        )
    if psp == "checkout":
        p = load("checkout_payment_captured.json")
        mutate(p)
        body = _json_body(p, raw_value)
        headers = {
            "Cko-Signature": signing.hex_hmac(body, ENV["CHECKOUT_WEBHOOK_SECRETS"]),
            "Authorization": ENV["CHECKOUT_AUTHORIZATION"],
        }
        return h.post("/checkout", body, headers)
    xml = {"xml": raw("braintree_transaction_settled.xml").decode()}
    mutate(xml)
    form = signing.braintree_form(xml["xml"], ENV["BRAINTREE_PUBLIC_KEY"], ENV["BRAINTREE_PRIVATE_KEY"])
    return h.post("/braintree", form, content_type="application/x-www-form-urlencoded")


def xml_set(tag: str, value: str) -> Callable[[Any], None]:
    def mutate(d: Any) -> None:
        d["xml"] = re.sub(
            f"<{tag}( [^>]*)?>[^<]*</{tag}>", lambda m: f"<{tag}{m[1] or ''}>{value}</{tag}>", d["xml"], count=1
        )

    return mutate


def assert_nothing_unstorable_left(h: Harness, r: Any) -> None:
    """The rule: no 5xx, and every message published is one consumers can store (usually: none)."""
    assert r.status_code < 500, (r.status_code, r.get_data(as_text=True)[:300])
    for msg in h.drain():
        assert storable(msg.event) is None
        assert all(v is None or firestore_id_problem(v) is None for v in msg.event.refs.model_dump().values())


def assert_refused_or_rejected(h: Harness, r: Any) -> None:
    """A 4xx stores nothing new; a 2xx only archives as ``rejected``; nothing is ever published."""
    assert r.status_code < 500, (r.status_code, r.get_data(as_text=True)[:300])
    assert h.drain() == []
    assert {rec["state"] for rec in h.records()} <= {"rejected"}
    if r.status_code >= 300:
        assert r.status_code in (400, 413)


# -- deep nesting: refused with 400 before any parser, even when authentic --------------------------


@HYPO
@given(psp=st.sampled_from(PSPS), depth=st.integers(MAX_JSON_DEPTH + 1, 200_000), as_list=st.booleans())
def test_deep_nesting_is_400_before_parsing_and_stores_nothing(h: Harness, psp: str, depth: int, as_list: bool) -> None:
    depth = min(depth, 100_000)
    deep = (b"[" * depth + b"1" + b"]" * depth) if as_list else (b'{"a":' * depth + b"1" + b"}" * depth)

    def put(d: Any) -> None:
        if psp == "braintree":
            d["xml"] = d["xml"].replace("<status>", "<x>" * depth + "</x>" * depth + "<status>")
        else:
            d["metadata" if psp != "gocardless" else "details"] = PLACEHOLDER

    r = deliver(h, psp, put, deep)
    if psp == "braintree":  # a form body: the nested XML is parsed without recursion, the event is fine
        assert_nothing_unstorable_left(h, r)
        return
    assert (r.status_code, r.get_json()["error"]) == (400, "json_too_deep")
    assert [rec for rec in h.records() if rec["psp"] == psp] == []
    assert h.drain() == []


# -- amounts: out of bounds for the currency -> never published --------------------------------------

huge_or_negative = st.one_of(
    st.integers(min_value=10**14, max_value=10**60),  # over 12 digits of EUR/GBP/USD major units
    st.integers(max_value=-1, min_value=-(10**60)),
    st.sampled_from([2**63, 2**64, 10**30, -(2**63) - 1]),
)
non_integer = st.one_of(st.floats(allow_nan=True, allow_infinity=True), st.sampled_from([1e309, -1e309, 0.5]))
decimal_strings = st.one_of(
    st.sampled_from(["1e309", "-1e309", "1E+999999999", "-0.01", "1" + "0" * 30, "10000000000000", "9" * 60]),
    huge_or_negative.map(str),
)


@HYPO
@given(psp=st.sampled_from(["stripe", "adyen", "checkout"]), amount=st.one_of(huge_or_negative, non_integer))
def test_minor_unit_amounts_out_of_bounds_are_never_published(h: Harness, psp: str, amount: Any) -> None:
    def put(d: Any) -> None:
        if psp == "stripe":
            d["data"]["object"]["amount_received"] = amount
        elif psp == "adyen":
            d["amount"]["value"] = amount
        else:
            d["data"]["amount"] = amount

    r = deliver(h, psp, put)
    assert_refused_or_rejected(h, r)
    if isinstance(amount, int):  # representable: archived as rejected, acknowledged so the PSP stops retrying
        assert r.status_code == 200
        assert any(rec.get("reject_reason") for rec in h.records())


@HYPO
@given(psp=st.sampled_from(["paypal", "braintree"]), amount=decimal_strings)
def test_decimal_amounts_out_of_bounds_are_never_published(h: Harness, psp: str, amount: str) -> None:
    def put(d: Any) -> None:
        if psp == "paypal":
            d["resource"]["amount"]["value"] = amount

    mutate = xml_set("amount", amount) if psp == "braintree" else put
    r = deliver(h, psp, mutate)
    assert_refused_or_rejected(h, r)
    assert r.status_code == 200  # authentic: archived as rejected, the PSP stops retrying
    assert all(rec["state"] == "rejected" and rec["reject_reason"] for rec in h.records())


# -- dates at the ends of the calendar -----------------------------------------------------------------

iso_extremes = st.sampled_from(
    [
        "9999-12-31T23:59:59Z",
        "9999-12-31T23:59:59-12:00",
        "0001-01-01T00:00:00+01:00",
        "0001-01-01T00:00:00Z",
        "1969-12-31T23:59:59Z",
        "2100-01-01T00:00:00Z",
    ]
)


epochs_out_of_range = st.one_of(st.integers(max_value=946_684_799), st.integers(min_value=4_102_444_800))


@HYPO
@given(psp=st.sampled_from(PSPS), when=iso_extremes, epoch=epochs_out_of_range)
def test_dates_out_of_range_are_never_published(h: Harness, psp: str, when: str, epoch: int) -> None:
    def put(d: Any) -> None:
        if psp == "stripe":
            d["created"] = epoch if epoch % 2 else -62135596800
        elif psp == "adyen":
            d["eventDate"] = when
        elif psp == "paypal":
            d["create_time"] = when
        elif psp == "gocardless":
            d["created_at"] = when
        elif psp == "checkout":
            d["created_on"] = when

    r = deliver(h, psp, xml_set("timestamp", when) if psp == "braintree" else put)
    assert_refused_or_rejected(h, r)


# -- huge strings and ids consumers cannot use -----------------------------------------------------

hostile_ids = st.one_of(
    st.sampled_from([".", "..", "__x__", "__name__", "a/b", "/", "x" * 1501, "ü" * 800]),
    st.text(min_size=1, max_size=40),
    st.integers(1025, 300_000).map(lambda n: "i" * n),
)


@HYPO
@given(psp=st.sampled_from(["stripe", "paypal", "checkout", "adyen", "gocardless"]), value=hostile_ids)
def test_hostile_ids_and_huge_strings_never_reach_consumers(h: Harness, psp: str, value: str) -> None:
    def put(d: Any) -> None:
        if psp == "stripe":
            d["data"]["object"]["metadata"]["invoice_id"] = value
            d["data"]["object"]["id"] = value
        elif psp == "paypal":
            d["resource"]["invoice_id"] = value
            d["resource"]["custom_id"] = value
        elif psp == "checkout":
            d["data"]["metadata"]["invoice_id"] = value
            d["data"]["id"] = value
        elif psp == "adyen":
            d["merchantReference"] = value
            d["additionalData"]["metadata.invoice_id"] = value
        else:
            d["links"]["payment"] = value

    r = deliver(h, psp, put)
    assert_nothing_unstorable_left(h, r)


@HYPO
@given(psp=st.sampled_from(["stripe", "checkout", "paypal"]), size=st.integers(1025, 400_000))
def test_huge_event_ids_are_refused_and_nothing_is_stored(h: Harness, psp: str, size: int) -> None:
    r = deliver(h, psp, lambda d: d.__setitem__("id", "e" * size))
    assert r.status_code in (400, 413), r.get_data(as_text=True)[:300]
    assert h.records() == []
    assert h.drain() == []


def test_a_rejected_redelivery_is_acknowledged_as_a_duplicate(h: Harness) -> None:
    """A ``rejected`` record is final: the PSP's retry gets 200 at once, nothing is published."""

    def put(d: Any) -> None:
        d["data"]["object"]["amount_received"] = 10**30

    first = deliver(h, "stripe", put)
    assert (first.status_code, first.get_json()["rejected"]) == (200, 1)
    again = deliver(h, "stripe", put)
    assert (again.status_code, again.get_json()["duplicate"]) == (200, 1)
    [rec] = h.records()
    assert rec["state"] == "rejected"
    assert "out of bounds" in rec["reject_reason"] or "outside" in rec["reject_reason"]
    assert h.drain() == []


def test_outage_answers_503_with_a_generic_body(gcp: Gcp, monkeypatch: pytest.MonkeyPatch) -> None:
    from google.api_core.exceptions import ServiceUnavailable

    def down() -> Any:
        raise ServiceUnavailable(f"firestore at projects/{gcp.project}/databases/(default) is down")  # type: ignore[no-untyped-call]

    h = harness(gcp, monkeypatch, db=down)
    r = deliver(h, "stripe", lambda d: None)
    assert (r.status_code, r.headers["Retry-After"]) == (503, "30")
    text = r.get_data(as_text=True)
    assert r.get_json()["error"] == "temporarily_unavailable"
    assert gcp.project not in text
    assert "firestore" not in text.lower()
    assert "ServiceUnavailable" not in text
