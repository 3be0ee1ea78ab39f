"""Act 30: subscriptions renew through ticks of a test clock; one card fails and is dunned; one ends.

The renewals function charges through the official Stripe SDK pointed (``STRIPE_API_BASE``) at a
local Stripe-shaped stub served from this process: it answers ``POST /v1/payment_intents`` like Stripe
(replaying the first answer for a known Idempotency-Key) and declines by payment method:

* ``pm_card_visa``: always succeeds;
* ``pm_demo_declines_twice``: ``do_not_honor`` for its first two charges (retried after a day), then succeeds;
* ``pm_demo_stolen``: ``stolen_card`` (a hard decline: no retries);
* ``pm_demo_insufficient_once``: ``insufficient_funds`` for its first charge, then succeeds (act 35).

The stub starts on first use: building the functions' environment (:func:`env`) starts it, because
the renewals function must know its port before the stack starts. The invoices function
turns each RenewalDue into the invoice that gets charged.
"""

from __future__ import annotations

import datetime as dt
import functools
import hashlib
import json
import threading
import time
import urllib.parse
import urllib.request
from typing import Any

from google.api_core.exceptions import AlreadyExists

from infra.local.acts import DemoContext
from infra.local.jsonstub import serve_json
from shared.domain.money import Money

ORDER = 30
TITLE = "Subscriptions and renewals: test clock, renewals, dunning, cancellation"

T0 = dt.datetime(2026, 1, 31, 9, 0, tzinfo=dt.UTC)


class StripeStub:
    """A Stripe-shaped PaymentIntents endpoint on 127.0.0.1 (demo and e2e only, never deployed)."""

    def __init__(self) -> None:
        self.requests: list[dict[str, str]] = []
        self._answers: dict[str, tuple[int, dict[str, Any]]] = {}
        self._declined: dict[str, int] = {}
        self._lock = threading.Lock()
        self.server = serve_json(
            lambda _method, path, headers, body: self.answer(
                path, headers.get("Idempotency-Key") or "", dict(urllib.parse.parse_qsl(body.decode()))
            ),
            "stripe-stub",
            "POST",
        )
        self.port = int(self.server.server_address[1])

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def answer(self, path: str, key: str, form: dict[str, str]) -> tuple[int, dict[str, Any]]:
        if path != "/v1/payment_intents":
            return 404, {"error": {"type": "invalid_request_error", "message": f"no stub for {path}"}}
        with self._lock:
            self.requests.append({"key": key, **form})
            if key not in self._answers:
                self._answers[key] = self._decide(key, form)
            return self._answers[key]

    def _decide(self, key: str, form: dict[str, str]) -> tuple[int, dict[str, Any]]:
        pi_id = "pi_" + hashlib.sha256(key.encode()).hexdigest()[:20]
        created = int(time.time())
        pi: dict[str, Any] = {"id": pi_id, "object": "payment_intent", "created": created, "livemode": False}
        pi |= {"amount": int(form.get("amount", "0")), "currency": form.get("currency"), "metadata": {}}
        method = form.get("payment_method", "")
        decline = None
        if method == "pm_demo_stolen":
            decline = "stolen_card"
        elif method == "pm_demo_insufficient_once" and self._declined.get(method, 0) < 1:
            decline = "insufficient_funds"
            self._declined[method] = 1
        elif method == "pm_demo_declines_twice" and self._declined.get(method, 0) < 2:
            decline = "do_not_honor"
            self._declined[method] = self._declined.get(method, 0) + 1
        if decline:
            err = {"type": "card_error", "code": "card_declined", "decline_code": decline, "message": "declined"}
            return 402, {"error": err | {"payment_intent": pi | {"status": "requires_payment_method"}}}
        return 200, pi | {"status": "succeeded"}

    def charges(self) -> int:
        with self._lock:
            return len({r["key"] for r in self.requests})


@functools.cache
def stub() -> StripeStub:
    """The one Stripe-shaped stub of this process, started on first use."""
    return StripeStub()


def env() -> dict[str, str]:
    """Environment for the functions; starts the stub, whose URL the renewals function must know."""
    return {
        "RENEWALS_ALLOW_TEST_CLOCK": "1",  # the demo and e2e drive time by explicit "now" in ticks
        "RENEWALS_SHARDS": "4",
        "STRIPE_API_KEY": "sk_test_demo_not_a_secret",
        "STRIPE_API_BASE": stub().url,
        "DUNNING_RETRY_DAYS": "1,3,5,7",
        "DUNNING_FINAL_STATUS": "unpaid",
    }


# -- driving the stack ------------------------------------------------------------------------
def post(url: str, body: dict[str, Any]) -> tuple[int, dict[str, Any]]:
    req = urllib.request.Request(url, json.dumps(body).encode(), {"Content-Type": "application/json"})  # noqa: S310
    try:
        with urllib.request.urlopen(req, timeout=20) as r:  # noqa: S310 (loopback)
            return r.status, dict(json.loads(r.read()))
    except urllib.error.HTTPError as exc:
        return exc.code, dict(json.loads(exc.read() or b"{}"))


def subscription_body(sub_id: str, method: str, *, trial_days: int = 0, amount: int = 1500) -> dict[str, Any]:
    return {
        "subscription_id": sub_id,
        "customer": {"id": f"cus-{sub_id}", "name": "Demo Customer", "country": "DE", "email": "demo@example.com"},
        "seller_entity": "acme-de",
        "plan": {
            "id": "pro-monthly",
            "currency": "EUR",
            "interval": "month",
            "lines": [{"description": "Pro plan", "unit_amount": {"amount": amount, "currency": "EUR"}}],
        },
        "anchor_zone": "Europe/Berlin",
        "start_at": T0.isoformat(),
        "trial_days": trial_days,
        "payment_method": {"psp": "stripe", "customer_ref": f"cus_{sub_id}", "method_ref": method},
    }


