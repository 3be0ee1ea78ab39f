"""List-price cost of functions from their ``usage`` log lines (pure: no I/O beyond reading given text).

List prices (assumptions, USD, no free tier):
  Firestore            priced at the location production deploys (:func:`deployed_firestore_location`: the
                       prod tfvars' ``firestore_location``, else its ``region``): europe-west1 (Belgium) reads
                       $0.033 / 100k (the catalogue's "Cloud Firestore Read Ops Belgium"), writes $0.099 / 100k
                       (the same 1.1x of Iowa's $0.09 as its reads); us-central1 $0.03 / $0.09; any other region
                       1.3x us-central1 (dearer than the regions listed, so no figure flatters); a multi-region
                       (eur3, nam5) $0.06 / $0.18 (``FS_READ``, ``FS_WRITE``, the default of :func:`costs`)
  Pub/Sub              $40 / TiB of throughput; every publish and every push delivery billed at >= 1 KB
                       (a message published to a topic is delivered once per subscription of the topology)
  Cloud Run functions  $0.40 / million requests, $0.000024 / vCPU-s, $0.0000025 / GiB-s
  Cloud Storage        Class A (object writes, listings) $0.005 / 1,000 ops; Class B (reads) $0.0004 / 1,000;
                       storage itself is negligible for a PDF of ~2 kB
Compute: the function's measured CPU seconds are its billed vCPU-seconds (a CPU-bound instance with a
share ``cpu`` of a vCPU is billed CPU-time / cpu seconds of instance time, i.e. CPU-time vCPU-seconds), and
memory is billed for the same instance time: CPU-time / cpu x memory GiB. ``cpu`` and memory come from the
topology (gen2 default CPU for the memory size when the topology names none).
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

FS_READ, FS_WRITE = 0.06 / 100_000, 0.18 / 100_000  # (read, write) at a multi-region location (eur3, nam5)
FS_REGIONAL = (0.03 / 100_000, 0.09 / 100_000)  # (read, write) at a regional location (us-central1's list)
FS_REGIONS = {"us-central1": FS_REGIONAL, "europe-west1": (0.033 / 100_000, 0.099 / 100_000)}
FS_OTHER_REGION = (FS_REGIONAL[0] * 1.3, FS_REGIONAL[1] * 1.3)  # a region not listed: priced above all listed
INFRA = Path(__file__).resolve().parent.parent / "infra"
PUBSUB_PER_BYTE = 40.0 / 2**40
PUBSUB_MIN_BYTES = 1000
REQUEST, VCPU_S, GIB_S = 0.40 / 1_000_000, 0.000024, 0.0000025
STORAGE_A, STORAGE_B = 0.005 / 1000, 0.0004 / 1000
COUNTERS = ("reads", "writes", "published", "published_bytes", "storage_class_a", "storage_class_b")

# Cloud Functions gen2 default vCPU for a memory size (MiB).
_DEFAULT_CPU = {128: 0.083, 256: 0.167, 512: 0.333, 1024: 0.583, 2048: 1.0, 4096: 2.0, 8192: 2.0, 16384: 4.0}


def memory_mib(raw: str) -> int:
    """``512Mi`` / ``1Gi`` / ``512M`` -> MiB."""
    s = raw.strip()
    for suffix, factor in (("Gi", 1024), ("G", 1000), ("Mi", 1), ("M", 1)):
        if s.endswith(suffix):
            return int(float(s[: -len(suffix)]) * factor)
    return int(s) // (1024 * 1024)


def size_of(fn: Mapping[str, Any]) -> tuple[float, float]:
    """(vCPU, GiB) of a topology function entry."""
    mib = memory_mib(str(fn.get("memory", "256Mi")))
    cpu = float(fn["cpu"]) if fn.get("cpu") else _DEFAULT_CPU.get(mib, 0.333)
    return cpu, mib / 1024


@dataclass
class Tally:
    """Summed usage of one function (or one event type of it)."""

    deliveries: int = 0
    counts: dict[str, int] = field(default_factory=lambda: dict.fromkeys(COUNTERS, 0))
    topics: dict[str, int] = field(default_factory=dict)
    thread_cpu_ms: float = 0.0

    def add(self, usage: Mapping[str, Any]) -> None:
        for k in COUNTERS:
            self.counts[k] += int(usage.get(k, 0))
        for t, c in (usage.get("topics") or {}).items():
            self.topics[t] = self.topics.get(t, 0) + int(c)


def tally(lines: Iterable[str]) -> tuple[Tally, dict[str, Tally]]:
    """The function's total and its per-event-type tallies from its log lines (``usage`` lines only).

    Background counts (threads outside any delivery) go to the total and to the ``(background)`` row.
    """
    total, by_type = Tally(), dict[str, Tally]()
    for line in lines:
        if '"usage"' not in line:
            continue
        try:
            rec = json.loads(line)
        except ValueError:
            continue
        if rec.get("message") != "usage":
            continue
        et = rec.get("event_type") or ""
        if et:
            row = by_type.setdefault(et, Tally())
            row.deliveries += 1
            total.deliveries += 1
            cpu = float(rec.get("thread_cpu_ms") or 0.0)
            row.thread_cpu_ms += cpu
            total.thread_cpu_ms += cpu
            row.add(rec.get("usage") or {})
            total.add(rec.get("usage") or {})
        bg = rec.get("background") or {}
        if any(int(bg.get(k, 0)) for k in COUNTERS):
            by_type.setdefault("(background)", Tally()).add(bg)
            total.add(bg)
    return total, by_type


def firestore_prices(location: str) -> tuple[float, float]:
    """(read, write) list price per document at ``location``: a region (``europe-west1``) or a multi-region
    (``eur3``, ``nam5``: no dash in the name), which lists about twice a region's price."""
    if "-" not in location:
        return FS_READ, FS_WRITE
    return FS_REGIONS.get(location, FS_OTHER_REGION)


