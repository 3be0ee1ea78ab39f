"""Cold start of each function from its built bundle: process start -> first request answered.

For every function in ``infra/topology.yaml``: build its bundle (``infra.bundle``), start
functions-framework on it in a fresh process (cwd = the bundle, the repository NOT on ``sys.path``, a
free port, a fresh project on the emulators) and time until its first request is answered. The request
is a real one against the emulators (webhooks: a signed Stripe delivery that is stored and published;
probe: a publish; subscriptions: a lookup answered 404 after its Firestore read; the Pub/Sub functions:
a push they handle and acknowledge), so the figure includes the lazy imports and client set-up the
first request pays.

Baseline: a bare functions-framework function of the same signature that imports the same client
libraries at module level (firestore and pubsub; storage too for invoices) and answers at once. Ratio =
function / baseline (goal at most 1.3).

Both folders are byte-compiled once before the runs (the libraries were, by pip). Statistics (a shared
machine makes single starts vary several-fold): n paired runs per function, the side that starts first
alternating (ABBA), so load trends hit both alike. Printed per function: the median wall time of each
side with its range, the ratio of the medians, the median and quartiles of the per-pair ratios, and the
CPU time (user + system) the process tree used until its first answer, which the machine's load
disturbs far less than wall time, with its system share and the minor page faults (a deterministic
count: an import done in gunicorn's worker instead of before the fork shows there as copied pages); plus
the load average around the run.

    python -m bench cold_start                 # needs the emulators: FIRESTORE/PUBSUB/STORAGE_EMULATOR_HOST
    BENCH_COLD_RUNS=9 python -m bench cold_start webhooks invoices
    BENCH_COLD_FORMER=main python -m bench cold_start invoices   # former code / current / bare, rotating
"""

from __future__ import annotations

import base64
import compileall
import datetime as dt
import http.client
import json
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from pathlib import Path

from bench._proc import group_counters
from infra.local import emulators as em

ROOT = Path(__file__).resolve().parents[1]
RUNS = int(os.environ.get("BENCH_COLD_RUNS", "7"))
GOAL = 1.3
STRIPE_SECRET = "whsec_cold_start_not_a_secret"
# Client libraries each function uses (the baseline imports exactly these).
CLIENT_LIBRARIES = {"invoices": ("firestore", "pubsub", "storage")}
DEFAULT_LIBRARIES = ("firestore", "pubsub")
_IMPORTS = {
    "firestore": "google.cloud.firestore",
    "pubsub": "google.cloud.pubsub_v1",
    "storage": "google.cloud.storage",
}


@dataclass(frozen=True)
class FirstRequest:
    """One request a function answers on its first call, and what it needs to be answerable."""

    method: str
    path: str
    body: bytes
    headers: Mapping[str, str]
    ok: tuple[int, ...]  # statuses that mean "handled as intended"
    topics: tuple[str, ...] = ()  # created in the project beforehand
    env: Mapping[str, str] = field(default_factory=dict)


def _push(project: str, topic: str, data: bytes, attributes: Mapping[str, str]) -> FirstRequest:
    """A Pub/Sub push body as the subscription posts it (functions-framework turns it into a CloudEvent)."""
    now = dt.datetime.now(dt.UTC).isoformat().replace("+00:00", "Z")
    body = {
        "message": {
            "data": base64.b64encode(data).decode(),
            "attributes": dict(attributes),
            "messageId": uuid.uuid4().hex,
            "publishTime": now,
        },
        "subscription": f"projects/{project}/subscriptions/{topic}-cold-start",
    }
    headers = {"Content-Type": "application/json"}
    return FirstRequest("POST", f"/projects/{project}/topics/{topic}", json.dumps(body).encode(), headers, (200, 204))


