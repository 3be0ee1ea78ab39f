"""Console page render time: a customer with 100 invoices and 1,000 events vs an empty customer page.

Needs the emulators (``FIRESTORE_EMULATOR_HOST``, ``PUBSUB_EMULATOR_HOST``, ``STORAGE_EMULATOR_HOST``). The
console's deploy bundle is built and served by functions-framework in its own process, as on the local
stack; the bench process seeds a fresh project: one customer with 100 finalized invoices (one issued by the
invoices service, 99 copies of it under their own ids and numbers), 100 charge attempts and 10 archived
webhooks behind each (1,000 events); another customer with nothing but its customer document. Rounds
alternate the two pages (``BENCH_CONSOLE_ROUNDS`` rounds of ``BENCH_CONSOLE_REQUESTS`` each, after a
warm-up) so machine load hits both alike; the figure is the ratio of the p95s (goal at most 3x).
"""

from __future__ import annotations

import datetime as dt
import http.client
import os
import statistics
import tempfile
import time
import uuid
from pathlib import Path

ROUNDS = int(os.environ.get("BENCH_CONSOLE_ROUNDS", "6"))
REQUESTS = int(os.environ.get("BENCH_CONSOLE_REQUESTS", "10"))
INVOICES = 100
EVENTS_PER_PAYMENT = 10
IAP = {"X-Goog-Authenticated-User-Email": "accounts.google.com:bench@example.com"}


def seed(project: str) -> None:
    os.environ["GOOGLE_CLOUD_PROJECT"] = project
    from shared import clients
    from shared.config import reset_settings

    reset_settings()
    from google.cloud import pubsub_v1

    from tests.fixtures.console_world import issue_invoices, seed_payments, seed_subscription

    pub = pubsub_v1.PublisherClient()
    pub.create_topic(name=pub.topic_path(project, "invoice-events"))
    (first,) = issue_invoices(1, prefix="bench")
    db = clients.firestore()
    doc = db.collection("invoices").document(first["invoice_id"]).get().to_dict() or {}
    ids = [first["invoice_id"]]
    batch = db.batch()
    for i in range(1, INVOICES):
        iid = f"in_bench{i:04d}"
        at = doc["created_at"] + dt.timedelta(minutes=i)
        batch.set(
            db.collection("invoices").document(iid),
            {**doc, "invoice_id": iid, "number": f"BENCH-{i:06d}", "created_at": at},
        )
        ids.append(iid)
    batch.commit()
    seed_subscription("cus_fr")
    seed_payments("cus_fr", ids, EVENTS_PER_PAYMENT, with_card=False)
    db.collection("customers").document("cus_empty").set(
        {"id": "cus_empty", "legal_name": "Empty Ltd", "currency": "EUR"}
    )


def timed_get(port: int, path: str) -> float:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
    t0 = time.perf_counter()
    conn.request("GET", path, headers=IAP)
    resp = conn.getresponse()
    body = resp.read()
    elapsed = time.perf_counter() - t0
    conn.close()
    if resp.status != 200:
        raise RuntimeError(f"GET {path}: {resp.status} {body[:300]!r}")
    return elapsed


def p95(xs: list[float]) -> float:
    return statistics.quantiles(xs, n=20, method="inclusive")[18] if len(xs) > 1 else xs[0]


def main() -> None:
    from bench.cold_start import FirstRequest, emulator_env, first_answer, serving
    from infra.bundle import build_one

    emulator_env()
    project = f"demo-bench-console-{uuid.uuid4().hex[:8]}"
    t_seed = time.perf_counter()
    seed(project)
    print(
        f"seeded {INVOICES} invoices and {INVOICES * EVENTS_PER_PAYMENT} events in {time.perf_counter() - t_seed:.1f}s"
    )
    full, empty = "/customers/cus_fr", "/customers/cus_empty"
    with tempfile.TemporaryDirectory(prefix="bench-console-") as tmp:
        folder = build_one("console", Path(tmp))
        with serving(folder, "console", "http", project) as (proc, port, _):
            first_answer(proc, port, FirstRequest("GET", empty, b"", IAP, (200,)))
            for path in (full, empty):
                timed_get(port, path)  # warm-up: clients, templates
            times: dict[str, list[float]] = {full: [], empty: []}
            for r in range(ROUNDS):
                order = (full, empty) if r % 2 == 0 else (empty, full)
                for path in order:
                    times[path] += [timed_get(port, path) for _ in range(REQUESTS)]
            size = _size(port, full)
    load = os.getloadavg()[0]
    f95, e95 = p95(times[full]), p95(times[empty])
    print(f"customer page, {INVOICES} invoices + {INVOICES * EVENTS_PER_PAYMENT} events: p50 "
          f"{statistics.median(times[full]) * 1000:.0f} ms, p95 {f95 * 1000:.0f} ms ({size / 1024:.0f} KiB of HTML; "
          f"pages of 25 invoices and 10 payments, each linking to its events and webhooks)")  # fmt: skip
    print(f"empty customer page: p50 {statistics.median(times[empty]) * 1000:.0f} ms, p95 {e95 * 1000:.0f} ms")
    print(f"ratio p95 full / empty: {f95 / e95:.2f}x (goal <= 3x); {len(times[full])} requests each, "
          f"alternating rounds; 1-min load average {load:.1f}")  # fmt: skip


def _size(port: int, path: str) -> int:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
    conn.request("GET", path, headers=IAP)
    n = len(conn.getresponse().read())
    conn.close()
    return n


if __name__ == "__main__":
    main()
