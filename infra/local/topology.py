"""Read ``infra/topology.yaml``: the single description of functions, topics, subscriptions, schedules.

Terraform decodes the same file with ``yamldecode``; this loader only validates and derives (names of
dead-letter topics, deployed function names), it never adds information of its own.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parents[2]
TOPOLOGY_FILE = ROOT / "infra" / "topology.yaml"


@dataclass(frozen=True)
class Function:
    key: str  # folder under functions/
    entry_point: str
    trigger: str  # "http" or "pubsub"
    public: bool
    publishes: tuple[str, ...]
    secrets: tuple[str, ...]
    raw: dict[str, Any] = field(repr=False, compare=False)

    @property
    def name(self) -> str:
        """Deployed name: Cloud Run service names allow hyphens, not underscores."""
        return self.key.replace("_", "-")

    @property
    def source(self) -> Path:
        return ROOT / "functions" / self.key / "main.py"

    @property
    def signature_type(self) -> str:
        return "http" if self.trigger == "http" else "cloudevent"


@dataclass(frozen=True)
class Subscription:
    name: str
    topic: str
    function: str
    ack_deadline_s: int
    max_delivery_attempts: int
    min_backoff_s: int
    max_backoff_s: int

    @property
    def dead_letter_topic(self) -> str:
        return f"{self.name}-dlq"


@dataclass(frozen=True)
class Schedule:
    name: str
    topic: str
    cron: str
    time_zone: str


@dataclass(frozen=True)
class Topology:
    topics: tuple[str, ...]
    functions: dict[str, Function]
    subscriptions: dict[str, Subscription]
    schedules: dict[str, Schedule]

    @property
    def all_topics(self) -> tuple[str, ...]:
        """Event topics plus one dead-letter topic per subscription."""
        return self.topics + tuple(s.dead_letter_topic for s in self.subscriptions.values())


_NAME = re.compile(r"^[a-z][a-z0-9-]{2,62}$")


class TopologyError(ValueError):
    pass


def load(path: Path = TOPOLOGY_FILE) -> Topology:
    data = yaml.safe_load(path.read_text())
    topics = tuple(data.get("topics") or {})
    functions = {
        k: Function(
            key=k,
            entry_point=v["entry_point"],
            trigger=v["trigger"],
            public=bool(v.get("public", False)),
            publishes=tuple(v.get("publishes") or ()),
            secrets=tuple(v.get("secrets") or ()),
            raw=v,
        )
        for k, v in (data.get("functions") or {}).items()
    }
    subscriptions = {
        k: Subscription(
            name=k,
            topic=v["topic"],
            function=v["function"],
            ack_deadline_s=int(v["ack_deadline_s"]),
            max_delivery_attempts=int(v["max_delivery_attempts"]),
            min_backoff_s=int(v["min_backoff_s"]),
            max_backoff_s=int(v["max_backoff_s"]),
        )
        for k, v in (data.get("subscriptions") or {}).items()
    }
    schedules = {
        k: Schedule(name=k, topic=v["topic"], cron=v["cron"], time_zone=v["time_zone"])
        for k, v in (data.get("schedules") or {}).items()
    }
    topo = Topology(topics, functions, subscriptions, schedules)
    _check(topo)
    return topo


def _check(t: Topology) -> None:
    problems: list[str] = []
    for name in list(t.topics) + list(t.subscriptions):
        if not _NAME.match(name):
            problems.append(f"bad resource name {name!r}")
    for f in t.functions.values():
        if f.trigger not in ("http", "pubsub"):
            problems.append(f"function {f.key}: trigger must be http or pubsub")
        if not f.source.is_file():
            problems.append(f"function {f.key}: {f.source.relative_to(ROOT)} does not exist")
        problems += [f"function {f.key} publishes to unknown topic {p}" for p in f.publishes if p not in t.topics]
    for s in t.subscriptions.values():
        if s.topic not in t.topics:
            problems.append(f"subscription {s.name}: unknown topic {s.topic}")
        fn = t.functions.get(s.function)
        if fn is None or fn.trigger != "pubsub":
            problems.append(f"subscription {s.name}: {s.function} is not a pubsub function")
        if not 5 <= s.max_delivery_attempts <= 100:
            problems.append(f"subscription {s.name}: max_delivery_attempts must be 5..100 (Pub/Sub limit)")
    for sc in t.schedules.values():
        if sc.topic not in t.topics:
            problems.append(f"schedule {sc.name}: unknown topic {sc.topic}")
    if problems:
        raise TopologyError("; ".join(problems))
