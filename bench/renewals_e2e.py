"""Renewals end to end on the local stack: N due subscriptions, one billing tick, until every one is paid.

Path measured (wall clock from the tick to the last subscription with its period paid):
tick -> planner fan-out -> shard ticks (indexed query, claims) -> renewals-due -> invoices function
(draft, gapless number, tax, PDF archived to Cloud Storage in group objects) -> invoice-events -> collector
-> Stripe SDK -> local Stripe-shaped stub -> payment-events -> the invoices function (and, filtered out by
the subscription unless a webhook reported it, outcomes) -> subscription-events. Subscription filters of
``infra/topology.yaml`` are applied by the local stack's push proxy (the emulator ignores them), so
filtered messages cost no request here either.

Figures: renewals/s; per renewal and per function (renewals = planner + collector + outcomes, split by
the event type each delivery handled; invoices), Firestore reads and writes, Pub/Sub messages, Cloud
Storage operations and requests, all counted at the clients (``USAGE_METERING=1``: one ``usage`` log line
per delivery, ``shared.usage``), and the CPU time of each function's processes; RenewalDue published per
renewal (1.00 = no re-send); the list-price cost per million renewals of the WHOLE chain.
Baseline: the goal of $15 per million renewals (ratio = our cost / $15; below 1.0 meets it).

List prices and the compute model: ``bench/_cost.py`` (Firestore at the location production deploys, the
stack's region, europe-west1: $0.033/100k reads, $0.099/100k writes; printed beside: the same run at a
multi-region location's $0.06/$0.18 (eur3, the former default); Pub/Sub $40/TiB, 1 KB
minimum per publish and per push delivery; Cloud Run functions $0.40/million requests, $0.000024/vCPU-s,
$0.0000025/GiB-s at the topology's size; Cloud Storage Class A $0.005/1,000, Class B $0.0004/1,000).

Delivery: a renewal run is a burst; in the cloud Pub/Sub push delivers it concurrently, up to each function's
``concurrency`` (``infra/topology.yaml``), which is what the numbering and archive group commits amortise over.
The bench measures the chain both ways, each in its own project, one after the other: at that concurrency
(the local stack's ``delivery="concurrent"``, ``infra/local/delivery.py``) and at a trickle (the emulator's own
push, at most two deliveries in flight per subscription: the figure measured before). ``BENCH_DELIVERY``
picks the runs (default ``concurrent,push``); ``BENCH_MAX_CONCURRENCY`` caps every function's concurrency.
Each run prints the delivered rate, the load average, invoices per numbering commit (counter writes per
invoice) and archive objects per invoice.

``BENCH_N`` scales N (default 10,000). The emulators named by ``*_EMULATOR_HOST`` are reused when they
answer; otherwise the stack starts its own.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bench import _cost
from bench._proc import group_cpu_s

N = int(os.environ.get("BENCH_N", "10000"))
GOAL_PER_MILLION = 15.0
FUNCTIONS = ("renewals", "invoices")  # the chain; other functions are not on the renewal path
STAGES = {  # the renewals function's deliveries by what they run
    "billing.tick": "planner",
    "invoice.finalized": "collector",
    "renewal.charge_retry_due": "collector",
}


def _reachable(hostport: str | None) -> bool:
    from infra.local import emulators as em

    if not hostport:
        return False
    host, _, port = hostport.replace("http://", "").partition(":")
    return port.isdigit() and em.port_open(host, int(port))


def _stack(log_dir: Path, delivery: str = "push") -> Any:
    from infra.local.acts import function_env
    from infra.local.stack import Ports, Stack

    hosts = [os.environ.get(k) for k in ("PUBSUB_EMULATOR_HOST", "FIRESTORE_EMULATOR_HOST", "STORAGE_EMULATOR_HOST")]
    reuse = all(_reachable(h) for h in hosts)
    if reuse:
        ps, fs, st = (int(str(h).rsplit(":", 1)[1]) for h in hosts)
        ports = Ports(pubsub=ps, firestore=fs, storage=st, functions_base=0)
    else:
        ports = Ports.free()
    return Stack(
        project=f"demo-bench-{uuid.uuid4().hex[:6]}",
        ports=ports,
        log_dir=log_dir,
        use_lock=False,
        reuse_emulators=reuse,
        extra_env={**function_env(), "USAGE_METERING": "1"},
        delivery=delivery,
        max_concurrency=int(os.environ.get("BENCH_MAX_CONCURRENCY") or 0) or None,
    )


def _seed(n: int, start: dt.datetime) -> None:
    from shared import clients
    from shared.renewals.repository import SUBSCRIPTIONS
    from shared.subscriptions import commands, service

    db = clients.firestore()
    batch, pending = db.batch(), 0
    for i in range(n):
        body = commands.CreateSubscription.model_validate(
            {
                "subscription_id": f"sub_bench_{i:07d}",
                "customer": {"id": f"cus-{i}", "name": f"Customer {i}", "country": "DE"},
                "seller_entity": "acme-de",
                "plan": {
                    "id": "pro",
                    "currency": "EUR",
                    "interval": "month",
                    "lines": [{"description": "Pro plan", "unit_amount": {"amount": 1500, "currency": "EUR"}}],
                },
                "anchor_zone": "Europe/Berlin",
                # One card per customer, as in production: one shared card would trip the risk step's velocity rule.
                "payment_method": {"psp": "stripe", "customer_ref": f"cus_{i}", "method_ref": f"pm_bench_{i:07d}"},
            }
        )
        doc, _ = service.new_document(body, start)
        batch.set(db.collection(SUBSCRIPTIONS).document(doc["id"]), doc)
        pending += 1
        if pending == 400:
            batch.commit()
            batch, pending = db.batch(), 0
    if pending:
        batch.commit()


def _paid(target_index: int) -> int:
    from google.cloud.firestore_v1.base_query import FieldFilter

    from shared import clients

    q = clients.firestore().collection("subscriptions").where(filter=FieldFilter("paid_index", "==", target_index))
    result: Any = q.count().get()  # type: ignore[call-arg]
    return int(result[0][0].value)


def _log_lines(log_file: Path, offset: int) -> list[str]:
    """A function's log lines written since ``offset`` (its size before the run)."""
    with log_file.open("rb") as f:
        f.seek(offset)
        return f.read().decode(errors="replace").splitlines()


