"""The webhook pipeline on the real Firestore and Pub/Sub emulators.

Exactly-once publication across Firestore and Pub/Sub is proven by counting the messages that reach a
subscriber: after duplicates, concurrent duplicates, a failed publish and a crashed owner.
"""

from __future__ import annotations

import concurrent.futures
import datetime as dt
import json
import zlib
from typing import Any

import pytest
from google.api_core.exceptions import ServiceUnavailable

from shared import clients
from shared.domain.money import Money
from shared.events import publish
from shared.events.envelope import make_event_id
from shared.events.payments import PaymentEvent, PaymentSucceeded
from shared.psp import signing
from shared.webhooks import store
from tests.conftest import Gcp
from tests.fixtures.psp import compact, load, raw
from tests.integration.webhooks.support import ENV, PKI, STRIPE_SECRET, harness

STRIPE_BODY = compact(load("stripe_payment_intent_succeeded.json"))


def stripe_headers(body: bytes = STRIPE_BODY, secret: str = STRIPE_SECRET) -> dict[str, str]:
    return {
        "Stripe-Signature": signing.stripe_header(body, secret),
        "User-Agent": "Stripe/1.0 (+https://stripe.com/docs/webhooks)",
    }


def test_signed_stripe_webhook_is_archived_scrubbed_and_published_once(
    gcp: Gcp, monkeypatch: pytest.MonkeyPatch
) -> None:
    h = harness(gcp, monkeypatch)
    r = h.post("/stripe", STRIPE_BODY, stripe_headers())
    assert r.status_code == 200, r.get_data(as_text=True)
    assert r.get_json() == {"received": 1, "published": 1, "duplicate": 0, "ignored": 0}
    [rec] = h.records()
    assert rec["state"] == "published"
    assert (rec["psp"], rec["account"], rec["psp_event_id"]) == ("stripe", "default", "evt_3Pm0aXJ2eZvKYlo21a4Jx8Qk")
    headers = json.loads(rec["headers"])
    assert headers["User-Agent"].startswith("Stripe/")
    assert headers["Content-Type"] == "application/json"
    assert "Stripe-Signature" not in headers
    assert rec["fact_key"] == "stripe:default:pi_3Pm0aXJ2eZvKYlo21uE2hG4m:payment.succeeded"
    assert isinstance(rec["received_at"], dt.datetime)
    assert "4242 4242 4242 4242" not in rec["raw"]
    assert '"cvc":"[CVC]"' in rec["raw"]
    assert "pi_3Pm0aXJ2eZvKYlo21uE2hG4m" in rec["raw"]
    [msg] = h.drain()
    ev = msg.event
    assert isinstance(ev, PaymentSucceeded)
    assert ev.amount == Money(2000, "EUR")
    assert msg.envelope.idempotency_key == ev.fact_key()
    assert msg.envelope.event_id == make_event_id("payment.succeeded", ev.fact_key())
    assert msg.envelope.occurred_at == ev.psp_created_at
    # The same webhook again (Stripe retries with a fresh signature): acknowledged, not republished.
    again = h.post("/stripe", STRIPE_BODY, stripe_headers())
    assert again.status_code == 200
    assert again.get_json()["duplicate"] == 1
    assert h.drain() == []


def test_every_psp_is_verified_and_normalised(gcp: Gcp, monkeypatch: pytest.MonkeyPatch) -> None:
    h = harness(gcp, monkeypatch)
    adyen = compact(signing.adyen_sign(load("adyen_batch.json"), ENV["ADYEN_HMAC_KEYS"]))
    r = h.post("/adyen", adyen, {"Authorization": signing.basic_auth(ENV["ADYEN_BASIC_AUTH"])})
    assert (r.status_code, r.get_data(as_text=True)) == (200, "[accepted]")
    paypal = raw("paypal_capture_completed.json")
    assert h.post("/paypal", paypal, PKI.headers(paypal, ENV["PAYPAL_WEBHOOK_ID"])).status_code == 200
    gc = raw("gocardless_batch.json")
    gc_sig = signing.hex_hmac(gc, ENV["GOCARDLESS_WEBHOOK_SECRETS"])
    assert h.post("/gocardless", gc, {"Webhook-Signature": gc_sig}).status_code == 200
    bt = signing.braintree_form(
        raw("braintree_transaction_settled.xml").decode(), ENV["BRAINTREE_PUBLIC_KEY"], ENV["BRAINTREE_PRIVATE_KEY"]
    )
    assert h.post("/braintree", bt, content_type="application/x-www-form-urlencoded").status_code == 200
    cko = raw("checkout_payment_captured.json")
    cko_headers = {
        "Cko-Signature": signing.hex_hmac(cko, ENV["CHECKOUT_WEBHOOK_SECRETS"]),
        "Authorization": ENV["CHECKOUT_AUTHORIZATION"],
    }
    assert h.post("/checkout", cko, cko_headers).status_code == 200
    got = sorted((m.event.psp, m.envelope.event_type) for m in h.drain())
    assert got == [
        ("adyen", "payment.failed"),
        ("adyen", "payment.succeeded"),
        ("braintree", "payment.succeeded"),
        ("checkout", "payment.succeeded"),
        ("gocardless", "payment.failed"),
        ("gocardless", "payment.succeeded"),
        ("gocardless", "payment_method.revoked"),
        ("paypal", "payment.succeeded"),
    ]
    states = sorted((r["psp"], r["state"]) for r in h.records())
    assert states.count(("adyen", "ignored")) == 1  # REPORT_AVAILABLE: archived, not published
    assert states.count(("gocardless", "ignored")) == 1  # payouts.paid
    bt_rec = next(r for r in h.records() if r["psp"] == "braintree")
    assert "4111111111111111" not in bt_rec["raw"]  # the decoded XML is archived, scrubbed
    assert "<cvv>[CVC]</cvv>" in bt_rec["raw"]


