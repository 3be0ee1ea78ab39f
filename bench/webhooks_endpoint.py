"""Endpoint throughput and latency of the webhooks function on the local stack, against a bare function.

Both run as functions-framework processes on the same Firestore and Pub/Sub emulators (reused when
FIRESTORE_EMULATOR_HOST / PUBSUB_EMULATOR_HOST point at running ones on 127.0.0.1, else started here
on free ports and stopped at the end). Load: C client threads posting distinct, correctly signed
Stripe payment_intent.succeeded webhooks. The baseline (``bench/_bare_webhook.py``) does the same
Firestore create and Pub/Sub publish (same envelope attributes, a topic of its own) and nothing else.
Ratio = our throughput / baseline throughput, per round; goal at least 0.9. At the end every record
must have reached its final state (written after the answer). Everything talks to 127.0.0.1 only.

Statistics (the machine is shared, so one round's figure means little): R paired rounds in one run,
the side that goes first alternating from round to round (ABBA...), so a trend in the machine's load
hits both sides alike. Printed: n, the median of the per-round ratios with its quartiles and range, how
many rounds reached the goal, the pooled ratio (all requests over all wall time, per side), the
function's CPU per request (its whole process tree, from /proc) and the load average around each round.

Before/after in one run: ``BENCH_ENDPOINT_FORMER=<directory of a checkout of the former code>`` adds a third
side, that checkout's webhooks function (same emulators, same load); the order of the three sides rotates
from round to round, and its ratios and CPU are printed next to ours.
"""

from __future__ import annotations

import concurrent.futures
import json
import os
import statistics
import sys
import tempfile
import time
import uuid
from pathlib import Path

import requests

from bench._proc import group_cpu_s
from infra.local import emulators as em
from infra.local.topology import ROOT

REQUESTS = int(os.environ.get("BENCH_ENDPOINT_REQUESTS", "250"))
ROUNDS = int(os.environ.get("BENCH_ENDPOINT_ROUNDS", "12"))
GOAL = 0.9
CONCURRENCY = int(os.environ.get("BENCH_ENDPOINT_CONCURRENCY", "8"))
SECRET = "whsec_bench_not_a_secret"
FORMER = os.environ.get("BENCH_ENDPOINT_FORMER", "")


def _local(var: str) -> str | None:
    value = os.environ.get(var, "")
    host, _, port = value.partition(":")
    if host == "127.0.0.1" and port.isdigit() and em.port_open(host, int(port)):
        return value
    return None


def _bodies(n: int) -> list[bytes]:
    now = int(time.time())
    out = []
    for i in range(n):
        ev = {
            "id": f"evt_bench_{uuid.uuid4().hex}",
            "object": "event",
            "type": "payment_intent.succeeded",
            "created": now,
            "livemode": False,
            "data": {
                "object": {
                    "id": f"pi_bench_{i}_{uuid.uuid4().hex[:8]}",
                    "object": "payment_intent",
                    "amount_received": 2000,
                    "currency": "eur",
                    "metadata": {"invoice_id": f"INV-BENCH-{i}"},
                }
            },
        }
        out.append(json.dumps(ev, separators=(",", ":")).encode())
    return out


def _load(url: str, bodies: list[bytes]) -> tuple[float, list[float], int]:
    from shared.psp.signing import stripe_header

    session_local = __import__("threading").local()

    def one(body: bytes) -> tuple[float, int]:
        s = getattr(session_local, "s", None)
        if s is None:
            s = session_local.s = requests.Session()
        headers = {"Content-Type": "application/json", "Stripe-Signature": stripe_header(body, SECRET)}
        t0 = time.perf_counter()
        status = s.post(url, data=body, headers=headers, timeout=30).status_code
        return time.perf_counter() - t0, status

    t0 = time.perf_counter()
    with concurrent.futures.ThreadPoolExecutor(CONCURRENCY) as pool:
        results = list(pool.map(one, bodies))
    wall = time.perf_counter() - t0
    bad = sum(1 for _, st in results if st != 200)
    return wall, sorted(r[0] for r in results), bad


