"""Renewals end to end on the local stack: N due subscriptions, one billing tick, until every one is paid.

Path measured (wall clock from the tick to the last subscription with its period paid):
tick -> planner fan-out -> shard ticks (indexed query, transactional claims) -> renewals-due ->
invoices function -> invoice-events -> collector ->
Stripe SDK -> local Stripe-shaped stub -> payment-events -> outcomes -> subscription-events.

Figures: renewals/s; Firestore reads and writes and Pub/Sub messages per renewal, counted in the
renewals code paths (``shared.renewals.usage``, one log line per delivery) plus the invoices
function's messages seen on invoice-events; CPU seconds of the renewals function process; the
list-price cost per million renewals.
Baseline: the goal of $10 per million renewals (ratio = our cost / $10; below 1.0 meets it).

List prices used (assumptions, USD, us-central1, no free tier):
  Firestore          reads $0.06 / 100k, writes $0.18 / 100k
  Pub/Sub            $40 / TiB of throughput; every publish and every delivery billed at >= 1 KB
  Cloud Run (gen2)   $0.40 / million requests, $0.000024 / vCPU-s, $0.0000025 / GiB-s
  CPU estimate: the function's measured CPU seconds as billed vCPU-seconds (an instance is billed
  while it serves, and a CPU-bound instance's billable time is its CPU time divided by its vCPU share),
  memory as instance-seconds x 0.5 GiB with the 512 MiB / 0.333 vCPU size of the topology.

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

N = int(os.environ.get("BENCH_N", "10000"))
GOAL_PER_MILLION = 10.0
FS_READ, FS_WRITE = 0.06 / 100_000, 0.18 / 100_000
PUBSUB_PER_BYTE = 40.0 / 2**40
REQUEST, VCPU_S, GIB_S = 0.40 / 1_000_000, 0.000024, 0.0000025
VCPU_SHARE, MEMORY_GIB = 0.333, 0.5


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
        extra_env=function_env(),
    )


def _cpu_seconds(pgid: int) -> float:
    """User + system CPU of every live process in the function's process group."""
    ticks = 0
    for d in Path("/proc").iterdir():
        if not d.name.isdigit():
            continue
        try:
            fields = (d / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[2]) == pgid:  # fields after "(comm)": state ppid pgrp ... utime(11) stime(12)
            ticks += int(fields[11]) + int(fields[12])
    return ticks / os.sysconf("SC_CLK_TCK")