def first_request(key: str, project: str, run: str) -> FirstRequest:
    """The first request for function ``key`` (built in the caller's process, which has the repository)."""
    from shared.events import build_message

    now = dt.datetime.now(dt.UTC)
    if key == "probe":
        body = json.dumps({"probe_id": f"cold-{run}"}).encode()
        return FirstRequest("POST", "/", body, {"Content-Type": "application/json"}, (202,), topics=("probes",))
    if key == "probe_sink":
        from shared.events.probe import ProbeRequested

        data, attrs = build_message(ProbeRequested(probe_id=f"cold-{run}"), idempotency_key=run, occurred_at=now)
        return _push(project, "probes", data, attrs)
    if key == "webhooks":
        from shared.psp import signing

        event = {
            "id": f"evt_cold_{run}",
            "object": "event",
            "type": "payment_intent.succeeded",
            "created": int(now.timestamp()),
            "livemode": False,
            "data": {
                "object": {
                    "id": f"pi_cold_{run}",
                    "object": "payment_intent",
                    "amount": 2900,
                    "amount_received": 2900,
                    "currency": "eur",
                    "metadata": {"customer_id": "cust-cold", "invoice_id": f"INV-COLD-{run}"},
                }
            },
        }
        body = json.dumps(event, separators=(",", ":")).encode()
        headers = {"Content-Type": "application/json", "Stripe-Signature": signing.stripe_header(body, STRIPE_SECRET)}
        return FirstRequest(
            "POST", "/stripe", body, headers, (200,), ("payment-events",), {"STRIPE_WEBHOOK_SECRETS": STRIPE_SECRET}
        )
    if key == "subscriptions":
        return FirstRequest("GET", f"/subscriptions/cold-{run}", b"", {}, (404,))
    if key == "console":
        # A search as Identity-Aware Proxy forwards it: every search probe reads Firestore once.
        headers = {"X-Goog-Authenticated-User-Email": "accounts.google.com:cold@example.com"}
        return FirstRequest("GET", f"/?q=cold-{run}", b"", headers, (200,))
    if key == "renewals":
        # A scheduler tick: the planner fans out one shard tick (a publish) for its single shard.
        from shared.renewals.messages import tick_attributes

        tick = _push(project, "billing-ticks", b"", tick_attributes())
        return replace(tick, topics=("billing-ticks",), env={"RENEWALS_SHARDS": "1"})
    if key == "backfill":
        # A scheduler tick with no PSP credentials configured: no account to list, acknowledged.
        tick = _push(project, "backfill-ticks", b"{}", {"event_type": "backfill.tick"})
        return replace(tick, topics=("backfill-ticks",))
    if key == "disputes":
        # A deadline tick with no dispute due: one query, acknowledged.
        tick = _push(project, "dispute-ticks", b"{}", {"event_type": "disputes.tick"})
        return replace(tick, topics=("dispute-ticks",))
    if key == "usage":
        # A batch of one event: checked at the edge and published as one message (no Firestore).
        raw = {"id": f"cold-{run}", "customer": "cust-cold", "event_name": "api_call", "timestamp": now.isoformat()}
        body = json.dumps({"events": [raw]}).encode()
        headers = {"Content-Type": "application/json"}
        return FirstRequest("POST", "/events", body, headers, (200,), topics=("usage-events",))
    if key == "usage_aggregator":
        # One usage batch of one event: dedup read, one id and one totals write, acknowledged.
        from shared.events.usage import UsageBatch, UsageEventIn

        one = UsageEventIn(id=f"cold-{run}", customer="cust-cold", event_name="api_call", timestamp=now)
        batch = UsageBatch(batch_id=f"cold-{run}", received_at=now, events=(one,))
        data, attrs = build_message(batch, idempotency_key=batch.batch_id, occurred_at=now)
        return replace(_push(project, "usage-events", data, attrs), topics=("usage-events",))
    if key in ("invoices", "reconciliation"):
        from shared.domain.money import Money
        from shared.events.payments import OurRefs, PaymentSucceeded

        fact = PaymentSucceeded(
            psp="stripe",
            psp_payment_id=f"pi_cold_{run}",
            livemode=False,
            amount=Money(2900, "EUR"),
            refs=OurRefs(invoice_id=f"INV-COLD-{run}"),
            psp_created_at=now,
        )
        data, attrs = build_message(fact, idempotency_key=fact.fact_key(), occurred_at=now)
        return _push(project, "payment-events", data, attrs)
    raise KeyError(f"no first request defined for function {key!r}")


def emulator_env() -> dict[str, str]:
    names = ("FIRESTORE_EMULATOR_HOST", "PUBSUB_EMULATOR_HOST", "STORAGE_EMULATOR_HOST")
    missing = [n for n in names if not os.environ.get(n)]
    if missing:
        raise SystemExit(f"set {', '.join(missing)} (e.g. run `make up` and export what it prints)")
    return {n: os.environ[n] for n in names}


def create_topics(project: str, topics: Sequence[str]) -> None:
    if not topics:
        return
    from google.cloud.pubsub_v1 import PublisherClient

    pub = PublisherClient()
    for t in topics:
        pub.create_topic(name=pub.topic_path(project, t))


def _process_env(project: str, extra: Mapping[str, str]) -> dict[str, str]:
    """The function's environment: no PYTHONPATH (only the bundle is importable), emulators, its settings."""
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    env.update(emulator_env())
    env.update({"GOOGLE_CLOUD_PROJECT": project, "PYTHONWARNINGS": "ignore", "LOG_LEVEL": "WARNING", **extra})
    return env


