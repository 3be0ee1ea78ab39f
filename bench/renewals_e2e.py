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

List prices and the compute model: ``bench/_cost.py`` (Firestore $0.06/100k reads, $0.18/100k writes;
Pub/Sub $40/TiB, 1 KB minimum per publish and per push delivery; Cloud Run functions $0.40/million
requests, $0.000024/vCPU-s, $0.0000025/GiB-s at the topology's size; Cloud Storage Class A $0.005/1,000,
Class B $0.0004/1,000).

``BENCH_N`` scales N (default 10,000). The emulators named by ``*_EMULATOR_HOST`` are reused when they
answer; otherwise the stack starts its own.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import time
import uuid
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


def _stack(log_dir: Path) -> Any:
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


def _planner_rate(log_file: Path, offset: int) -> tuple[int, float]:
    """RenewalDue claims and their rate, from the first to the last claim of the run (log from ``offset``)."""
    times = []
    with log_file.open("rb") as f:
        f.seek(offset)
        text = f.read().decode(errors="replace")
    for line in text.splitlines():
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


def main() -> None:
    from infra.local.acts import renewals as act
    from infra.local.stack import running
    from shared.config import reset_settings

    log_dir = Path(os.environ.get("BENCH_LOG_DIR") or (Path(__file__).resolve().parents[1] / ".stack" / "bench-logs"))
    stack = _stack(log_dir)
    with running(stack):
        for k, v in stack.emulator_env.items():
            os.environ[k] = v
        reset_settings()
        t_seed = time.monotonic()
        _seed(N, act.T0)
        seed_s = time.monotonic() - t_seed
        procs = {p.name: p for p in stack.processes if p.name in FUNCTIONS}
        logs = {name: log_dir / f"fn-{name}.log" for name in FUNCTIONS}
        offsets = {name: f.stat().st_size if f.exists() else 0 for name, f in logs.items()}
        cpu0 = {name: group_cpu_s(p.proc.pid) for name, p in procs.items() if p.proc is not None}
        charges0 = act.stub().charges()
        t0 = time.monotonic()
        act.tick(act.T0)
        deadline = t0 + max(300.0, N / 2)
        paid = 0
        while time.monotonic() < deadline:
            time.sleep(2.0)
            paid = _paid(0)
            if paid >= N:
                break
        elapsed = time.monotonic() - t0
        time.sleep(3.0)  # let the last deliveries finish and log
        cpu = {name: group_cpu_s(p.proc.pid) - cpu0[name] for name, p in procs.items() if p.proc is not None}
        topo = stack.topology
        planned, planner_rate = _planner_rate(logs["renewals"], offsets["renewals"])
        filtered = stack.push_filter.filtered if stack.push_filter is not None else 0

    done = max(paid, 1)
    subscribers = {t: sum(1 for s in topo.subscriptions.values() if s.topic == t) for t in topo.topics}
    print(f"renewals end to end: N={N} due subscriptions (seeded in {seed_s:.1f}s), {paid} paid")
    if paid < N:
        print(f"  WARNING: only {paid} of {N} paid before the deadline: per-renewal figures are overstated")
    charges = act.stub().charges() - charges0
    print(f"  tick -> all paid: {elapsed:.1f}s = {paid / elapsed:.1f} renewals/s (PSP stub charges: {charges})")
    print(f"  planner: {planned} RenewalDue claimed at {planner_rate:.0f}/s")
    print(f"  subscription filters: {filtered} messages acked without a push ({filtered / done:.2f} per renewal)")
    print("  per renewal (counted at the clients):")
    hdr = "reads  writes  msgs  msg B  gcs A  gcs B  reqs  CPU ms"
    print(f"    {'':<22}{hdr}")
    grand: dict[str, float] = {}
    per_fn: dict[str, dict[str, float]] = {}
    renewal_due = 0
    op_rows: list[tuple[str, dict[str, float]]] = []
    for name in FUNCTIONS:
        with logs[name].open("rb") as f:
            f.seek(offsets[name])
            total, by_type = _cost.tally(f.read().decode(errors="replace").splitlines())
        renewal_due += total.topics.get("renewals-due", 0)
        size = _cost.size_of(topo.functions[name].raw)
        fn_cpu = cpu.get(name, 0.0)
        c = _cost.costs(total, fn_cpu, size, subscribers, done / 1_000_000)
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
        op_rows += [(label, _cost.operations(t, done / 1_000_000)) for label, t, _ in rows]
        for label, t, cpu_s in rows:
            k = t.counts
            avg_b = k["published_bytes"] / k["published"] if k["published"] else 0
            print(
                f"    {label:<22}{k['reads'] / done:5.2f}  {k['writes'] / done:6.2f}  {k['published'] / done:4.2f}"
                f"  {avg_b:5.0f}  {k['storage_class_a'] / done:5.2f}  {k['storage_class_b'] / done:5.2f}"
                f"  {t.deliveries / done:4.2f}  {cpu_s * 1000 / done:6.1f}"
            )
    print(f"  RenewalDue published per renewal: {renewal_due / done:.3f} (1.000 = never re-sent)")
    print("  list-price cost per million renewals (prices in bench/_cost.py):")
    items = ("firestore", "pubsub", "storage", "requests", "compute")
    print(f"    {'':<10}" + "".join(f"{k:>11}" for k in items) + f"{'total':>11}")
    for name, c in [*per_fn.items(), ("chain", grand)]:
        cells = "".join(f"{'$' + format(c[k], '.2f'):>11}" for k in items)
        print(f"    {name:<10}{cells}{'$' + format(sum(c.values()), '.2f'):>11}")
    total_cost = sum(grand.values())
    print(
        f"    whole chain ${total_cost:.2f} per million renewals; ratio to the ${GOAL_PER_MILLION:.0f} goal: "
        f"{total_cost / GOAL_PER_MILLION:.2f} (Firestore at the multi-region list price of the deployed eur3)"
    )
    print("  per operation, $ per million renewals (Pub/Sub and compute: per function above):")
    kinds = list(op_rows[0][1]) if op_rows else []
    print(f"    {'':<22}" + "".join(f"{k:>10}" for k in kinds))
    for label, ops in op_rows:
        print(f"    {label:<22}" + "".join(f"{'$' + format(ops[k], '.2f'):>10}" for k in kinds))
    fs_share = grand["firestore"]
    regional = total_cost - fs_share + fs_share * _cost.FS_REGIONAL[1] / _cost.FS_WRITE
    print(
        f"    for comparison only, Firestore at a regional location's list prices (us-central1, half): "
        f"${regional:.2f} per million ({regional / GOAL_PER_MILLION:.2f}x the goal); the goal is judged at eur3"
    )


if __name__ == "__main__":
    main()