def _pct(sorted_s: list[float], p: float) -> float:
    return sorted_s[min(len(sorted_s) - 1, round(p * (len(sorted_s) - 1)))]


def main() -> None:
    project = f"demo-bench-{uuid.uuid4().hex[:8]}"
    log_dir = Path(tempfile.mkdtemp(prefix="bench-webhooks-"))
    started: list[em.ManagedProcess] = []
    try:
        fs, ps = _local("FIRESTORE_EMULATOR_HOST"), _local("PUBSUB_EMULATOR_HOST")
        if not (fs and ps):
            em.check_prerequisites()
            fs_port, ps_port = em.free_ports(2)
            emus = [em.firestore(fs_port, log_dir), em.pubsub(ps_port, project, log_dir)]
            started += emus
            em.start_all(emus)
            fs, ps = emus[0].address, emus[1].address
        env = {
            **{k: v for k, v in os.environ.items() if not k.startswith(("FIRESTORE_", "PUBSUB_", "STORAGE_"))},
            "GOOGLE_CLOUD_PROJECT": project,
            "FIRESTORE_EMULATOR_HOST": fs,
            "PUBSUB_EMULATOR_HOST": ps,
            "PYTHONPATH": str(ROOT),
            "PYTHONWARNINGS": "ignore",
            "STRIPE_WEBHOOK_SECRETS": SECRET,
            "LOG_LEVEL": "WARNING",
        }
        os.environ.update(
            {k: env[k] for k in ("GOOGLE_CLOUD_PROJECT", "FIRESTORE_EMULATOR_HOST", "PUBSUB_EMULATOR_HOST")}
        )
        from shared.config import reset_settings

        reset_settings()
        from google.cloud.pubsub_v1 import PublisherClient

        from bench._bare_webhook import TOPIC as BARE_TOPIC

        for topic in ("payment-events", BARE_TOPIC):
            PublisherClient().create_topic(name=f"projects/{project}/topics/{topic}")
        exe = str(Path(sys.executable).with_name("functions-framework"))
        fns = {}
        sides = [
            ("webhooks", ROOT / "functions" / "webhooks" / "main.py", "webhooks", ROOT),
            ("bare", ROOT / "bench" / "_bare_webhook.py", "bare", ROOT),
        ]
        if FORMER:
            former = Path(FORMER).resolve()
            sides.append(("former", former / "functions" / "webhooks" / "main.py", "webhooks", former))
        procs = {}
        ports = em.free_ports(len(sides))  # distinct (em.free_ports)
        for (name, source, target, root), port in zip(sides, ports, strict=True):
            p = em.ManagedProcess(
                f"bench-{name}",
                [exe, f"--target={target}", f"--source={source}", "--host=127.0.0.1", f"--port={port}"],
                "127.0.0.1",
                port,
                None,
                log_dir / f"{name}.log",
                {**env, "PYTHONPATH": str(root)},
            )
            started.append(p)
            procs[name] = p
            fns[name] = f"http://127.0.0.1:{port}"
        em.start_all(list(procs.values()))
        urls = {name: fns[name] + ("" if name == "bare" else "/stripe") for name in fns}
        # Warm every side (first client creation, imports), then measure alternately to share any noise.
        for url in urls.values():
            _load(url, _bodies(40))
        # Alternate short rounds so that load from anything else on the machine hits every side alike.
        names = ["bare", "webhooks", *(["former"] if FORMER else [])]
        samples: dict[str, list[tuple[float, list[float], int]]] = {name: [] for name in names}
        walls = dict.fromkeys(names, 0.0)
        cpu = dict.fromkeys(names, 0.0)
        pgids = {name: p.proc.pid for name, p in procs.items()}  # type: ignore[union-attr]
        loads: list[float] = []
        for r in range(ROUNDS):
            order: tuple[str, ...]
            if len(names) == 2:
                order = ("bare", "webhooks") if r % 2 == 0 else ("webhooks", "bare")
            else:  # rotate, so that each side goes first, second and third equally often
                order = tuple(names[(r + i) % len(names)] for i in range(len(names)))
            loads.append(_load1())
            for name in order:
                c0 = group_cpu_s(pgids[name])
                wall, lat, bad = _load(urls[name], _bodies(REQUESTS))
                cpu[name] += group_cpu_s(pgids[name]) - c0
                walls[name] += wall
                samples[name].append((REQUESTS / wall, lat, bad))
        loads.append(_load1())
        _report(samples, walls, cpu, loads)
        sent = (ROUNDS * REQUESTS + 40) * (2 if FORMER else 1)  # both webhooks sides write to one project
        print(f"  final states: {_final_states(sent)}; load average {_loadavg()}")
    finally:
        em.stop_all(started)


