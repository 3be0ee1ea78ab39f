"""A small evaluator of the Cloud Logging query language subset our log-based metrics use.

Why: a log-based metric whose filter does not match the lines the code writes counts nothing, silently,
and its alert never fires. The monitoring tests run the real code paths, capture the JSON lines and
evaluate each metric's filter and extractors with this evaluator. Anything outside the subset raises
:class:`Unsupported`, so a metric cannot use syntax this evaluator would misjudge.

The subset:

* comparisons ``FIELD OP VALUE`` with OP one of ``=``, ``!=``, ``<``, ``<=``, ``>``, ``>=``, ``:`` (has:
  case-insensitive substring; ``FIELD:*`` means present);
* FIELD a dotted path (``jsonPayload.http_status``, ``labels.psp``, ``severity``); a segment may be
  quoted (``labels."fn"``);
* VALUE a double-quoted string, a number or a bare word (``ERROR``);
* ``AND``, ``OR``, ``NOT`` (also ``-`` before a comparison) and parentheses. Implicit AND (juxtaposed
  comparisons), regular expressions (``=~``), functions (``sample``, ``log_id``), timestamps and
  global restrictions (a bare word) are NOT supported.

Semantics: ``=`` on strings is exact; numbers compare numerically when both sides are numbers (a JSON
number and ``>=500``); a missing field matches no comparison (so ``NOT a=1`` matches a line without
``a``, as in Cloud Logging). ``severity`` compares by rank (DEFAULT < DEBUG < INFO < ... < EMERGENCY).
Extractors: ``EXTRACT(FIELD)`` only (the value as a string; None when the field is absent).

A JSON line becomes a log entry as Cloud Logging's agent does it: ``severity`` -> ``severity``,
``logging.googleapis.com/labels`` -> ``labels``, ``logging.googleapis.com/trace`` -> ``trace``, and every
other field -> ``jsonPayload`` (``message`` included).
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any


class Unsupported(ValueError):
    """The filter uses syntax outside the supported subset."""


SEVERITIES = ("DEFAULT", "DEBUG", "INFO", "NOTICE", "WARNING", "ERROR", "CRITICAL", "ALERT", "EMERGENCY")
_SPECIAL = {
    "severity": "severity",
    "logging.googleapis.com/labels": "labels",
    "logging.googleapis.com/trace": "trace",
    "logging.googleapis.com/spanId": "spanId",
}

_TOKEN = re.compile(
    r"""\s*(?:
        (?P<lpar>\() | (?P<rpar>\)) |
        (?P<op>!=|<=|>=|=~|!~|=|<|>|:) |
        (?P<string>"(?:[^"\\]|\\.)*") |
        (?P<word>[A-Za-z0-9_*/+-]+(?:\.(?:[A-Za-z0-9_*/+-]+|"(?:[^"\\]|\\.)*"))*)
    )""",
    re.VERBOSE,
)


def entry_of(line: Mapping[str, Any]) -> dict[str, Any]:
    """The log entry Cloud Logging makes of one JSON line."""
    entry: dict[str, Any] = {"jsonPayload": {}}
    for k, v in line.items():
        if k in _SPECIAL:
            entry[_SPECIAL[k]] = v
        else:
            entry["jsonPayload"][k] = v
    return entry


def _tokens(text: str) -> list[tuple[str, str]]:
    out: list[tuple[str, str]] = []
    pos = 0
    text = text.strip()
    while pos < len(text):
        m = _TOKEN.match(text, pos)
        if not m or m.end() == pos:
            raise Unsupported(f"cannot read {text[pos : pos + 20]!r}")
        kind = m.lastgroup
        assert kind is not None
        out.append((kind, m.group(kind)))
        pos = m.end()
        while pos < len(text) and text[pos].isspace():
            pos += 1
    return out


def _path(word: str) -> tuple[str, ...]:
    parts: list[str] = []
    for m in re.finditer(r'"((?:[^"\\]|\\.)*)"|([^.]+)', word):
        parts.append(json.loads(f'"{m.group(1)}"') if m.group(1) is not None else m.group(2))
    if not parts or not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", parts[0]):
        raise Unsupported(f"not a field path: {word!r}")
    return tuple(parts)


def lookup(entry: Mapping[str, Any], path: tuple[str, ...]) -> Any:
    value: Any = entry
    for p in path:
        if not isinstance(value, Mapping) or p not in value:
            return None
        value = value[p]
    return value


Predicate = Callable[[Mapping[str, Any]], bool]


@dataclass
class _Parser:
    toks: list[tuple[str, str]]
    i: int = 0

    def peek(self) -> tuple[str, str] | None:
        return self.toks[self.i] if self.i < len(self.toks) else None

    def take(self) -> tuple[str, str]:
        tok = self.peek()
        if tok is None:
            raise Unsupported("unexpected end of filter")
        self.i += 1
        return tok

    def parse(self) -> Predicate:
        pred = self.or_()
        if self.peek() is not None:
            raise Unsupported(f"unexpected {self.peek()!r} (implicit AND is not supported)")
        return pred

    def or_(self) -> Predicate:
        left = self.and_()
        while self.peek() == ("word", "OR"):
            self.take()
            left = _either(left, self.and_())
        return left

    def and_(self) -> Predicate:
        left = self.not_()
        while self.peek() == ("word", "AND"):
            self.take()
            left = _both(left, self.not_())
        return left

    def not_(self) -> Predicate:
        tok = self.peek()
        if tok == ("word", "NOT"):
            self.take()
            inner = self.not_()
            return lambda e: not inner(e)
        if tok is not None and tok[0] == "word" and tok[1].startswith("-") and len(tok[1]) > 1:
            self.toks[self.i] = ("word", tok[1][1:])
            inner = self.not_()
            return lambda e: not inner(e)
        return self.atom()

    def atom(self) -> Predicate:
        kind, text = self.take()
        if kind == "lpar":
            inner = self.or_()
            if self.take()[0] != "rpar":
                raise Unsupported("unbalanced parentheses")
            return inner
        if kind != "word" or text in ("AND", "OR"):
            raise Unsupported(f"expected a field, got {text!r}")
        path = _path(text)
        op_kind, op = self.take()
        if op_kind != "op" or op in ("=~", "!~"):
            raise Unsupported(f"operator {op!r} after {text!r} is not supported (a bare word is a global restriction)")
        vkind, vtext = self.take()
        if vkind == "string":
            value: Any = json.loads(vtext)
        elif vkind == "word" and re.fullmatch(r"-?\d+(\.\d+)?", vtext):
            value = float(vtext) if "." in vtext else int(vtext)
        elif vkind == "word" and (vtext == "*" or re.fullmatch(r"[A-Za-z_]+", vtext)):
            value = vtext
        else:
            raise Unsupported(f"value {vtext!r} is not supported")
        if self.peek() is not None and self.peek() == ("lpar", "("):
            raise Unsupported("functions are not supported")
        return _comparison(path, op, value)


def _either(a: Predicate, b: Predicate) -> Predicate:
    return lambda e: a(e) or b(e)


def _both(a: Predicate, b: Predicate) -> Predicate:
    return lambda e: a(e) and b(e)


def _comparison(path: tuple[str, ...], op: str, value: Any) -> Predicate:
    def check(entry: Mapping[str, Any]) -> bool:
        got = lookup(entry, path)
        if got is None:
            return False
        if op == ":":
            return value == "*" or str(value).lower() in (json.dumps(got) if not isinstance(got, str) else got).lower()
        left, right = got, value
        if path == ("severity",):
            if str(right) not in SEVERITIES or str(left) not in SEVERITIES:
                return False
            left, right = SEVERITIES.index(str(left)), SEVERITIES.index(str(right))
        elif isinstance(right, int | float) and not isinstance(right, bool):
            if isinstance(left, bool) or not isinstance(left, int | float):
                return False
        else:
            left = left if isinstance(left, str) else json.dumps(left)
            right = str(right)
        ops: dict[str, Callable[[Any, Any], bool]] = {
            "=": lambda a, b: a == b,
            "!=": lambda a, b: a != b,
            "<": lambda a, b: a < b,
            "<=": lambda a, b: a <= b,
            ">": lambda a, b: a > b,
            ">=": lambda a, b: a >= b,
        }
        return ops[op](left, right)

    return check


def compile_filter(text: str) -> Predicate:
    """A predicate over log entries, or :class:`Unsupported`."""
    return _Parser(_tokens(text)).parse()


def matches(text: str, line: Mapping[str, Any]) -> bool:
    """Whether the filter selects this JSON line."""
    return compile_filter(text)(entry_of(line))


def extract(extractor: str, line: Mapping[str, Any]) -> str | None:
    """``EXTRACT(field)`` applied to one JSON line: the value as Cloud Logging renders a label."""
    m = re.fullmatch(r"EXTRACT\(\s*([^()\s]+)\s*\)", extractor.strip())
    if not m:
        raise Unsupported(f"extractor {extractor!r}: only EXTRACT(field) is supported")
    value = lookup(entry_of(line), _path(m.group(1)))
    if value is None:
        return None
    return value if isinstance(value, str) else json.dumps(value)
