"""Reconciliation: auto-matched share, anomaly detection, matching throughput vs parsing, cost per million lines.

* matching quality on synthetic days (pure): a clean day must be 100 % auto-matched; a day with injected
  anomalies must report every anomaly and nothing else (0 false matches, 0 false alarms);
* throughput: settlement lines matched per second as a ratio to just parsing the same settlement data in
  the PSPs' REAL formats through the real intake adapters (the day's Adyen batch as a settlement details
  CSV, Checkout.com's as breakdown + payouts CSVs, Stripe's as balance-transaction API pages of 100,
  decoded from JSON; written by :mod:`shared.settlement.writers`): (a) the matching itself, in memory;
  (b) the whole intake on the Firestore emulator (lines, ledger entries, payment groups, payout closure),
  facts recorded beforehand. These throughput days settle through Stripe, Adyen and Checkout.com (PayPal's
  STL has no writer here); the quality days use all four file/API PSPs of the generator;
* cost per million settlement lines at list prices (``bench/_cost.py``; Firestore at the multi-region
  $0.06/100k reads, $0.18/100k writes, above prod's regional price;
  Pub/Sub $40/TiB with a 1 KB minimum per message; Cloud Run $0.40/M requests + $0.000024/vCPU-s), from
  the operations the intake path performs per line and group (counted below) and the CPU time measured.

Uses FIRESTORE_EMULATOR_HOST when set, else starts a Firestore emulator and stops it. ``BENCH_RECON_N``:
payments of the emulator day (default 2000); the pure figures use 10x that.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import statistics
import time
import uuid
from collections import defaultdict
from typing import Any

from bench._cost import FS_READ, FS_WRITE, PUBSUB_MIN_BYTES, PUBSUB_PER_BYTE, REQUEST, VCPU_S
from shared.reconciliation import matching as m
from shared.reconciliation.synthetic import synthetic_day
from shared.settlement.adapters import adyen, checkout, stripe
from shared.settlement.writers import adyen_report, checkout_breakdown, checkout_payouts, stripe_balance_transaction

N = int(os.environ.get("BENCH_RECON_N", "2000"))
ROUNDS = 3
LATER = dt.datetime(2026, 4, 1, tzinfo=dt.UTC)
DELAY = dt.timedelta(days=3)
READ, WRITE = FS_READ, FS_WRITE  # the multi-region price: conservative wherever prod deploys the database
PUBSUB_PER_MSG = PUBSUB_PER_BYTE * PUBSUB_MIN_BYTES  # 1 KB minimum per message
RUN_REQ = REQUEST


def match_in_memory(day: Any) -> tuple[dict[str, m.Evaluation], float]:
    t = time.perf_counter()
    fs: dict[str, list[m.FactView]] = defaultdict(list)
    ls: dict[str, list[m.LineView]] = defaultdict(list)
    for f in day.facts:
        v = m.view_fact(f)
        if v is not None:
            fs[m.group_id(f.psp, f.account, f.psp_payment_id)].append(v)
    for ln in day.lines:
        ref = m.payment_ref(ln)
        if ref is not None:
            ls[m.group_id(ln.psp, ln.account, ref)].append(m.view_line(ln))
    evals = {g: m.evaluate(fs[g], ls[g], LATER, DELAY) for g in set(fs) | set(ls)}
    return evals, time.perf_counter() - t


PARSED_PSPS = ("stripe", "adyen", "checkout")


def real_formats(day: Any) -> list[tuple[str, Any]]:
    """Each batch of the day as its PSP really delivers it."""
    out: list[tuple[str, Any]] = []
    for b in day.batches:
        psp = b.lines[0].psp
        if psp == "adyen":
            out.append((psp, adyen_report(b.lines)))
        elif psp == "checkout":
            out.append((psp, [("breakdown", checkout_breakdown(b.lines)), ("payouts", checkout_payouts(b.payouts))]))
        elif psp == "stripe":
            pages = [
                json.dumps({"object": "list", "data": [stripe_balance_transaction(x) for x in b.lines[i : i + 100]]})
                for i in range(0, len(b.lines), 100)
            ]
            out.append((psp, (b.payouts[0].payout_id, [p.encode() for p in pages])))
        else:
            raise ValueError(f"no real-format writer for {psp}")
    return out


def parse_time(day: Any) -> tuple[float, int]:
    """Seconds to parse the day's real-format data with the real adapters, and the lines they yield."""
    files = real_formats(day)
    t = time.perf_counter()
    n = 0
    for psp, data in files:
        if psp == "adyen":
            n += len(adyen.parse_report(data, account="default", source="bench").lines)
        elif psp == "checkout":
            n += len(checkout.parse_files(data, account="default").lines)
        else:
            pid, pages = data
            for page in pages:
                n += len(stripe.lines_from_api(json.loads(page)["data"], account="default", payout_id=pid))
    return time.perf_counter() - t, n


def quality(seed: int, payments: int, anomalies: int) -> str:
    day = synthetic_day(seed, payments=payments, anomalies=anomalies)
    evals, _ = match_in_memory(day)
    payment_lines = sum(1 for ln in day.lines if ln.type in m.CATEGORIES)
    matched = sum(len(e.matched) for e in evals.values())
    reported = {(g, f.kind) for g, e in evals.items() for f in e.findings}
    missed, false = day.expected - reported, reported - day.expected
    return (
        f"  {payments} payments, {len(day.lines)} lines, {anomalies} injected anomalies: auto-matched "
        f"{100 * matched / payment_lines:.2f} % of payment lines; anomalies reported {len(day.expected & reported)}"
        f"/{len(day.expected)}, missed {len(missed)}, false alarms {len(false)}"
    )