def _planner_rate(log_file: Path, offset: int) -> tuple[int, float]:
    """RenewalDue claims and their rate, from the first to the last claim of the run (log from ``offset``)."""
    times = []
    for line in _log_lines(log_file, offset):
        if '"renewal bill"' in line:
            try:
                times.append(dt.datetime.fromisoformat(json.loads(line)["time"]))
            except (ValueError, KeyError):
                continue
    if len(times) < 2:
        return len(times), 0.0
    span = (max(times) - min(times)).total_seconds()
    return len(times), len(times) / span if span > 0 else 0.0


def _stage(event_type: str) -> str:
    if event_type.startswith("payment."):
        return "outcomes"
    return STAGES.get(event_type, event_type)


def _numbering(log_file: Path, offset: int) -> tuple[int, int]:
    """(numbering commits, invoices numbered) from the invoices function's log: each commit writes the counter."""
    commits = numbered = 0
    for line in _log_lines(log_file, offset):
        if '"numbers allocated"' in line:
            try:
                numbered += int(json.loads(line).get("numbered", 0))
            except ValueError:
                continue
            commits += 1
    return commits, numbered


@dataclass
class Run:
    """What one delivery mode measured (counts from the log lines, CPU from the processes)."""

    delivery: str
    paid: int = 0
    elapsed: float = 0.0
    seed_s: float = 0.0
    charges: int = 0
    planned: int = 0
    planner_rate: float = 0.0
    filtered: int = 0
    load: tuple[float, float] = (0.0, 0.0)  # 1-minute load average at the tick and at the end
    peaks: dict[str, int] = field(default_factory=dict)
    limits: dict[str, int] = field(default_factory=dict)
    numbering: tuple[int, int] = (0, 0)
    tallies: dict[str, tuple[_cost.Tally, dict[str, _cost.Tally]]] = field(default_factory=dict)
    cpu: dict[str, float] = field(default_factory=dict)
    topo: Any = None