def _report(
    samples: dict[str, list[tuple[float, list[float], int]]],
    walls: dict[str, float],
    cpu: dict[str, float],
    loads: list[float],
) -> None:
    n = len(samples["bare"])
    print(
        f"n = {n} rounds ({len(samples)} sides, order alternating) of {REQUESTS} distinct signed Stripe webhooks, "
        f"{CONCURRENCY} concurrent clients, emulators on 127.0.0.1; 1-min load average during the run "
        f"{min(loads):.1f}-{max(loads):.1f} (median {statistics.median(loads):.1f}) on {os.cpu_count()} cores"
    )
    labels = {
        "bare": "bare create+publish (baseline)",
        "webhooks": "webhooks function /stripe",
        "former": "former webhooks function",
    }
    figures = {}
    for name, rounds in samples.items():
        lat = sorted(x for _, r, _ in rounds for x in r)
        tput = statistics.median(t for t, _, _ in rounds)
        figures[name] = (tput, _pct(lat, 0.5), _pct(lat, 0.99), sum(b for _, _, b in rounds))
        tput, p50, p99, bad = figures[name]
        per_req = cpu[name] / (n * REQUESTS) * 1000
        print(
            f"  {labels[name]:<32} {tput:7.1f} req/s median   p50 {p50 * 1000:6.1f} ms   p99 {p99 * 1000:6.1f} ms   "
            f"function CPU {per_req:5.2f} ms/req   non-200 {bad}"
        )
    for name, rounds in samples.items():
        print(f"  {name} req/s per round: {', '.join(f'{t:.1f}' for t, _, _ in rounds)}")
    for name in [k for k in ("webhooks", "former") if k in samples]:
        ratios = [w[0] / b[0] for w, b in zip(samples[name], samples["bare"], strict=True)]
        q1, _, q3 = statistics.quantiles(ratios, n=4, method="inclusive") if n > 1 else (ratios[0],) * 3
        reached = sum(r >= GOAL for r in ratios)
        print(
            f"  throughput ratio {name} / baseline: median {statistics.median(ratios):.2f} of n={n} rounds, "
            f"quartiles {q1:.2f}-{q3:.2f}, range {min(ratios):.2f}-{max(ratios):.2f}; {reached}/{n} rounds >= "
            f"{GOAL}; pooled {walls['bare'] / walls[name]:.2f} (goal >= {GOAL})"
        )
        print(f"  per-round ratios: {', '.join(f'{r:.2f}' for r in ratios)}")
        print(
            f"  p50 ratio {figures[name][1] / figures['bare'][1]:.2f}, "
            f"p99 ratio {figures[name][2] / figures['bare'][2]:.2f} (latency, lower is better); "
            f"CPU ratio {cpu[name] / cpu['bare']:.2f}"
        )


def _load1() -> float:
    return float(Path("/proc/loadavg").read_text().split()[0])


def _loadavg() -> str:
    return " ".join(Path("/proc/loadavg").read_text().split()[:3])


def _final_states(expected: int) -> str:
    """Count the records by state once the final writes (made after each answer) had time to land."""
    from shared import clients
    from shared.webhooks.store import COLLECTION

    states: dict[str, int] = {}
    for _ in range(50):
        states = {}
        for doc in clients.firestore().collection(COLLECTION).select(["state"]).stream():
            state = (doc.to_dict() or {}).get("state", "?")
            states[state] = states.get(state, 0) + 1
        if states.get("published", 0) >= expected:
            break
        time.sleep(0.2)
    return ", ".join(f"{k} {v}" for k, v in sorted(states.items())) + f" (of {expected} webhooks)"


if __name__ == "__main__":
    main()
