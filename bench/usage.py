"""Usage ingestion and aggregation on the emulators, in process: throughput, writes per 1,000 events, cost.

Ingestion: the usage endpoint's handler (edge checks, a result per event, one Pub/Sub message per batch, wait
for the ack) against a bare handler that only validates the same JSON (the same Flask request, the project's one
JSON loader ``shared.edge.loads``, the same event model) and publishes it as one message; batches of 100 and
1,000 events, rounds alternated in one run; ratio = ours / bare events/s.
Aggregation: the aggregator's fold (dedup + totals on Firestore) of batches of 1,000 events with 1 and with 10
customers per batch, delivered one at a time and ``BENCH_USAGE_CONCURRENCY`` (10) at once on one instance (they
join its window), cases alternated per round: events/s, Firestore reads and writes per 1,000 events (counted at
the client, ``shared.usage``), CPU per event. Cost per million events ingested and aggregated at the list prices of
``bench/_cost.py`` (compute = measured CPU seconds), for the worst case (10 customers, one delivery at a time).
Reuses running emulators (FIRESTORE_EMULATOR_HOST, PUBSUB_EMULATOR_HOST) or starts its own; prints, asserts nothing.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import statistics
import time
import uuid
from typing import Any

ROUNDS = int(os.environ.get("BENCH_USAGE_ROUNDS", "4"))
EVENTS_PER_ROUND = int(os.environ.get("BENCH_USAGE_EVENTS", "10000"))
CUSTOMERS_PER_BATCH = int(os.environ.get("BENCH_USAGE_CUSTOMERS", "1"))
CONCURRENCY = int(os.environ.get("BENCH_USAGE_CONCURRENCY", "10"))  # concurrent deliveries on one instance
CUSTOMERS = 50  # the batches cycle through this many customers


def _body(n: int, batch: int, now: dt.datetime, customers: int = CUSTOMERS_PER_BATCH) -> bytes:
    events = [
        {
            "id": f"b{batch}-e{i}-{uuid.uuid4().hex[:8]}",
            "customer": f"cus-{(batch * customers + i % customers) % CUSTOMERS}",
            "event_name": "api_call",
            "timestamp": (now - dt.timedelta(seconds=i)).isoformat().replace("+00:00", "Z"),
            "properties": {"bytes": 1000 + i, "region": ["eu", "us"][i % 2], "user": f"u{i % 37}"},
        }
        for i in range(n)
    ]
    return json.dumps({"events": events}, separators=(",", ":")).encode()


def main() -> None:
    """Reuses running emulators (FIRESTORE_/PUBSUB_EMULATOR_HOST on 127.0.0.1) or starts them; restores the env."""
    import tempfile
    from pathlib import Path

    from infra.local import emulators as em
    from shared.config import reset_settings

    saved = dict(os.environ)
    started: list[Any] = []
    try:
        project = f"demo-bench-usage-{uuid.uuid4().hex[:6]}"
        if not all(_local(v) for v in ("FIRESTORE_EMULATOR_HOST", "PUBSUB_EMULATOR_HOST")):
            em.check_prerequisites()
            log_dir = Path(tempfile.mkdtemp(prefix="bench-usage-"))
            fs_port, ps_port = em.free_ports(2)
            started = [em.firestore(fs_port, log_dir), em.pubsub(ps_port, project, log_dir)]
            em.start_all(started)
            os.environ["FIRESTORE_EMULATOR_HOST"], os.environ["PUBSUB_EMULATOR_HOST"] = (e.address for e in started)
        os.environ["USAGE_METERING"] = "1"
        os.environ["GOOGLE_CLOUD_PROJECT"] = project
        reset_settings()
        _run()
    finally:
        os.environ.clear()
        os.environ.update(saved)
        reset_settings()
        em.stop_all(started)


def _local(var: str) -> bool:
    from infra.local import emulators as em

    host, _, port = os.environ.get(var, "").partition(":")
    return host == "127.0.0.1" and port.isdigit() and em.port_open(host, int(port))


def _run() -> None:
    import flask
    from google.cloud.pubsub_v1 import PublisherClient
    from pydantic import TypeAdapter

    from bench._cost import FS_READ, FS_WRITE, GIB_S, PUBSUB_MIN_BYTES, PUBSUB_PER_BYTE, REQUEST, VCPU_S
    from shared.config import get_settings
    from shared.domain.meters import Aggregation, Meter
    from shared.edge import loads, read_body
    from shared.events.publisher import PubSubPublisher, RawMessage
    from shared.events.usage import UsageBatch, UsageEventIn
    from shared.metering.api import UsageService, handle
    from shared.metering.store import MeteringStore

    project = get_settings().project_id
    admin = PublisherClient()
    for t in ("usage-events", "usage-bare"):
        admin.create_topic(name=admin.topic_path(project, t))
    app = flask.Flask(__name__)
    svc = UsageService(store=MeteringStore(), publisher=PubSubPublisher())
    for m in (
        Meter(id="calls", event_name="api_call", aggregation=Aggregation.COUNT),
        Meter(id="bytes", event_name="api_call", aggregation=Aggregation.SUM, property="bytes", group_by="region"),
        Meter(id="users", event_name="api_call", aggregation=Aggregation.UNIQUE_COUNT, property="user"),
    ):
        svc.store.create_meter(m)
    bare_model = TypeAdapter(list[UsageEventIn])
    bare_pub = PubSubPublisher()

    def ours(body: bytes) -> Any:
        with app.test_request_context("/events", method="POST", data=body, content_type="application/json"):
            resp = handle(flask.request, svc)
        assert resp.status_code == 200, resp.get_data()
        return resp

    def bare(body: bytes) -> None:
        # the same Flask request, the project's one JSON loader (depth check), the same model, one publish of the
        # body as read (not ``request.get_data()``: read_body consumed the stream, so that is empty)
        with app.test_request_context("/events", method="POST", data=body, content_type="application/json"):
            data = read_body(flask.request, 2 * 1024 * 1024)
            raw = loads(data)
            bare_model.validate_python(raw["events"])
            attrs = {"event_type": "usage.bare"}
            bare_pub.publish_raw([RawMessage("usage-bare", data, attrs)])
            resp = flask.jsonify({"accepted": len(raw["events"])})
        assert resp.status_code == 200

    print(f"usage bench, project {project}, load average {os.getloadavg()[0]:.1f}")
    now = dt.datetime.now(dt.UTC)
    published: list[UsageBatch] = []
    for size in (100, 1000):
        n_batches = max(1, EVENTS_PER_ROUND // size)
        rates: dict[str, list[float]] = {"ours": [], "bare": []}
        cpu: dict[str, float] = {"ours": 0.0, "bare": 0.0}
        for r in range(ROUNDS):
            order = ("ours", "bare") if r % 2 == 0 else ("bare", "ours")
            for who in order:
                bodies = [_body(size, r * 10_000 + b, now) for b in range(n_batches)]
                fn = ours if who == "ours" else bare
                c0, t0 = time.thread_time(), time.perf_counter()
                for body in bodies:
                    fn(body)
                wall, cpu_s = time.perf_counter() - t0, time.thread_time() - c0
                rates[who].append(size * n_batches / wall)
                cpu[who] += cpu_s
                if who == "ours" and size == 1000 and len(published) < 5:
                    published += [
                        UsageBatch(
                            batch_id=f"b{r}-{i}",
                            received_at=now,
                            events=tuple(UsageEventIn.model_validate(e) for e in json.loads(b)["events"]),
                        )
                        for i, b in enumerate(bodies)
                    ]
        ratios = [o / b for o, b in zip(rates["ours"], rates["bare"], strict=True)]
        total = size * n_batches * ROUNDS
        print(
            f"ingest batch {size:>5}: ours {statistics.median(rates['ours']):8.0f} ev/s, bare "
            f"{statistics.median(rates['bare']):8.0f} ev/s, ratio median {statistics.median(ratios):.2f} "
            f"(rounds {min(ratios):.2f}-{max(ratios):.2f}); CPU {1e6 * cpu['ours'] / total:.1f} vs "
            f"{1e6 * cpu['bare'] / total:.1f} us/event"
        )
    ingest_cpu_per_event = cpu["ours"] / total  # of the 1,000-event batches
    msg_bytes = statistics.mean(len(b.model_dump_json()) for b in published[:5])

    agg = _aggregate(svc.store, now)
    reads, writes, events, agg_cpu = agg[(10, 1)]  # the worst case: 10 customers per batch, one delivery at a time
    # cost per million events: per 1,000-event batch one HTTP request, one message published and pushed once,
    # one aggregator delivery; Firestore as counted; compute = CPU seconds at 512 MiB / 0.333 vCPU.
    batches = 1e6 / 1000
    vcpu, gib = 0.333, 0.5
    cpu_s = 1e6 * (ingest_cpu_per_event + agg_cpu / events)
    cost = {
        "firestore": 1e6 * (reads * FS_READ + writes * FS_WRITE) / events,
        "pubsub": batches * 2 * max(PUBSUB_MIN_BYTES, msg_bytes) * PUBSUB_PER_BYTE,
        "requests": batches * 2 * REQUEST,
        "compute": cpu_s * VCPU_S + cpu_s / vcpu * gib * GIB_S,
    }
    print(
        "cost per million events ingested + aggregated: $"
        + f"{sum(cost.values()):.3f} ("
        + ", ".join(f"{k} ${v:.3f}" for k, v in cost.items())
        + f"; message {msg_bytes / 1000:.0f} kB per 1,000 events)"
    )


def _aggregate(store: Any, now: dt.datetime) -> dict[tuple[int, int], tuple[int, int, int, float]]:
    """The aggregator's fold of batches of 1,000 events with 1 or 10 customers per batch, delivered one at a time
    or ``CONCURRENCY`` at once on one instance (its window: ``shared.metering.window``), rounds alternated; per
    case prints events/s, writes and reads per 1,000 events, process CPU per event; returns the counts."""
    import concurrent.futures
    import contextvars

    from shared import usage
    from shared.events.publisher import PubSubPublisher
    from shared.events.usage import UsageBatch, UsageEventIn
    from shared.metering.aggregator import on_batch, usage_window
    from shared.metering.config import metering_settings

    class _Msg:
        def __init__(self, ev: UsageBatch) -> None:
            self.event = ev

    window = usage_window(store, PubSubPublisher())
    n_batches = max(1, EVENTS_PER_ROUND // 1000)
    acc: dict[tuple[int, int], list[float]] = {}
    rates: dict[tuple[int, int], list[float]] = {}
    seq = 0
    for r in range(ROUNDS):
        cases = [(c, k) for c in (1, 10) for k in (1, CONCURRENCY)]
        for customers, conc in cases if r % 2 == 0 else cases[::-1]:
            msgs = []
            for _ in range(n_batches):
                seq += 1
                evs = json.loads(_body(1000, 50_000 + seq, now, customers))["events"]
                msgs.append(
                    _Msg(
                        UsageBatch(
                            batch_id=f"agg-{seq}",
                            received_at=now,
                            events=tuple(UsageEventIn.model_validate(e) for e in evs),
                        )
                    )
                )
            with usage.track() as u:
                c0, t0 = time.process_time(), time.perf_counter()
                if conc == 1:
                    for m in msgs:
                        on_batch(m, store)  # type: ignore[arg-type]
                else:
                    with concurrent.futures.ThreadPoolExecutor(conc) as pool:
                        futs = [
                            pool.submit(contextvars.copy_context().run, on_batch, m, window=window)  # type: ignore[arg-type]
                            for m in msgs
                        ]
                        for f in futs:
                            f.result()
                wall, cpu = time.perf_counter() - t0, time.process_time() - c0
            n = 1000 * n_batches
            tot = acc.setdefault((customers, conc), [0, 0, 0, 0.0])
            tot[0], tot[1], tot[2], tot[3] = tot[0] + u.reads, tot[1] + u.writes, tot[2] + n, tot[3] + cpu
            rates.setdefault((customers, conc), []).append(n / wall)
    cfg = metering_settings()
    print(
        f"aggregate (USAGE_SHARDS {cfg.shards}, window {cfg.coalesce_ms} ms / {cfg.coalesce_max_events} events; "
        f"{CUSTOMERS} customers in turn; {ROUNDS} alternating rounds of {EVENTS_PER_ROUND} events per case):"
    )
    out: dict[tuple[int, int], tuple[int, int, int, float]] = {}
    for (customers, conc), (reads, writes, events, cpu) in sorted(acc.items()):
        print(
            f"  {customers:>2} customer(s) per batch, {conc:>2} concurrent deliveries: "
            f"{statistics.median(rates[(customers, conc)]):6.0f} ev/s; {1000 * writes / events:5.1f} writes and "
            f"{1000 * reads / events:5.1f} reads per 1,000 events; CPU {1e6 * cpu / events:5.1f} us/event"
        )
        out[(customers, conc)] = (int(reads), int(writes), int(events), float(cpu))
    print(f"  windows {window.stats.windows} for {window.stats.parts} concurrent deliveries")
    return out


if __name__ == "__main__":
    main()