def _run(delivery: str) -> Run:
    """Seed N due subscriptions in a fresh project, tick once, wait until every one is paid."""
    from infra.local.acts import renewals as act
    from infra.local.stack import running
    from shared.config import reset_settings

    log_dir = Path(os.environ.get("BENCH_LOG_DIR") or (Path(__file__).resolve().parents[1] / ".stack" / "bench-logs"))
    stack = _stack(log_dir / delivery, delivery)
    run = Run(delivery)
    with running(stack):
        for k, v in stack.emulator_env.items():
            os.environ[k] = v
        reset_settings()
        t_seed = time.monotonic()
        _seed(N, act.T0)
        run.seed_s = time.monotonic() - t_seed
        procs = {p.name: p for p in stack.processes if p.name in FUNCTIONS}
        logs = {name: stack.log_dir / f"fn-{name}.log" for name in FUNCTIONS}
        offsets = {name: f.stat().st_size if f.exists() else 0 for name, f in logs.items()}
        cpu0 = {name: group_cpu_s(p.proc.pid) for name, p in procs.items() if p.proc is not None}
        # Distinct idempotency keys charged during this run (a run in the same process repeats the keys).
        requests0 = len(act.stub().requests)
        load0 = os.getloadavg()[0]
        t0 = time.monotonic()
        act.tick(act.T0)
        deadline = t0 + max(300.0, N / 2)
        while time.monotonic() < deadline:
            time.sleep(2.0)
            run.paid = _paid(0)
            if run.paid >= N:
                break
        run.elapsed = time.monotonic() - t0
        run.load = (load0, os.getloadavg()[0])
        time.sleep(3.0)  # let the last deliveries finish and log
        run.cpu = {name: group_cpu_s(p.proc.pid) - cpu0[name] for name, p in procs.items() if p.proc is not None}
        run.topo = stack.topology
        run.planned, run.planner_rate = _planner_rate(logs["renewals"], offsets["renewals"])
        run.charges = len({r["key"] for r in act.stub().requests[requests0:]})
        if stack.bridge is not None:
            run.filtered = stack.bridge.filtered
            run.peaks = {name: stack.bridge.peak(name) for name in FUNCTIONS}
            run.limits = {name: stack.concurrency(name) for name in FUNCTIONS}
        elif stack.push_filter is not None:
            run.filtered = stack.push_filter.filtered
        run.numbering = _numbering(logs["invoices"], offsets["invoices"])
        for name in FUNCTIONS:
            run.tallies[name] = _cost.tally(_log_lines(logs[name], offsets[name]))
    return run


LABELS = {
    "concurrent": "a renewal run's concurrency (each function's topology concurrency, as push delivers a burst)",
    "push": "a trickle (the emulator's push: at most 2 deliveries in flight per subscription)",
}