@contextmanager
def serving(
    folder: Path, target: str, signature_type: str, project: str, env: Mapping[str, str] = {}
) -> Iterator[tuple[subprocess.Popen[bytes], int, float]]:
    """functions-framework on ``folder/main.py`` in a fresh process: (process, port, monotonic start)."""
    port = em.free_port()
    cmd = [sys.executable, "-m", "functions_framework", "--source", "main.py", "--target", target]
    cmd += ["--signature-type", signature_type, "--port", str(port), "--host", "127.0.0.1"]
    t0 = time.monotonic()
    proc = subprocess.Popen(
        cmd,
        cwd=folder,
        env=_process_env(project, env),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        start_new_session=True,  # its gunicorn workers go with it
    )
    try:
        yield proc, port, t0
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
        if proc.stderr:
            proc.stderr.close()


def first_answer(proc: subprocess.Popen[bytes], port: int, req: FirstRequest, timeout_s: float = 120.0) -> int:
    """Wait for the port to accept, send ``req`` once, return the status (the caller timestamps it)."""
    deadline = time.monotonic() + timeout_s
    while True:
        if proc.poll() is not None:
            err = proc.stderr.read().decode(errors="replace") if proc.stderr else ""
            raise RuntimeError(f"functions-framework exited with {proc.returncode}:\n{err[-3000:]}")
        try:
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
            conn.connect()
            break
        except OSError:
            if time.monotonic() > deadline:
                raise TimeoutError(f"port {port} never accepted a connection") from None
            time.sleep(0.005)
    try:
        conn.request(req.method, req.path, body=req.body or None, headers=dict(req.headers))
        resp = conn.getresponse()
        resp.read()
        return resp.status
    finally:
        conn.close()


@dataclass(frozen=True)
class Start:
    """One cold start: wall seconds to the first answer, CPU seconds of the process tree until then (of which
    ``sys_s`` in the kernel) and its minor page faults."""

    wall_s: float
    cpu_s: float
    status: int
    sys_s: float = 0.0
    faults: int = 0


def cold_start(folder: Path, key: str, target: str, signature_type: str, project: str | None = None) -> Start:
    """Process start to the answer of the function's first request (the request is one it handles)."""
    project = project or f"demo-cold-{uuid.uuid4().hex[:10]}"
    req = first_request(key, project, uuid.uuid4().hex[:10])
    create_topics(project, req.topics)
    with serving(folder, target, signature_type, project, req.env) as (proc, port, t0):
        status = first_answer(proc, port, req)
        elapsed = time.monotonic() - t0
        used = group_counters(proc.pid)
    if status not in req.ok:
        raise RuntimeError(f"{key}: first request answered {status}, expected one of {req.ok}")
    return Start(elapsed, used.cpu_s, status, used.sys_s, used.minor_faults)


def baseline_folder(out: Path, key: str, signature_type: str) -> Path:
    """A bare function importing the client libraries ``key`` uses, answering at once."""
    folder = out / f"bare-{key}"
    folder.mkdir(parents=True, exist_ok=True)
    libs = CLIENT_LIBRARIES.get(key, DEFAULT_LIBRARIES)
    imports = "\n".join(f"import {_IMPORTS[lib]}  # noqa: F401" for lib in libs)
    if signature_type == "http":
        fn = "@functions_framework.http\ndef bare(request):\n    return flask.Response('{}', status=200)\n"
    else:
        fn = "@functions_framework.cloud_event\ndef bare(cloud_event):\n    return None\n"
    (folder / "main.py").write_text(f"import flask\nimport functions_framework\n{imports}\n\n\n{fn}")
    return folder


def baseline(folder: Path, key: str, signature_type: str) -> Start:
    project = f"demo-cold-{uuid.uuid4().hex[:10]}"
    req = first_request(key, project, uuid.uuid4().hex[:10])
    with serving(folder, "bare", signature_type, project) as (proc, port, t0):
        status = first_answer(proc, port, req)
        elapsed = time.monotonic() - t0
        used = group_counters(proc.pid)
    if status not in (200, 204):
        raise RuntimeError(f"bare function answered {status}")
    return Start(elapsed, used.cpu_s, status, used.sys_s, used.minor_faults)


def _compile(folder: Path) -> Path:
    """Byte-compile a folder once, as pip does for the client libraries at install time.

    Both sides then start from bytecode. Without it, with ``PYTHONDONTWRITEBYTECODE`` set (as on this
    machine) our modules would be compiled from source on every start while the libraries never are.
    """
    compileall.compile_dir(str(folder), quiet=1)
    return folder


def _load1() -> float:
    return float(Path("/proc/loadavg").read_text().split()[0])


def _quartiles(xs: Sequence[float]) -> tuple[float, float]:
    if len(xs) < 2:
        return xs[0], xs[0]
    q1, _, q3 = statistics.quantiles(xs, n=4, method="inclusive")
    return q1, q3


def former_tree(ref: str, out: Path) -> Path:
    """The repository as of git ``ref`` (``git archive``), to build the former code's bundles from."""
    dest = out / "former-src"
    dest.mkdir(parents=True)
    archive = subprocess.run(["git", "archive", ref], cwd=ROOT, check=True, capture_output=True).stdout
    subprocess.run(["tar", "-x", "-C", str(dest)], input=archive, check=True)
    return dest


