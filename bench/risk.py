"""Latency and cost the risk step adds to the charge path, against the charge call itself.

What runs: the collector's whole charge of an attempt (:func:`shared.renewals.collector.charge`: the claim, the
risk step, ``StripeCharger.charge`` through the official SDK against a local Stripe-shaped stub with no network
latency, the commit completing the attempt) on the Firestore emulator, three ways in rotating order, in the same
run: ``on`` (default rules scorer; the customer's profile carried by the message, read beforehand as the invoices
function does with ``snapshot_for``: that read is timed apart, it is not on the charge path), ``read`` (rules; a
message without the profile, as older messages: the read overlaps the claim) and ``off`` (``RISK_SCORER=off``).
``BENCH_RISK_N`` charges each way (default 300) over 50 customers (their profiles fill up as the run goes).

Figures:

* the step on the charge path: the time the collector spends in it (starting it before the claim, then
  deciding after the claim), p50 / p99, for ``on`` and ``read``;
* the charge call (the SDK to the stub), p50 / p99; ratio = p99 step / p99 charge call (goal at most 0.1x; a real
  PSP answers in hundreds of milliseconds, so a zero-latency stub is the harshest baseline);
* the whole charge each way (what the step adds end to end, including its extra document in the commit);
* Firestore reads and writes per charge, each way, and the upstream read (``shared.usage`` counters at the
  client; a separate pass of 30 charges each way, so the latency figures use the production client).

A remote model (``RISK_SCORER=model``) keeps the read on the path and adds its own call within its budget; this
bench measures the rules scorer.

Needs ``FIRESTORE_EMULATOR_HOST`` (the emulator of ``make up``). Outcomes are applied to a subscription id with no
document: the transaction reads it, completes the attempt and writes the profile (a real renewal's round trips);
the publisher is a no-op (the step publishes nothing for an ``allow``).
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import os
import statistics
import threading
import time
import uuid
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

N = int(os.environ.get("BENCH_RISK_N", "300"))
MAX_EVENTS = 50
COST_N = 30  # charges each way counted with the metered client
WARMUP = 20
WAYS = ("on", "read", "off")


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


class _Null:
    def publish(self, *a: Any, **kw: Any) -> str:
        return ""

    def publish_all(self, items: Any, **kw: Any) -> list[str]:
        return []


def _timed(fn: Callable[..., Any], into: list[float]) -> Callable[..., Any]:
    def wrapper(*a: Any, **kw: Any) -> Any:
        t0 = time.perf_counter()
        try:
            return fn(*a, **kw)
        finally:
            into.append(time.perf_counter() - t0)

    return wrapper


def _cpu_only() -> float:
    """The pure CPU part of a decision: features and rules over a full profile (no I/O)."""
    from shared.risk.base import Subject
    from shared.risk.rules import RulesScorer
    from shared.risk.step import RiskStep

    now = dt.datetime(2026, 12, 1, tzinfo=dt.UTC)
    events = {
        f"e{i}": {"t": now - dt.timedelta(hours=i), "kind": "attempt", "outcome": "succeeded", "m": "m", "amount": 900}
        | {"currency": "EUR", "d": {"verdict": "allow", "reasons": [], "scorer": "rules", "score": None}}
        for i in range(MAX_EVENTS)
    }
    step = RiskStep(RulesScorer(), budget_s=0.15, db=lambda: None)
    subject = Subject("charge", "inv:1", "stripe", "default", "cus", "m", 1000, "EUR", now, ref="inv:1")
    xs = []
    for _ in range(2000):
        t0 = time.perf_counter()
        step.decide(subject, {"events": events})
        xs.append((time.perf_counter() - t0) * 1000)
    return statistics.median(xs)


def main() -> None:
    if not os.environ.get("FIRESTORE_EMULATOR_HOST"):
        print("  skipped: FIRESTORE_EMULATOR_HOST is not set (start the emulators: make up)")
        return
    os.environ["GOOGLE_CLOUD_PROJECT"] = f"demo-bench-risk-{uuid.uuid4().hex[:6]}"
    os.environ.update({"STRIPE_API_KEY": "sk_test_bench_not_a_secret", "STRIPE_API_BASE": _stub()})
    os.environ.update({"RISK_FAIL_MODE": "open", "USAGE_METERING": "0"})
    logging.disable(logging.WARNING)  # "payment ignored: unknown subscription" on every charge, by design
    from shared import usage
    from shared.charging import charger_for
    from shared.config import reset_settings
    from shared.events.billing import RiskSnapshot
    from shared.renewals import collector
    from shared.renewals.deps import Deps
    from shared.risk import gate

    reset_settings()
    deps = Deps(publisher=_Null())  # type: ignore[arg-type]  # publishes nothing: not what is measured
    from shared.renewals.deps import utcnow

    begin: list[float] = []  # seconds in the step, this charge: starting it (before the claim) ...
    decide: list[float] = []  # ... and deciding (after the claim: the profile's answer, the rules)
    psp: list[float] = []
    # Timers around the names the collector calls (the step's two calls, the PSP call).
    setattr(collector, "start_charge", _timed(gate.start_charge, begin))  # noqa: B010
    setattr(collector, "decide_charge", _timed(gate.decide_charge, decide))  # noqa: B010

    class Timed:
        def __init__(self, psp_name: str, account: str) -> None:
            self.charge = _timed(charger_for(psp_name, account).charge, psp)

    setattr(collector, "charger_for", Timed)  # noqa: B010
    start = dt.datetime(2026, 12, 1, tzinfo=dt.UTC)

    def run(n: int, tag: str) -> tuple[dict[str, dict[str, list[float]]], dict[str, list[int]]]:
        res: dict[str, dict[str, list[float]]] = {
            w: {"step": [], "begin": [], "decide": [], "psp": [], "total": [], "upstream": []} for w in WAYS
        }
        cost = {w: [0, 0, 0] for w in WAYS}  # charge path reads, writes; upstream reads
        for i in range(len(WAYS) * (n + WARMUP)):
            r = i // len(WAYS)
            way = WAYS[(i + r) % len(WAYS)]  # rotate which goes first each round
            os.environ["RISK_SCORER"] = "off" if way == "off" else "rules"
            c = r % 50
            spec = {
                "invoice_id": f"inv_{tag}_{way}_{r}",
                "subscription_id": f"sub_{tag}_{way}_{r}",
                "customer_id": f"cus-{tag}-{way}-{c}",
                "number": f"B-{r}",
                "amount": {"amount": 1000 + c, "currency": "EUR"},
                "payment_method": {"psp": "stripe", "customer_ref": f"cus_{c}", "method_ref": f"pm_{c}"},
                "period_start": start,
                "period_end": start + dt.timedelta(days=30),
            }
            begin.clear()
            decide.clear()
            psp.clear()
            carried, up = None, 0.0
            method = {"psp": "stripe", "customer_ref": f"cus_{c}", "method_ref": f"pm_{c}"}
            with usage.track() as upstream:  # the invoices function's read, before publishing invoice.finalized
                if way == "on":
                    t0 = time.perf_counter()
                    carried = gate.snapshot_for(f"cus-{tag}-{way}-{c}", method, 1000, utcnow())
                    up = time.perf_counter() - t0
                    if carried is not None:  # through the contract, as the collector receives it
                        carried = RiskSnapshot.model_validate_json(
                            RiskSnapshot.model_validate(carried).model_dump_json()
                        ).model_dump()
            with usage.track() as u:
                t0 = time.perf_counter()
                collector.charge(spec, attempt=1, deps=deps, carried_risk=carried)
                total = time.perf_counter() - t0
            if r >= WARMUP:
                res[way]["upstream"].append(up * 1000)
                cost[way][2] += upstream.reads
                res[way]["total"].append(total * 1000)
                res[way]["psp"].append(sum(psp) * 1000)
                res[way]["step"].append((sum(begin) + sum(decide)) * 1000)
                res[way]["begin"].append(sum(begin) * 1000)
                res[way]["decide"].append(sum(decide) * 1000)
                cost[way][0] += u.reads
                cost[way][1] += u.writes
        return res, cost

    # Latency with the production clients (no usage interceptor); then the cost, counted at a metered client.
    res, _ = run(N, "lat")
    os.environ["USAGE_METERING"] = "1"
    reset_settings()
    _, cost = run(COST_N, "cost")
    p_all = [x for w in WAYS for x in res[w]["psp"]]
    c50, c99 = statistics.median(p_all), pct(p_all, 99)
    load = os.getloadavg()
    print(f"  N={N} charges each way (on / read / off, rotating), 50 customers, rules scorer; load avg {load[0]:.1f}")
    print(f"  charge call            p50 {c50:7.3f} ms   p99 {c99:7.3f} ms   (SDK -> local zero-latency stub)")
    print(f"  rules on a full profile p50 {_cpu_only():7.3f} ms   (features + rules, {MAX_EVENTS} entries, no I/O)")
    for w, label in (("on", "profile carried"), ("read", "profile read (older message)")):
        x = res[w]
        s50, s99 = statistics.median(x["step"]), pct(x["step"], 99)
        print(f"  risk step, {label}:  p50 {s50:7.3f} ms   p99 {s99:7.3f} ms")
        for part in ("begin", "decide"):
            print(f"    of which {part:<12}  p50 {statistics.median(x[part]):7.3f} ms   p99 {pct(x[part], 99):7.3f} ms")
        print(f"    ratio p99 step / p99 charge call = {s99 / c99:.3f}x (goal <= 0.1x); p50 ratio {s50 / c50:.3f}x")
    u = res["on"]["upstream"]
    print(f"  upstream read (invoices function, off the charge path) p50 {statistics.median(u):7.3f} ms")
    print(f"    p99 {pct(u, 99):7.3f} ms")
    for w in WAYS:
        t = res[w]["total"]
        print(f"  whole charge, {w:<4}  p50 {statistics.median(t):7.2f} ms   p99 {pct(t, 99):7.2f} ms")
    n = COST_N
    r_off, w_off = cost["off"][0] / n, cost["off"][1] / n
    for w in ("on", "read"):
        r_, w_, up_ = cost[w][0] / n, cost[w][1] / n, cost[w][2] / n
        print(f"  Firestore per charge, {w}: the step on the charge path {r_ - r_off:+.2f} reads", end="")
        print(f" {w_ - w_off:+.2f} writes; upstream {up_:+.2f} reads")
    print(f"  load avg 1/5/15 min at the end: {load[0]:.1f} / {load[1]:.1f} / {load[2]:.1f}")


if __name__ == "__main__":
    main()