def test_accounts_are_separate(gcp: Gcp, monkeypatch: pytest.MonkeyPatch) -> None:
    h = harness(gcp, monkeypatch)
    eu_secret = ENV["STRIPE_WEBHOOK_SECRETS__EU"]
    assert h.post("/stripe/eu", STRIPE_BODY, stripe_headers()).status_code == 401  # default secret, EU path
    assert h.post("/stripe/eu", STRIPE_BODY, stripe_headers(secret=eu_secret)).status_code == 200
    assert h.post("/stripe", STRIPE_BODY, stripe_headers()).status_code == 200  # same evt id, other account
    assert sorted(m.event.account for m in h.drain()) == ["default", "eu"]
    assert h.post("/stripe/us", STRIPE_BODY, stripe_headers()).status_code == 404


def test_unmapped_type_is_archived_and_acknowledged_not_published(gcp: Gcp, monkeypatch: pytest.MonkeyPatch) -> None:
    h = harness(gcp, monkeypatch)
    body = compact(load("stripe_customer_created.json"))
    r = h.post("/stripe", body, stripe_headers(body))
    assert r.status_code == 200
    assert r.get_json()["ignored"] == 1
    [rec] = h.records()
    assert (rec["state"], rec["psp_event_type"]) == ("ignored", "customer.created")
    assert h.drain() == []