def emulator_intake(day: Any) -> dict[str, Any]:
    from shared import clients
    from shared.config import reset_settings
    from shared.reconciliation.config import ReconSettings
    from shared.reconciliation.service import Reconciler

    os.environ["GOOGLE_CLOUD_PROJECT"] = f"demo-bench-{uuid.uuid4().hex[:8]}"
    reset_settings()
    cfg = ReconSettings(
        psp_delay=DELAY,
        our_delay=dt.timedelta(hours=1),
        pull_sources=(),
        pull_overlap=dt.timedelta(hours=1),
        allow_test_clock=True,
    )
    rec = Reconciler(db=clients.firestore(), settings=cfg, clock=lambda: LATER, publish_events=False, workers=8)
    t = time.perf_counter()
    for f in day.facts:
        rec.record_fact(f)
    facts_s = time.perf_counter() - t
    cpu0, t = time.process_time(), time.perf_counter()
    results = [rec.intake_batch(b) for b in day.batches]
    wall, cpu = time.perf_counter() - t, time.process_time() - cpu0
    lines = sum(r.lines for r in results)
    groups = sum(r.groups for r in results)
    payouts = sum(len(b.payouts) for b in day.batches)
    # Operations of the intake path: per line one line document and one ledger entry (batched creates);
    # per payment group one read and one conditional write (the facts created it); per payout a read, two
    # aggregation queries (1 read per 1000 index entries each), the close and its entry.
    reads = groups + payouts * (1 + 2 * max(1, lines // payouts // 1000))
    writes = 2 * lines + groups + 2 * payouts
    return {
        "lines": lines,
        "groups": groups,
        "wall_s": wall,
        "cpu_s": cpu,
        "facts": len(day.facts),
        "facts_s": facts_s,
        "reads": reads,
        "writes": writes,
        "closed": sum(len(r.payouts_closed) for r in results),
        "payouts": payouts,
    }


def main() -> None:
    from infra.local import emulators as em

    print("matching quality (pure, synthetic days with refunds, disputes, FX, split captures and fees):")
    print(quality(101, 10 * N, 0))
    print(quality(102, 10 * N, 10 * N // 20))
    big = synthetic_day(103, payments=10 * N, psps=PARSED_PSPS)
    rounds: list[tuple[float, float]] = []
    for _ in range(ROUNDS):  # alternating rounds, median of each: fair under a shared machine's load
        parse_s, parsed = parse_time(big)
        rounds.append((parse_s, match_in_memory(big)[1]))
    parse_s = statistics.median(r[0] for r in rounds)
    match_s = statistics.median(r[1] for r in rounds)
    lines = len(big.lines)
    print(
        f"throughput on {lines} lines (median of {ROUNDS} alternating rounds): parsing the real formats "
        f"{parsed / parse_s:,.0f} lines/s; matching in memory {lines / match_s:,.0f} lines/s: "
        f"ratio {parse_s / match_s:.2f}x (goal >= 0.5)"
    )
    proc = None
    if not os.environ.get("FIRESTORE_EMULATOR_HOST"):
        import tempfile
        from pathlib import Path

        port = em.free_port()
        proc = em.firestore(port, Path(tempfile.mkdtemp(prefix="bench-recon-")))
        em.start_all([proc])
        os.environ["FIRESTORE_EMULATOR_HOST"] = f"127.0.0.1:{port}"
    try:
        day = synthetic_day(104, payments=N, psps=PARSED_PSPS)
        r = emulator_intake(day)
    finally:
        if proc is not None:
            em.stop_all([proc])
    small_parse, _ = parse_time(day)
    rate = r["lines"] / r["wall_s"]
    print(
        f"intake on the Firestore emulator: {r['lines']} lines in {r['wall_s']:.1f}s = {rate:,.0f} lines/s; "
        f"ratio to parsing {small_parse / r['wall_s']:.3f}x; {r['closed']}/{r['payouts']} payouts closed; "
        f"{r['facts']} facts recorded beforehand at {r['facts'] / r['facts_s']:,.0f}/s"
    )
    per = 1_000_000 / r["lines"]
    firestore = (r["reads"] * READ + r["writes"] * WRITE) * per
    cpu = r["cpu_s"] * VCPU_S * per
    requests = len(day.batches) * RUN_REQ * per  # one invocation per report file
    events = r["payouts"] * PUBSUB_PER_MSG * per
    ms = 1000 * r["cpu_s"] / r["lines"]
    print(
        f"cost per million settlement lines: Firestore ${firestore:.2f} ({r['reads'] / r['lines']:.2f} reads, "
        f"{r['writes'] / r['lines']:.2f} writes per line) + CPU ${cpu:.2f} ({ms:.2f} ms/line) "
        f"+ requests ${requests:.4f} + events ${events:.4f} = ${firestore + cpu + requests + events:.2f}"
    )
    refs = sum(len(m.fact_our_refs(f)) for f in day.facts) / len(day.facts)
    fact_cost = ((2 + refs) * WRITE + refs * READ + PUBSUB_PER_MSG + RUN_REQ) * 1_000_000
    print(
        f"per million payment facts (entry + group create, {refs:.1f} our-reference index writes and waiting-group "
        f"reads, one push each): ${fact_cost:.2f}"
    )


if __name__ == "__main__":
    main()