def _report(run: Run) -> float:
    """Print one run's figures; its whole-chain cost per million renewals."""
    done, topo = max(run.paid, 1), run.topo
    subscribers = {t: sum(1 for s in topo.subscriptions.values() if s.topic == t) for t in topo.topics}
    print(f"renewals end to end at {LABELS.get(run.delivery, run.delivery)}:")
    print(f"  N={N} due subscriptions (seeded in {run.seed_s:.1f}s), {run.paid} paid")
    if run.paid < N:
        print(f"  WARNING: only {run.paid} of {N} paid before the deadline: per-renewal figures are overstated")
    print(
        f"  tick -> all paid: {run.elapsed:.1f}s = {run.paid / run.elapsed:.1f} renewals/s delivered "
        f"(PSP stub charges: {run.charges}; load average {run.load[0]:.1f} at the tick, {run.load[1]:.1f} at the end)"
    )
    if run.peaks:
        print(
            "  deliveries in flight at most: " + ", ".join(f"{k} {run.peaks[k]} of {run.limits[k]}" for k in FUNCTIONS)
        )
    print(f"  planner: {run.planned} RenewalDue claimed at {run.planner_rate:.0f}/s")
    per = run.filtered / done
    print(f"  subscription filters: {run.filtered} messages acked without a push ({per:.2f} per renewal)")
    print("  per renewal (counted at the clients):")
    hdr = "reads  writes  msgs  msg B  gcs A  gcs B  reqs  CPU ms"
    print(f"    {'':<22}{hdr}")
    grand: dict[str, float] = {}
    per_fn: dict[str, dict[str, float]] = {}
    location = _cost.deployed_firestore_location()
    fs = _cost.firestore_prices(location)
    renewal_due = 0
    archive_a = 0
    op_rows: list[tuple[str, dict[str, float]]] = []
    for name in FUNCTIONS:
        total, by_type = run.tallies[name]
        renewal_due += total.topics.get("renewals-due", 0)
        if name == "invoices":
            archive_a = by_type["renewal.due"].counts["storage_class_a"] if "renewal.due" in by_type else 0
        size = _cost.size_of(topo.functions[name].raw)
        fn_cpu = run.cpu.get(name, 0.0)
        c = _cost.costs(total, fn_cpu, size, subscribers, done / 1_000_000, fs)
        per_fn[name] = c
        for k, v in c.items():
            grand[k] = grand.get(k, 0.0) + v
        rows = [(f"{name} (all)", total, fn_cpu)]
        stages: dict[str, _cost.Tally] = {}
        for et, t in by_type.items():
            st = stages.setdefault(_stage(et) if name == "renewals" else et, _cost.Tally())
            st.deliveries += t.deliveries
            st.thread_cpu_ms += t.thread_cpu_ms
            for k in _cost.COUNTERS:
                st.counts[k] += t.counts[k]
        for st_name, t in sorted(stages.items()):
            # The process CPU shared out by the handling threads' CPU (claim and client threads included).
            share = t.thread_cpu_ms / total.thread_cpu_ms if total.thread_cpu_ms else 0.0
            rows.append((f"  {st_name}", t, fn_cpu * share))
        op_rows += [(label, _cost.operations(t, done / 1_000_000, fs)) for label, t, _ in rows]
        for label, t, cpu_s in rows:
            c2 = t.counts
            avg_b = c2["published_bytes"] / c2["published"] if c2["published"] else 0
            print(
                f"    {label:<22}{c2['reads'] / done:5.2f}  {c2['writes'] / done:6.2f}  {c2['published'] / done:4.2f}"
                f"  {avg_b:5.0f}  {c2['storage_class_a'] / done:5.2f}  {c2['storage_class_b'] / done:5.2f}"
                f"  {t.deliveries / done:4.2f}  {cpu_s * 1000 / done:6.1f}"
            )
    commits, numbered = run.numbering
    print(f"  RenewalDue published per renewal: {renewal_due / done:.3f} (1.000 = never re-sent)")
    print(
        f"  amortisation: {numbered / commits if commits else 0:.2f} invoices per numbering commit "
        f"({commits / max(numbered, 1):.2f} counter writes per invoice); "
        f"{archive_a / done:.2f} archive objects (Class A) per invoice"
    )
    print(f"  list-price cost per million renewals (prices in bench/_cost.py; Firestore at {location}, as deployed):")
    items = ("firestore", "pubsub", "storage", "requests", "compute")
    print(f"    {'':<10}" + "".join(f"{k:>11}" for k in items) + f"{'total':>11}")
    for name, c in [*per_fn.items(), ("chain", grand)]:
        cells = "".join(f"{'$' + format(c[k], '.2f'):>11}" for k in items)
        print(f"    {name:<10}{cells}{'$' + format(sum(c.values()), '.2f'):>11}")
    total_cost = sum(grand.values())
    print(
        f"    whole chain ${total_cost:.2f} per million renewals; ratio to the ${GOAL_PER_MILLION:.0f} goal: "
        f"{total_cost / GOAL_PER_MILLION:.2f} (Firestore at the list price of {location}, where production deploys it)"
    )
    print("  per operation, $ per million renewals (Pub/Sub and compute: per function above):")
    kinds = list(op_rows[0][1]) if op_rows else []
    print(f"    {'':<22}" + "".join(f"{k:>10}" for k in kinds))
    for label, ops in op_rows:
        print(f"    {label:<22}" + "".join(f"{'$' + format(ops[k], '.2f'):>10}" for k in kinds))
    fs_share = grand["firestore"]
    other = total_cost - fs_share + fs_share * _cost.FS_WRITE / fs[1]
    print(
        f"    the same run with Firestore at a multi-region location's list prices (eur3, nam5): ${other:.2f} per "
        f"million ({other / GOAL_PER_MILLION:.2f}x the goal); the goal is judged at {location}"
    )
    return total_cost


def main() -> None:
    modes = [m.strip() for m in os.environ.get("BENCH_DELIVERY", "concurrent,push").split(",") if m.strip()]
    results = []
    for mode in modes:
        run = _run(mode)
        results.append((run, _report(run)))
        print()
    if len(results) > 1:
        where = _cost.deployed_firestore_location()
        print(f"summary, whole chain, Firestore at {where} ($ per million renewals, ratio to the $15 goal):")
        for run, cost in results:
            print(
                f"  {run.delivery:<11} ${cost:6.2f}  {cost / GOAL_PER_MILLION:.2f}x   "
                f"{run.paid / run.elapsed:6.1f} renewals/s delivered, {run.paid} of {N} paid"
            )


if __name__ == "__main__":
    main()