def _seed(n: int, start: dt.datetime) -> None:
    from shared import clients
    from shared.renewals import service
    from shared.renewals.repository import SUBSCRIPTIONS

    db = clients.firestore()
    batch, pending = db.batch(), 0
    for i in range(n):
        body = service.CreateSubscription.model_validate(
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
                "payment_method": {"psp": "stripe", "customer_ref": f"cus_{i}", "method_ref": "pm_card_visa"},
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


def _usage(log_file: Path) -> dict[str, Any]:
    total: dict[str, Any] = {
        "reads": 0,
        "writes": 0,
        "published": 0,
        "published_bytes": 0,
        "topics": {},
        "deliveries": 0,
    }
    for line in log_file.read_text(errors="replace").splitlines():
        if '"renewals usage"' not in line:
            continue
        try:
            rec = json.loads(line)
        except ValueError:
            continue
        u = rec.get("usage") or {}
        total["deliveries"] += 1
        for k in ("reads", "writes", "published", "published_bytes"):
            total[k] += int(u.get(k, 0))
        for t, c in (u.get("topics") or {}).items():
            total["topics"][t] = total["topics"].get(t, 0) + c
    return total


def _planner_rate(log_file: Path) -> tuple[int, float]:
    """RenewalDue publications and their rate, from the first to the last claim of the run."""
    times = []
    for line in log_file.read_text(errors="replace").splitlines():
        if '"renewal bill"' in line:
            try:
                times.append(dt.datetime.fromisoformat(json.loads(line)["time"]))
            except (ValueError, KeyError):
                continue
    if len(times) < 2:
        return len(times), 0.0
    span = (max(times) - min(times)).total_seconds()
    return len(times), len(times) / span if span > 0 else 0.0


def _count_messages(path: str) -> tuple[dict[str, int], int]:
    """Drain a pull subscription: messages by event type, and their total billable size."""
    import warnings

    from google.cloud.pubsub_v1 import SubscriberClient

    client = SubscriberClient()
    counts: dict[str, int] = {}
    size = 0
    while True:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)
            resp = client.pull(request={"subscription": path, "max_messages": 1000, "return_immediately": True})
        if not resp.received_messages:
            return counts, size
        for m in resp.received_messages:
            et = m.message.attributes.get("event_type", "?")
            counts[et] = counts.get(et, 0) + 1
            size += max(1024, len(m.message.data) + sum(len(k) + len(v) for k, v in m.message.attributes.items()))
        client.acknowledge(subscription=path, ack_ids=[m.ack_id for m in resp.received_messages])


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
        from google.cloud.pubsub_v1 import SubscriberClient

        invoice_tap = SubscriberClient().subscription_path(stack.project, "bench-invoice-events-tap")
        SubscriberClient().create_subscription(
            name=invoice_tap, topic=f"projects/{stack.project}/topics/invoice-events"
        )
        fn = next(p for p in stack.processes if p.name == "renewals")
        assert fn.proc is not None
        log_file = log_dir / "fn-renewals.log"
        cpu0 = _cpu_seconds(fn.proc.pid)
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
        time.sleep(2.0)  # let the last usage lines land
        cpu = _cpu_seconds(fn.proc.pid) - cpu0
        usage = _usage(log_file)
        topo = stack.topology
        invoice_msgs, invoice_bytes = _count_messages(invoice_tap)
        planned, planner_rate = _planner_rate(log_file)

    # Usage covers the whole run (every claim, charge and outcome), so divide by what was renewed; a run
    # cut short by the deadline over-counts per renewal and says so.
    done = max(paid, 1)
    per = {k: usage[k] / done for k in ("reads", "writes", "published")}
    subs_per_topic = {t: sum(1 for s in topo.subscriptions.values() if s.topic == t) for t in topo.topics}
    avg_bytes = usage["published_bytes"] / max(usage["published"], 1)
    billable = max(1024.0, avg_bytes)
    msg_units = sum(c * (1 + subs_per_topic.get(t, 0)) for t, c in usage["topics"].items())
    # The invoices function's own messages on invoice-events, seen by a tap.
    invoices_pubsub = invoice_bytes * (1 + subs_per_topic.get("invoice-events", 0)) * PUBSUB_PER_BYTE / done
    pubsub = msg_units * billable * PUBSUB_PER_BYTE / done
    firestore = per["reads"] * FS_READ + per["writes"] * FS_WRITE
    requests = usage["deliveries"] / done * REQUEST
    cpu_per = cpu / done
    compute = cpu_per * VCPU_S + (cpu_per / VCPU_SHARE) * MEMORY_GIB * GIB_S
    total = (firestore + pubsub + requests + compute) * 1_000_000
    total_with_invoice_msgs = total + invoices_pubsub * 1_000_000

    print(f"renewals end to end: N={N} due subscriptions (seeded in {seed_s:.1f}s), {paid} paid")
    if paid < N:
        print(f"  WARNING: only {paid} of {N} paid before the deadline: per-renewal figures are overstated")
    charges = act.stub().charges() - charges0
    print(f"  tick -> all paid: {elapsed:.1f}s = {paid / elapsed:.1f} renewals/s (PSP stub charges: {charges})")
    print(f"  per renewal (renewals function): {per['reads']:.2f} Firestore reads, {per['writes']:.2f} writes,")
    pushes = usage["deliveries"] / done
    print(f"    {per['published']:.2f} Pub/Sub messages published (avg {avg_bytes:.0f} B), {pushes:.2f} pushes handled")
    print(f"    messages by topic: {json.dumps({t: round(c / done, 2) for t, c in sorted(usage['topics'].items())})}")
    print(f"    renewals function CPU: {cpu_per * 1000:.2f} ms per renewal")
    print(f"  planner: {planned} RenewalDue claimed and published at {planner_rate:.0f}/s")
    seen = {k: round(v / done, 2) for k, v in sorted(invoice_msgs.items())}
    print(f"  invoice-events seen per renewal: {json.dumps(seen)}")
    print("  list-price cost per million renewals (prices in the module doc):")
    parts = {"Firestore": firestore, "Pub/Sub": pubsub, "requests": requests, "compute": compute}
    print("    " + "  ".join(f"{k} ${v * 1e6:.2f}" for k, v in parts.items()))
    print(f"    renewals total ${total:.2f} per million; ratio to the $10 goal: {total / GOAL_PER_MILLION:.2f}")
    print(
        f"    + the invoices function's Pub/Sub messages ${invoices_pubsub * 1e6:.2f}"
        f" = ${total_with_invoice_msgs:.2f}"
        " (its Firestore work, requests and compute are not instrumented here)"
    )


if __name__ == "__main__":
    main()
