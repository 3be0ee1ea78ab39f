"""The webhook hot path's shortcuts answer exactly what the full checks answer.

Each shortcut (the bracket count before the depth scan, the bounds walk that formats a path only for a
problem) is compared, property-based, with the check it short-cuts: the former code, kept here as the
oracle.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from typing import Any

from hypothesis import example, given, settings
from hypothesis import strategies as st
from pydantic import BaseModel

from shared import edge
from shared.domain.money import INT64_MAX, CurrencyError, Money, within_bounds

# -- the depth scan ----------------------------------------------------------------------------


@settings(max_examples=200, deadline=None)
@given(st.lists(st.sampled_from(['[', ']', '{', '}', '"', '\\"', "\\", "a", ",", ":"]), max_size=90).map("".join),
       st.integers(0, 40))  # fmt: skip
@example("[" * 33, 32)
@example("[" * 32 + "]" * 32, 32)
@example('"[[[[["' + "[" * 30, 32)
def test_bracket_count_agrees_with_the_depth_scan(text: str, limit: int) -> None:
    raw = text.encode()
    assert edge.json_too_deep(raw, limit) == edge._deeper_than(raw, limit)


# -- the bounds walk ---------------------------------------------------------------------------


def _former_storable(value: Any, *, where: str = "event") -> str | None:
    """The walk as it was: a path string built at every step."""
    if isinstance(value, Money):
        try:
            ok = within_bounds(value)
        except CurrencyError:
            ok = False
        return None if ok else f"{where}: amount {value.amount} {value.currency} is out of bounds"
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, int):
        return None if edge.INT64_MIN <= value <= INT64_MAX else f"{where}: integer beyond int64"
    if isinstance(value, dt.datetime):
        problem = edge.datetime_problem(value)
        return f"{where}: time {problem}" if problem else None
    if isinstance(value, str):
        too_long = len(value.encode("utf-8", "surrogatepass")) > edge.MAX_STR_BYTES
        return f"{where}: string too long" if too_long else None
    if isinstance(value, BaseModel):
        items: Any = ((k, getattr(value, k)) for k in type(value).model_fields)
    elif isinstance(value, Mapping):
        items = value.items()
    elif isinstance(value, list | tuple):
        items = enumerate(value)
    else:
        return None
    for k, v in items:
        problem = _former_storable(v, where=f"{where}.{k}")
        if problem:
            return problem
    return None


class Inner(BaseModel):
    note: Any = None
    amount: Any = None


_STRINGS = st.one_of(
    st.text(max_size=8),
    st.builds(lambda c, n: c * n, st.sampled_from(["x", "é", "€", "😀", "\ud800"]), st.integers(200, 1100)),
)
_LEAVES = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(2**70), 2**70),
    st.sampled_from([2**63 - 1, 2**63, -(2**63), -(2**63) - 1]),
    _STRINGS,
    st.builds(Money, st.integers(-5, 10**17), st.sampled_from(["EUR", "JPY", "KWD"])),
    st.datetimes(timezones=st.just(dt.UTC)),
    st.datetimes(),  # naive
    st.floats(allow_nan=False),
)


def _nest(children: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    return st.one_of(
        st.lists(children, max_size=4),
        st.lists(children, max_size=3).map(tuple),
        st.dictionaries(st.text(max_size=3), children, max_size=4),
        st.builds(Inner, note=children, amount=children),
    )


@settings(max_examples=150, deadline=None)
@given(st.recursive(_LEAVES, _nest, max_leaves=12), st.sampled_from(["event", "refund"]))
@example({"a": [Money(1, "EUR"), dt.datetime(2026, 1, 1, tzinfo=dt.UTC), "x", 2**62]}, "event")
@example({"a": {"b": ["ok", "é" * 300]}}, "event")  # 300 characters, 600 bytes: storable
@example({"a": {"b": ["ok", "😀" * 257]}}, "event")  # 257 characters, 1028 bytes: not
def test_bounds_walk_agrees_with_the_former_walk(value: Any, where: str) -> None:
    assert edge.storable(value, where=where) == _former_storable(value, where=where)


# -- the secrets split, cached by value -----------------------------------------------------------


@settings(max_examples=100, deadline=None)
@given(st.lists(st.text(st.characters(blacklist_characters=",", codec="utf-8"), max_size=12), max_size=4).map(",".join))
def test_cached_secret_split_agrees_with_the_split(raw: str) -> None:
    from shared.psp.base import PspConfig

    cfg = PspConfig(psp="stripe", account="default", livemode=False, values={"S": raw})
    former = tuple(s.strip() for s in raw.split(",") if s.strip())
    assert cfg.secrets("S") == former
    assert cfg.keys("S") == tuple(s.encode() for s in former)


def test_a_rotated_secret_is_used_at_once() -> None:
    """The cache is keyed by the raw value: a new value (a rotation) is split anew, never served stale."""
    from shared.psp.base import PspConfig

    old = PspConfig(psp="stripe", account="default", livemode=False, values={"S": "whsec_a"})
    new = PspConfig(psp="stripe", account="default", livemode=False, values={"S": "whsec_a, whsec_b"})
    assert old.keys("S") == (b"whsec_a",)
    assert new.keys("S") == (b"whsec_a", b"whsec_b")
    assert old.secrets("S") == ("whsec_a",)


# -- the event id ------------------------------------------------------------------------------


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=40), st.text(max_size=200))
def test_event_id_is_the_uuid5_of_type_and_key(event_type: str, key: str) -> None:
    import uuid

    from shared.events import envelope

    expected = str(uuid.uuid5(envelope._NAMESPACE, f"{event_type}\x1f{key}"))
    assert envelope.make_event_id(event_type, key) == expected
