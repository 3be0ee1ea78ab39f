"""In-process cost of one Stripe webhook: verify + parse + normalise, against the Stripe SDK.

Ours: ``StripeAdapter.verify`` (HMAC over the raw body, replay window, JSON parse, mode check) plus
``normalise`` into the pydantic ``PaymentSucceeded`` (Money, references, fact key inputs).
Baseline: ``stripe.Webhook.construct_event`` on the same payload and header, in the same run (it
verifies the same HMAC and builds a StripeObject, without any mapping). Ratio = ours / baseline;
goal at most 1.0. Median of several rounds of N calls each.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import statistics
import time
from typing import Any

N = int(os.environ.get("BENCH_WEBHOOK_N", "3000"))
ROUNDS = int(os.environ.get("BENCH_WEBHOOK_ROUNDS", "5"))
SECRET = "whsec_bench_not_a_secret"


def payload() -> bytes:
    event = {
        "id": "evt_3Pm0aXJ2eZvKYlo21a4Jx8Qk",
        "object": "event",
        "api_version": "2024-06-20",
        "created": int(time.time()),
        "livemode": False,
        "pending_webhooks": 1,
        "request": {"id": "req_8aBcDeFgHiJkLm", "idempotency_key": "attempt-9"},
        "type": "payment_intent.succeeded",
        "data": {
            "object": {
                "id": "pi_3Pm0aXJ2eZvKYlo21uE2hG4m",
                "object": "payment_intent",
                "amount": 2000,
                "amount_capturable": 0,
                "amount_received": 2000,
                "currency": "eur",
                "customer": "cus_QdQzK3eB3ZPa0P",
                "latest_charge": "ch_3Pm0aXJ2eZvKYlo21JkOqT7b",
                "livemode": False,
                "metadata": {"customer_id": "cust-42", "subscription_id": "sub-7", "invoice_id": "INV-2026-000123"},
                "payment_method": "pm_1Pm0aWJ2eZvKYlo2dY1a8mZh",
                "payment_method_types": ["card"],
                "status": "succeeded",
            }
        },
    }
    return json.dumps(event, separators=(",", ":")).encode()


def _per_call(fn, n: int) -> float:
    samples = []
    for _ in range(ROUNDS):
        t0 = time.perf_counter()
        for _ in range(n):
            fn()
        samples.append((time.perf_counter() - t0) / n)
    return statistics.median(samples)


def main() -> None:
    import stripe

    from shared.psp.base import Delivery, PspConfig
    from shared.psp.signing import stripe_header
    from shared.psp.stripe import StripeAdapter

    body = payload()
    header = stripe_header(body, SECRET)
    adapter = StripeAdapter()
    cfg = PspConfig(psp="stripe", account="default", livemode=False, values={"STRIPE_WEBHOOK_SECRETS": SECRET})
    headers = {"Stripe-Signature": header}
    text = body.decode()

    def ours() -> object:
        d = Delivery(body=body, headers=headers, content_type="application/json", received_at=dt.datetime.now(dt.UTC))
        [note] = adapter.verify(d, cfg)
        return adapter.normalise(note, cfg)

    def sdk() -> Any:
        return stripe.Webhook.construct_event(text, header, SECRET, tolerance=300)

    assert ours() is not None
    assert sdk()["id"] == "evt_3Pm0aXJ2eZvKYlo21a4Jx8Qk"
    _per_call(ours, 200), _per_call(sdk, 200)  # warm up
    t_sdk = _per_call(sdk, N)
    t_ours = _per_call(ours, N)
    print(f"stripe payment_intent.succeeded, {len(body)} bytes, median of {ROUNDS} x {N} calls")
    print(f"  stripe.Webhook.construct_event          {t_sdk * 1e6:8.1f} us/call (baseline)")
    print(f"  ours: verify + parse + normalise        {t_ours * 1e6:8.1f} us/call")
    print(f"  ratio ours / baseline                   {t_ours / t_sdk:8.2f}  (goal <= 1.0)")


if __name__ == "__main__":
    main()
