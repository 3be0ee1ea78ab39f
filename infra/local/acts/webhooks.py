"""Act 10: signed webhooks from every PSP hit the running webhooks function; canonical events come out.

A pull subscription on ``payment-events`` (created here, next to the stack's push subscriptions) shows
what consumers receive. A redelivery and a forged request show dedupe and rejection.
"""

from __future__ import annotations

import base64
import json
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from typing import Any

from infra.local.acts import DemoContext
from infra.local.topology import ROOT

ORDER = 10
TITLE = "PSP webhooks: verify, dedupe, archive, canonical payment events"

PAYPAL_CERT_DIR = ROOT / ".stack" / "paypal-certs"

# Obviously fake secrets for the local stack and the e2e tests; the cloud gets real ones from Secret Manager.
ENV = {
    "STRIPE_WEBHOOK_SECRETS": "whsec_demo_old_not_a_secret,whsec_demo_not_a_secret",
    "STRIPE_WEBHOOK_SECRETS__EU": "whsec_demo_eu_not_a_secret",
    "ADYEN_HMAC_KEYS": "D0D0D0D0DEADBEEFD0D0D0D0DEADBEEFD0D0D0D0DEADBEEFD0D0D0D0DEADBEEF",
    "ADYEN_BASIC_AUTH": "adyen-demo:not-a-real-password",
    "PAYPAL_WEBHOOK_ID": "WH-DEMO-NOT-A-REAL-ID",
    "PAYPAL_CERT_DIR": str(PAYPAL_CERT_DIR),
    "GOCARDLESS_WEBHOOK_SECRETS": "gocardless_demo_not_a_secret",
    "BRAINTREE_MERCHANT_ID": "demo_merchant",
    "BRAINTREE_PUBLIC_KEY": "demo_public_key",
    "BRAINTREE_PRIVATE_KEY": "demo_private_key_not_a_secret",
    "CHECKOUT_WEBHOOK_SECRETS": "cko_demo_not_a_secret",
    "CHECKOUT_AUTHORIZATION": "cko_demo_authorization_not_a_secret",
}
STRIPE_SECRET = "whsec_demo_not_a_secret"  # noqa: S105 (demo value, obviously fake)
TAP = "demo-webhooks-tap"


def _compact(data: Any) -> bytes:
    return json.dumps(data, separators=(",", ":")).encode()


def post(url: str, body: bytes, headers: dict[str, str], content_type: str = "application/json") -> tuple[int, str]:
    req = urllib.request.Request(url, body, {"Content-Type": content_type, **headers}, method="POST")  # noqa: S310
    try:
        with urllib.request.urlopen(req, timeout=15) as r:  # noqa: S310 (loopback)
            return r.status, r.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode()


def deliveries(run: str) -> list[tuple[str, str, bytes, dict[str, str], str]]:
    """(label, path, body, headers, content type) for one signed delivery per PSP."""
    from shared.psp import signing

    now = int(time.time())
    iso = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(now))
    out = []
    stripe = _compact(
        {
            "id": f"evt_demo_{run}",
            "object": "event",
            "type": "payment_intent.succeeded",
            "created": now,
            "livemode": False,
            "data": {
                "object": {
                    "id": f"pi_demo_{run}",
                    "object": "payment_intent",
                    "amount": 2900,
                    "amount_received": 2900,
                    "currency": "eur",
                    "metadata": {"customer_id": "cust-demo", "subscription_id": "sub-demo", "invoice_id": "INV-DEMO-1"},
                    "payment_method_details": {"card": {"number": "4242424242424242", "cvc": "123"}},
                }
            },
        }
    )
    stripe_headers = {"Stripe-Signature": signing.stripe_header(stripe, STRIPE_SECRET)}
    out.append(("stripe", "/stripe", stripe, stripe_headers, "application/json"))
    out.append(("stripe (redelivery)", "/stripe", stripe, stripe_headers, "application/json"))
    out.append(("stripe (forged)", "/stripe", stripe.replace(b"2900", b"9", 1), stripe_headers, "application/json"))
    adyen_item = {
        "amount": {"currency": "EUR", "value": 4900},
        "eventCode": "AUTHORISATION",
        "eventDate": iso,
        "merchantAccountCode": "DemoMerchantECOM",
        "merchantReference": f"attempt-{run}",
        "pspReference": f"DEMO{run.upper()}PSP",
        "success": "false",
        "reason": "Card stolen",
        "additionalData": {"metadata.invoice_id": "INV-DEMO-2"},
    }
    adyen = signing.adyen_sign(
        {"live": "false", "notificationItems": [{"NotificationRequestItem": adyen_item}]}, ENV["ADYEN_HMAC_KEYS"]
    )
    out.append(
        (
            "adyen",
            "/adyen",
            _compact(adyen),
            {"Authorization": signing.basic_auth(ENV["ADYEN_BASIC_AUTH"])},
            "application/json",
        )
    )
    paypal = _compact(
        {
            "id": f"WH-DEMO-{run}",
            "create_time": iso,
            "event_type": "PAYMENT.CAPTURE.COMPLETED",
            "resource": {
                "id": f"CAPDEMO{run}",
                "amount": {"currency_code": "USD", "value": "19.99"},
                "invoice_id": "INV-DEMO-3",
                "status": "COMPLETED",
            },
        }
    )
    PAYPAL_CERT_DIR.mkdir(parents=True, exist_ok=True)
    pki = signing.paypal_test_pki(write_to=PAYPAL_CERT_DIR)
    out.append(("paypal", "/paypal", paypal, pki.headers(paypal, ENV["PAYPAL_WEBHOOK_ID"]), "application/json"))
    gocardless = _compact(
        {
            "events": [
                {
                    "id": f"EVDEMO{run}1",
                    "created_at": iso,
                    "resource_type": "payments",
                    "action": "confirmed",
                    "links": {"payment": f"PMDEMO{run}"},
                    "resource_metadata": {"invoice_id": "INV-DEMO-4"},
                },
                {
                    "id": f"EVDEMO{run}2",
                    "created_at": iso,
                    "resource_type": "mandates",
                    "action": "cancelled",
                    "links": {"mandate": f"MDDEMO{run}"},
                    "details": {"cause": "bank_account_closed"},
                },
            ],
            "meta": {"webhook_id": f"WBDEMO{run}"},
        }
    )
    out.append(
        (
            "gocardless",
            "/gocardless",
            gocardless,
            {"Webhook-Signature": signing.hex_hmac(gocardless, ENV["GOCARDLESS_WEBHOOK_SECRETS"])},
            "application/json",
        )
    )
    xml = (
        f'<notification><timestamp type="datetime">{iso}</timestamp><kind>dispute_opened</kind><subject><dispute>'
        f"<id>dpdemo{run}</id><amount-disputed>10.00</amount-disputed><currency-iso-code>USD</currency-iso-code>"
        f"<reason>fraud</reason><transaction><id>txdemo{run}</id></transaction></dispute></subject></notification>"
    )
    bt = signing.braintree_form(xml, ENV["BRAINTREE_PUBLIC_KEY"], ENV["BRAINTREE_PRIVATE_KEY"])
    out.append(("braintree", "/braintree", bt, {}, "application/x-www-form-urlencoded"))
    cko = _compact(
        {
            "id": f"evt_demo_cko_{run}",
            "type": "payment_refunded",
            "created_on": iso,
            "data": {
                "id": f"pay_demo_{run}",
                "action_id": f"act_demo_{run}",
                "amount": 500,
                "currency": "GBP",
                "metadata": {"invoice_id": "INV-DEMO-5"},
            },
        }
    )
    cko_headers = {
        "Cko-Signature": signing.hex_hmac(cko, ENV["CHECKOUT_WEBHOOK_SECRETS"]),
        "Authorization": ENV["CHECKOUT_AUTHORIZATION"],
    }
    out.append(("checkout", "/checkout", cko, cko_headers, "application/json"))
    return out