def deployed_firestore_location(env: str = "prod", infra: Path = INFRA) -> str:
    """Where ``terraform apply -var-file=envs/<env>.tfvars`` puts the database: ``firestore_location`` when the
    tfvars name it, else the stack's ``region`` (``coalesce`` in infra/main.tf; variables' defaults otherwise)."""

    import hcl2.api  # the HCL parser the infra tests read Terraform with (checkov's; a dev dependency)

    def load(path: Path) -> dict[str, Any]:
        with path.open() as fh:
            return dict(hcl2.api.load(fh))

    def first(values: list[Any] | None) -> Any:  # the parser wraps every value in a one-element list
        return values[0] if values else None

    tfvars = load(infra / "envs" / f"{env}.tfvars")
    region_var = next(v["region"] for v in load(infra / "variables.tf").get("variable", []) if "region" in v)
    region = first(tfvars.get("region")) or first(region_var.get("default"))
    return str(first(tfvars.get("firestore_location")) or region)


def operations(t: Tally, per: float, fs: tuple[float, float] = (FS_READ, FS_WRITE)) -> dict[str, float]:
    """Dollars per ``per`` units of the billed operations counted in ``t`` (Firestore, Cloud Storage, requests),
    one line item per operation kind: where the money goes, before Pub/Sub bytes and compute. ``fs``: Firestore's
    (read, write) price per document."""
    c = t.counts
    out = {
        "fs reads": c["reads"] * fs[0],
        "fs writes": c["writes"] * fs[1],
        "gcs A": c["storage_class_a"] * STORAGE_A,
        "gcs B": c["storage_class_b"] * STORAGE_B,
        "requests": t.deliveries * REQUEST,
    }
    return {k: v / per for k, v in out.items()}


def costs(
    t: Tally,
    cpu_s: float,
    size: tuple[float, float],
    subscribers: Mapping[str, int],
    per: float,
    fs: tuple[float, float] = (FS_READ, FS_WRITE),
) -> dict[str, float]:
    """Dollars per ``per`` units (e.g. renewals) of one tally, by line item; ``fs``: Firestore's (read, write)
    price per document (:func:`firestore_prices`)."""
    vcpu, gib = size
    c = t.counts
    avg = c["published_bytes"] / c["published"] if c["published"] else 0.0
    billable = max(float(PUBSUB_MIN_BYTES), avg)
    copies = sum(n * (1 + subscribers.get(topic, 0)) for topic, n in t.topics.items())
    instance_s = cpu_s / vcpu if vcpu else 0.0
    out = {
        "firestore": c["reads"] * fs[0] + c["writes"] * fs[1],
        "pubsub": copies * billable * PUBSUB_PER_BYTE,
        "storage": c["storage_class_a"] * STORAGE_A + c["storage_class_b"] * STORAGE_B,
        "requests": t.deliveries * REQUEST,
        "compute": cpu_s * VCPU_S + instance_s * gib * GIB_S,
    }
    return {k: v / per for k, v in out.items()}
