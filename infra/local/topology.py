"""Read ``infra/topology.yaml``: the single description of functions, topics, subscriptions, schedules.

Terraform decodes the same file with ``yamldecode``; this loader only validates and derives (names of
dead-letter topics, deployed function names), it never adds information of its own.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
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
    filter: str = ""  # Pub/Sub filter on attributes; "" delivers everything

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
            filter=str(v.get("filter") or ""),
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
        if s.filter:
            try:
                compile_filter(s.filter)
            except FilterError as exc:
                problems.append(f"subscription {s.name}: filter: {exc}")
    for sc in t.schedules.values():
        if sc.topic not in t.topics:
            problems.append(f"schedule {sc.name}: unknown topic {sc.topic}")
    if problems:
        raise TopologyError("; ".join(problems))


# -- Pub/Sub subscription filters ---------------------------------------------------------------------------
# Why here: the Pub/Sub emulator accepts a subscription's filter but delivers every message, so the local
# stack applies the filter itself (infra/local/pushfilter.py) with this evaluator; validating at load time
# also catches a malformed filter before Terraform would. The subset of the filter language supported:
# attributes.KEY = "v", attributes.KEY != "v", attributes:KEY (has), hasPrefix(attributes.KEY, "p"),
# NOT, AND, OR and parentheses; as in Pub/Sub, AND and OR are not mixed without parentheses, and the filter
# is at most 256 bytes.

Matcher = Callable[[Mapping[str, str]], bool]
_TOKEN = re.compile(r"""\s*(?:(?P<str>"(?:[^"\\]|\\.)*")|(?P<op>!=|=|\(|\)|,|:)|(?P<word>[A-Za-z_][A-Za-z0-9_.-]*))""")


class FilterError(ValueError):
    pass


def _tokens(text: str) -> list[str]:
    out, pos = [], 0
    text = text.rstrip()
    while pos < len(text):
        m = _TOKEN.match(text, pos)
        if not m or m.end() == pos:
            raise FilterError(f"unexpected text at {pos}: {text[pos : pos + 12]!r}")
        out.append(m.group(m.lastgroup or "word"))
        pos = m.end()
    return out


def compile_filter(text: str) -> Matcher:
    """A predicate on message attributes equivalent to the Pub/Sub filter ``text`` (empty: match all)."""
    if not text.strip():
        return lambda attrs: True
    if len(text.encode()) > 256:
        raise FilterError("longer than 256 bytes (Pub/Sub limit)")
    parser = _Parser(_tokens(text))
    matcher = parser.expr()
    if parser.pos != len(parser.toks):
        raise FilterError(f"unexpected {parser.toks[parser.pos]!r} at token {parser.pos}")
    return matcher


@dataclass
class _Parser:
    toks: list[str]
    pos: int = 0

    def peek(self) -> str | None:
        return self.toks[self.pos] if self.pos < len(self.toks) else None

    def take(self, expected: str | None = None) -> str:
        if self.pos >= len(self.toks) or (expected is not None and self.toks[self.pos] != expected):
            raise FilterError(f"expected {expected or 'more'} at token {self.pos}")
        self.pos += 1
        return self.toks[self.pos - 1]

    def string(self) -> str:
        t = self.take()
        if not t.startswith('"'):
            raise FilterError(f"expected a string, got {t!r}")
        return re.sub(r"\\(.)", r"\1", t[1:-1])

    @staticmethod
    def key(word: str) -> str:
        if not word.startswith("attributes.") or len(word) == len("attributes."):
            raise FilterError(f"expected attributes.KEY, got {word!r}")
        return word[len("attributes.") :]

    def term(self) -> Matcher:
        t = self.take()
        if t == "NOT":
            inner = self.term()
            return lambda a: not inner(a)
        if t == "(":
            inner = self.expr()
            self.take(")")
            return inner
        if t == "hasPrefix":
            self.take("(")
            k = self.key(self.take())
            self.take(",")
            prefix = self.string()
            self.take(")")
            return lambda a: k in a and a[k].startswith(prefix)
        if t == "attributes" and self.peek() == ":":
            self.take(":")
            name = self.take()
            return lambda a: name in a
        k = self.key(t)
        op = self.take()
        if op not in ("=", "!="):
            raise FilterError(f"expected = or != after {t}, got {op!r}")
        v = self.string()
        if op == "=":
            return lambda a: a.get(k) == v
        return lambda a: a.get(k) != v

    def expr(self) -> Matcher:
        parts, ops = [self.term()], set()
        while self.peek() in ("AND", "OR"):
            ops.add(self.take())
            parts.append(self.term())
        if len(ops) > 1:
            raise FilterError("AND and OR mixed without parentheses")
        if ops == {"OR"}:
            return lambda a: any(p(a) for p in parts)
        return lambda a: all(p(a) for p in parts)