def test_failed_publish_is_retried_by_the_psp_and_published_exactly_once(
    gcp: Gcp, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls = []

    def flaky(event: PaymentEvent) -> str:
        calls.append(event.fact_key())
        if len(calls) == 1:
            raise ServiceUnavailable("pubsub is down")  # type: ignore[no-untyped-call]
        return publish(event, idempotency_key=event.fact_key(), occurred_at=event.psp_created_at)

    h = harness(gcp, monkeypatch, publisher=flaky)
    first = h.post("/stripe", STRIPE_BODY, stripe_headers())
    assert (first.status_code, first.headers["Retry-After"]) == (503, "30")
    [rec] = h.records()
    assert rec["state"] == "received"  # stored, not yet published: the retry must finish it
    assert h.drain() == []
    retry = h.post("/stripe", STRIPE_BODY, stripe_headers())
    assert retry.status_code == 200
    assert h.post("/stripe", STRIPE_BODY, stripe_headers()).get_json()["duplicate"] == 1
    assert len(h.drain()) == 1
    assert len(calls) == 2
    [rec] = h.records()
    assert (rec["state"], rec["attempts"]) == ("published", 2)


class _FlakyFirestore:
    """The real client, except that the first N document writes fail as in an outage."""

    def __init__(self, failures: int) -> None:
        self.failures = failures

    def __call__(self) -> Any:
        if self.failures > 0:
            self.failures -= 1
            raise ServiceUnavailable("firestore is down")  # type: ignore[no-untyped-call]
        return clients.firestore()


def test_firestore_outage_is_503_and_nothing_is_lost(gcp: Gcp, monkeypatch: pytest.MonkeyPatch) -> None:
    h = harness(gcp, monkeypatch, db=_FlakyFirestore(1))
    assert h.post("/stripe", STRIPE_BODY, stripe_headers()).status_code == 503
    assert h.records() == []
    assert h.post("/stripe", STRIPE_BODY, stripe_headers()).status_code == 200
    assert len(h.drain()) == 1


def test_concurrent_identical_deliveries_publish_once(gcp: Gcp, monkeypatch: pytest.MonkeyPatch) -> None:
    h = harness(gcp, monkeypatch)
    headers = stripe_headers()
    statuses: list[list[int]] = []

    def deliver_until_acked(_: int) -> list[int]:
        seen = []
        for _ in range(100):  # what a PSP does: redeliver until a 2xx
            status = h.post("/stripe", STRIPE_BODY, headers).status_code
            seen.append(status)
            if status < 300:
                break
        return seen

    with concurrent.futures.ThreadPoolExecutor(8) as pool:
        statuses = list(pool.map(deliver_until_acked, range(8)))
    assert all(s[-1] == 200 for s in statuses), statuses
    assert all(set(s) <= {200, 409} for s in statuses), statuses
    assert any(409 in s for s in statuses) or sum(len(s) for s in statuses) == 8  # contention or strictly serial
    assert len(h.drain()) == 1
    [rec] = h.records()
    assert rec["state"] == "published"


def test_crashed_owner_keeps_the_lease_until_it_expires_then_a_retry_takes_over(
    gcp: Gcp, monkeypatch: pytest.MonkeyPatch
) -> None:
    now = [dt.datetime.now(dt.UTC)]
    attempts = []

    def crash_once(event: PaymentEvent) -> str:
        attempts.append(1)
        if len(attempts) == 1:
            raise ServiceUnavailable("process died mid-publish")  # type: ignore[no-untyped-call]
        return publish(event, idempotency_key=event.fact_key(), occurred_at=event.psp_created_at)

    h = harness(gcp, monkeypatch, publisher=crash_once)
    h.service.clock = lambda: now[0]
    monkeypatch.setattr(store, "release", lambda claimed: None)  # a crash releases nothing
    assert h.post("/stripe", STRIPE_BODY, stripe_headers()).status_code == 503
    now[0] += dt.timedelta(seconds=5)
    assert h.post("/stripe", STRIPE_BODY, stripe_headers()).status_code == 409  # lease still held
    assert h.drain() == []
    now[0] += dt.timedelta(seconds=store.LEASE_S)
    headers = {"Stripe-Signature": signing.stripe_header(STRIPE_BODY, STRIPE_SECRET, int(now[0].timestamp()))}
    assert h.post("/stripe", STRIPE_BODY, headers).status_code == 200
    assert len(h.drain()) == 1


def test_batch_with_an_already_published_item(gcp: Gcp, monkeypatch: pytest.MonkeyPatch) -> None:
    h = harness(gcp, monkeypatch)
    auth = {"Authorization": signing.basic_auth(ENV["ADYEN_BASIC_AUTH"])}
    batch = signing.adyen_sign(load("adyen_batch.json"), ENV["ADYEN_HMAC_KEYS"])
    first_only = {**batch, "notificationItems": batch["notificationItems"][:1]}
    assert h.post("/adyen", compact(first_only), auth).status_code == 200
    assert len(h.drain()) == 1
    assert h.post("/adyen", compact(batch), auth).status_code == 200
    assert [m.envelope.event_type for m in h.drain()] == ["payment.succeeded"]


def test_large_payload_is_archived_compressed(gcp: Gcp, monkeypatch: pytest.MonkeyPatch) -> None:
    h = harness(gcp, monkeypatch)
    event = load("stripe_payment_intent_succeeded.json")
    event["data"]["object"]["description"] = "x" * (900 * 1024)
    body = compact(event)
    assert len(body) < 1024 * 1024
    assert h.post("/stripe", body, stripe_headers(body)).status_code == 200
    [rec] = h.records()
    assert json.loads(zlib.decompress(rec["raw_zlib"]))["id"] == event["id"]


def test_out_of_order_facts_are_each_published_once(gcp: Gcp, monkeypatch: pytest.MonkeyPatch) -> None:
    """A refund and a dispute outcome may arrive before the payment's success: each is its own fact."""
    h = harness(gcp, monkeypatch)
    names = ["stripe_charge_dispute_closed.json", "stripe_charge_refunded.json", "stripe_payment_intent_succeeded.json"]
    bodies = [compact(load(n)) for n in names]
    for body in bodies + bodies[::-1]:
        assert h.post("/stripe", body, stripe_headers(body)).status_code == 200
    got = [(m.envelope.event_type, m.event.psp_payment_id) for m in h.drain()]
    assert sorted(got) == [
        ("dispute.lost", "pi_3Pm0aXJ2eZvKYlo21uE2hG4m"),
        ("payment.refunded", "pi_3Pm0aXJ2eZvKYlo21uE2hG4m"),
        ("payment.succeeded", "pi_3Pm0aXJ2eZvKYlo21uE2hG4m"),
    ]
    assert sorted(r["state"] for r in h.records()) == ["published"] * 3