def _sys_ms(starts: Sequence[Start]) -> float:
    return statistics.median(s.sys_s for s in starts) * 1000


def _faults(starts: Sequence[Start]) -> float:
    return statistics.median(s.faults for s in starts)


def _summary(label: str, ours: Sequence[Start], base: Sequence[Start]) -> tuple[str, float]:
    """One side against the baseline: median and range of wall times, ratio of medians, per-pair ratios, CPU."""
    o, b = statistics.median(s.wall_s for s in ours), statistics.median(s.wall_s for s in base)
    pairs = [x.wall_s / y.wall_s for x, y in zip(ours, base, strict=True)]
    q1, q3 = _quartiles(pairs)
    oc, bc = statistics.median(s.cpu_s for s in ours), statistics.median(s.cpu_s for s in base)
    text = (
        f"  {label:<8} {o * 1000:6.0f} ms ({min(s.wall_s for s in ours) * 1000:.0f}-"
        f"{max(s.wall_s for s in ours) * 1000:.0f})   ratio {o / b:.2f}   pairs median {statistics.median(pairs):.2f} "
        f"(quartiles {q1:.2f}-{q3:.2f}, {sum(p <= GOAL for p in pairs)}/{len(pairs)} <= {GOAL})   "
        f"CPU {oc * 1000:.0f} ms (ratio {oc / bc:.2f}; sys {_sys_ms(ours):.0f} ms, {_faults(ours):.0f} minor faults)"
    )
    return text, o / b


def main(names: Sequence[str] = ()) -> None:
    """Every function of the topology, or the ones named.

    ``BENCH_COLD_FORMER=<git ref>`` adds a third side, the same functions built from that commit: former
    code, current code and the bare function then start in rotating order in the same run, so a change is
    measured against the same load (``BENCH_COLD_FORMER=HEAD~3 python -m bench cold_start invoices``).
    """
    from infra.bundle import build, build_one
    from infra.local.topology import load

    emulator_env()
    # A terminated bench must still stop its functions-framework processes (the finally in serving()).
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    functions = load().functions
    former_ref = os.environ.get("BENCH_COLD_FORMER")
    with tempfile.TemporaryDirectory(prefix="cold-start-") as tmp:
        out = Path(tmp)
        folders = {f.name: f for f in build(names or None, out / "build")}
        former: dict[str, Path] = {}
        if former_ref:
            src = former_tree(former_ref, out)
            former = {k: build_one(k, out / "former", root=src) for k in folders}
        for folder in [*folders.values(), *former.values()]:
            _compile(folder)
        sides = ["current", "bare"] + (["former"] if former else [])
        print(
            f"n = {RUNS} rounds per function ({', '.join(sides)}; the order rotating each round); process start -> "
            f"first request answered; baseline = bare function importing the same client libraries; "
            f"{os.cpu_count()} cores" + (f"; former = {former_ref}" if former_ref else "")
        )
        worst = 0.0
        loads = [_load1()]
        for key, folder in folders.items():
            fn = functions[key]
            bare = _compile(baseline_folder(out, key, fn.signature_type))
            starts: dict[str, list[Start]] = {side: [] for side in sides}
            where = {"current": folder, "former": former.get(key, folder)}
            for r in range(RUNS):
                for side in sides[r % len(sides) :] + sides[: r % len(sides)]:
                    if side == "bare":
                        starts[side].append(baseline(bare, key, fn.signature_type))
                    else:
                        starts[side].append(cold_start(where[side], key, fn.entry_point, fn.signature_type))
                loads.append(_load1())
            base = starts["bare"]
            b, bc = statistics.median(s.wall_s for s in base), statistics.median(s.cpu_s for s in base)
            libs = "+".join(CLIENT_LIBRARIES.get(key, DEFAULT_LIBRARIES))
            print(
                f"{key:<14} baseline ({libs}) {b * 1000:.0f} ms ({min(s.wall_s for s in base) * 1000:.0f}-"
                f"{max(s.wall_s for s in base) * 1000:.0f}), CPU {bc * 1000:.0f} ms (sys {_sys_ms(base):.0f} ms, "
                f"{_faults(base):.0f} minor faults)",
                flush=True,
            )
            for side in [s for s in ("former", "current") if s in starts]:
                text, ratio = _summary(side, starts[side], base)
                print(text, flush=True)
                if side == "current":
                    worst = max(worst, ratio)
        print(
            f"worst ratio of medians {worst:.2f} (goal <= {GOAL}); 1-min load average during the run "
            f"{min(loads):.1f}-{max(loads):.1f} (median {statistics.median(loads):.1f})"
        )


if __name__ == "__main__":
    main(sys.argv[1:])