def tick(now: dt.datetime) -> None:
    """What Cloud Scheduler does, plus the test clock's explicit "now"."""
    from shared import clients
    from shared.config import get_settings

    body = json.dumps({"now": now.isoformat().replace("+00:00", "Z")}).encode()
    topic = get_settings().topic_path("billing-ticks")
    clients.publisher().publish(topic, body, event_type="billing.tick").result(timeout=30)


def snapshot(ids: list[str]) -> tuple[Any, ...]:
    from shared import clients

    db = clients.firestore()
    out = []
    for sid in ids:
        d = db.collection("subscriptions").document(sid).get().to_dict() or {}
        out.append((d.get("status"), d.get("paid_index"), d.get("version"), (d.get("billing") or {}).get("index")))
    return tuple(out)


def settle(ids: list[str], quiet_s: float = 2.0, timeout_s: float = 60.0) -> tuple[Any, ...]:
    """Wait until the subscriptions stop changing (every push hop has landed)."""
    deadline = time.monotonic() + timeout_s
    value, since = snapshot(ids), time.monotonic()
    while time.monotonic() < deadline:
        time.sleep(0.2)
        now = snapshot(ids)
        if now != value:
            value, since = now, time.monotonic()
        elif time.monotonic() - since >= quiet_s:
            break
    return value


def play(ctx: DemoContext) -> None:
    from google.cloud.pubsub_v1 import SubscriberClient

    project = ctx.stack.project
    events_sub = SubscriberClient().subscription_path(project, "demo-subscription-events")
    try:
        SubscriberClient().create_subscription(name=events_sub, topic=f"projects/{project}/topics/subscription-events")
    except AlreadyExists:
        pass
    api = ctx.stack.function_urls["subscriptions"] + "/subscriptions"
    subs = {
        "sub_demo_happy": subscription_body("sub_demo_happy", "pm_card_visa"),
        "sub_demo_dunning": subscription_body("sub_demo_dunning", "pm_demo_declines_twice"),
        "sub_demo_cancel": subscription_body("sub_demo_cancel", "pm_card_visa"),
        "sub_demo_trial": subscription_body("sub_demo_trial", "pm_card_visa", trial_days=14),
    }
    for sid, body in subs.items():
        status, out = post(api, body)
        ctx.say(f"  create {sid:<18} HTTP {status}  status={out.get('status')}  due_at={out.get('due_at')}")
    ids = list(subs)
    steps = [
        (T0, "first periods due (anchor Jan 31, Europe/Berlin)"),
        (T0 + dt.timedelta(days=1, minutes=1), "dunning retry 1 (+1 day)"),
        (T0 + dt.timedelta(days=3, minutes=1), "dunning retry 2 (+3 days)"),
        (T0 + dt.timedelta(days=14, minutes=1), "trial ends"),
        (dt.datetime(2026, 2, 28, 9, 1, tzinfo=dt.UTC), "Feb 28: the clamped month end"),
        (dt.datetime(2026, 3, 31, 8, 1, tzinfo=dt.UTC), "Mar 31: back on the anchor day (summer time)"),
    ]
    for i, (now, label) in enumerate(steps):
        if i == 1:
            status, out = post(f"{api}/sub_demo_cancel/cancel", {"at_period_end": True, "at": now.isoformat()})
            flag = out.get("cancel_at_period_end")
            ctx.say(f"  cancel sub_demo_cancel at period end: HTTP {status}, cancel_at_period_end={flag}")
        tick(now)
        state = settle(ids)
        ctx.say(f"  tick @ {now.isoformat()}  ({label})")
        for sid, (st, paid, version, billed) in zip(ids, state, strict=True):
            ctx.say(f"      {sid:<18} {st:<9} paid period {paid!s:<4} billed {billed!s:<4} v{version}")
    resp = SubscriberClient().pull(subscription=events_sub, max_messages=500, timeout=10)
    seen: dict[tuple[str, int], dict[str, Any]] = {}
    for m in resp.received_messages:
        b = json.loads(m.message.data)
        seen[(b["subscription_id"], b["version"])] = b
    ctx.say("  timeline (subscription-events, deduplicated by subscription and version):")
    for (sid, v), b in sorted(seen.items()):
        period = f"{(b.get('current_period_start') or '')[:10]}..{(b.get('current_period_end') or '')[:10]}"
        ctx.say(f"      {sid:<18} v{v}  {b['from_status']!s:<9} -> {b['to_status']:<9} {b['reason']:<24} {period}")
    from google.cloud.firestore_v1.base_query import FieldFilter

    from shared import clients

    invoices = clients.firestore().collection("invoices").where(filter=FieldFilter("subscription_id", "in", ids))
    rows = sorted(
        (d.to_dict() or {} for d in invoices.stream()), key=lambda d: (d.get("subscription_id"), str(d.get("number")))
    )
    if rows:
        ctx.say("  invoices (from the invoices function):")
    for d in rows:
        total = d.get("total")
        if isinstance(total, dict):
            amount = f"{Money(int(total['amount']), str(total['currency']))} (tax included)"
        else:
            amount = f"{Money(int(str(total)), str(d['currency']))} (tax included)"
        ctx.say(f"      {d.get('subscription_id'):<18} {d.get('number')!s:<20} {d.get('status')!s:<10} {amount}")
    ctx.say(f"  PSP stub: {stub().charges()} distinct charges (idempotency keys) for {len(stub().requests)} requests")
    ctx.facts["renewals"] = {"subscriptions": ids, "charges": stub().charges()}