def tap(project: str, name: str = TAP) -> tuple[Any, str]:
    """A pull subscription on payment-events: a window onto what the consumers receive (made before a delivery,
    it sees every publish)."""
    from google.api_core.exceptions import AlreadyExists
    from google.cloud.pubsub_v1 import SubscriberClient

    sub = SubscriberClient()
    path: str = sub.subscription_path(project, name)
    try:
        sub.create_subscription(name=path, topic=f"projects/{project}/topics/payment-events")
    except AlreadyExists:
        pass
    return sub, path


def pull_all(
    sub: Any, path: str, expect: int, timeout_s: float = 60.0, keep: Callable[[Any], bool] = lambda m: True
) -> list[Any]:
    """The messages ``keep`` accepts, once ``expect`` of them arrived (or ``timeout_s`` passed). ``keep``: the
    topic is shared with whatever else runs on the stack (a consumer re-announcing an earlier fact, say)."""
    from google.api_core.exceptions import DeadlineExceeded

    got: list[Any] = []
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            resp = sub.pull(request={"subscription": path, "max_messages": 50}, timeout=2)
        except DeadlineExceeded:  # nothing within 2 s (or a slow answer under load): look again
            continue
        if resp.received_messages:
            sub.acknowledge(request={"subscription": path, "ack_ids": [m.ack_id for m in resp.received_messages]})
            got += [m.message for m in resp.received_messages if keep(m.message)]
        if len(got) >= expect:
            time.sleep(0.5)  # a late duplicate would show up now
            resp = sub.pull(request={"subscription": path, "max_messages": 50, "return_immediately": True}, timeout=2)
            got += [m.message for m in resp.received_messages if keep(m.message)]
            break
    return got


def play(ctx: DemoContext) -> None:
    from shared.events import parse_message

    base = ctx.stack.function_urls["webhooks"]
    sub, path = tap(ctx.stack.project)
    run = base64.b32encode(int(time.time() * 1000).to_bytes(6, "big")).decode().rstrip("=").lower()
    for label, route, body, headers, ctype in deliveries(run):
        status, text = post(base + route, body, headers, ctype)
        ctx.say(f"  POST {route:<12} {label:<20} -> {status} {text[:70]}")
    messages = pull_all(sub, path, expect=7, keep=lambda m: run in m.data.decode("utf-8", "replace").lower())
    ctx.say(f"  canonical events on payment-events: {len(messages)}")
    events = []
    for m in sorted(messages, key=lambda m: (m.attributes["event_type"], m.data)):
        rec = parse_message(m.data, dict(m.attributes), m.message_id)
        ev: Any = rec.event
        amount = str(ev.amount) if ev.amount else "-"
        refs = {k: v for k, v in ev.refs.model_dump().items() if v}
        ctx.say(f"    {rec.envelope.event_type:<24} {ev.psp:<10} {ev.psp_payment_id:<24} {amount:<10} {refs}")
        events.append(rec.envelope.event_id)
    ctx.facts["webhook_event_ids"] = events
