"""Latency the risk step adds to the charge path, against the charge call itself.

Ours: :func:`shared.risk.gate.assess_charge` with the default rules scorer on the Firestore emulator (one
batched read of the decision record and two profiles, the scorer in its worker thread under the budget,
one commit of the record and both profiles). Baseline: the charge call it precedes,
``StripeCharger.charge`` through the official SDK against a local Stripe-shaped stub (no network latency:
a real PSP answers in hundreds of milliseconds, so this baseline is the harshest one). Ratio = p99 of the
risk step / p99 of the charge call; goal at most 0.1. ``BENCH_RISK_N`` charges (default 300) spread over
50 customers. Needs ``FIRESTORE_EMULATOR_HOST`` (the emulator of ``make up``).
"""

from __future__ import annotations

import datetime as dt
import json
import os
import statistics
import threading
import time
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

N = int(os.environ.get("BENCH_RISK_N", "300"))


def _stub() -> str:
    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            self.rfile.read(int(self.headers.get("Content-Length") or 0))
            pi = {"id": f"pi_{uuid.uuid4().hex[:16]}", "object": "payment_intent", "status": "succeeded"}
            body = json.dumps(pi | {"created": int(time.time()), "livemode": False}).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return f"http://127.0.0.1:{server.server_address[1]}"


def pct(xs: list[float], p: float) -> float:
    s = sorted(xs)
    return s[min(len(s) - 1, round(p / 100 * (len(s) - 1)))]


def main() -> None:
    if not os.environ.get("FIRESTORE_EMULATOR_HOST"):
        print("  skipped: FIRESTORE_EMULATOR_HOST is not set (start the emulators: make up)")
        return
    os.environ["GOOGLE_CLOUD_PROJECT"] = f"demo-bench-risk-{uuid.uuid4().hex[:6]}"
    os.environ.update({"STRIPE_API_KEY": "sk_test_bench_not_a_secret", "STRIPE_API_BASE": _stub()})
    os.environ.update({"RISK_SCORER": "rules", "RISK_FAIL_MODE": "open"})
    from shared.charging import ChargeRequest
    from shared.charging.stripe import StripeCharger
    from shared.config import reset_settings
    from shared.domain.money import Money
    from shared.events.billing import PaymentMethodRef
    from shared.risk.gate import assess_charge

    reset_settings()
    charger = StripeCharger()
    risk_ms: list[float] = []
    charge_ms: list[float] = []
    verdicts: dict[str, int] = {}
    for i in range(N + 20):  # the first 20 warm connections and caches up
        c = i % 50
        req = ChargeRequest(
            invoice_id=f"inv_{i}",
            attempt=1,
            amount=Money(1000 + c, "EUR"),
            method=PaymentMethodRef(psp="stripe", customer_ref=f"cus_{c}", method_ref=f"pm_{c}"),
            customer_id=f"cus-{c}",
        )
        t0 = time.perf_counter()
        a = assess_charge(req, dt.datetime.now(dt.UTC))
        t1 = time.perf_counter()
        charger.charge(req)
        t2 = time.perf_counter()
        if i >= 20:
            risk_ms.append((t1 - t0) * 1000)
            charge_ms.append((t2 - t1) * 1000)
            v = a.decision.verdict if a else "off"
            verdicts[v] = verdicts.get(v, 0) + 1
    r50, r99 = statistics.median(risk_ms), pct(risk_ms, 99)
    c50, c99 = statistics.median(charge_ms), pct(charge_ms, 99)
    print(f"  N={N} charges, 50 customers, rules scorer, verdicts {verdicts}")
    print(f"  risk step   p50 {r50:7.2f} ms   p99 {r99:7.2f} ms")
    print(f"  charge call p50 {c50:7.2f} ms   p99 {c99:7.2f} ms   (SDK -> local stub)")
    print(f"  ratio p99 risk / p99 charge = {r99 / c99:.2f}x (goal <= 0.1x); p50 ratio {r50 / c50:.2f}x")


if __name__ == "__main__":
    main()
