"""Acceptance properties of the usage edge, pure: numbers parse exactly or not at all, a meter's filters are
storable, and every event the edge accepts survives the message the aggregator reads (the typed message and the
raw request body spliced into it), whatever the input."""

from __future__ import annotations

import datetime as dt
import json
from decimal import Decimal
from fractions import Fraction
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import ValidationError

from shared.domain.catalog import Price
from shared.domain.meters import SCALE, Aggregation, Meter, TimePolicy, parse_number, rate
from shared.domain.pricing import exact_amount
from shared.events.usage import UsageBatch
from shared.metering.ingest import check

NOW = dt.datetime(2026, 11, 20, 12, tzinfo=dt.UTC)


@given(st.integers(-(10**24), 10**24), st.integers(0, 12), st.sampled_from(["", "0", "00"]))
def test_a_decimal_string_of_at_most_12_places_parses_exactly(units: int, places: int, pad: str) -> None:
    d = Decimal(units).scaleb(-places)
    text = f"{d:f}" + (pad if places and pad else "")
    expected = units * 10 ** (12 - places)
    assert parse_number(text) == (expected if abs(expected) <= 10**12 * SCALE else None)


@given(st.integers(1, 10**20).filter(lambda n: n % 10), st.integers(13, 30))
def test_more_than_12_places_is_refused_never_rounded(digits: int, places: int) -> None:
    text = f"{Decimal(digits).scaleb(-places):f}"
    assert parse_number(text) is None
    assert parse_number("1." + "0" * 27 + "1") is None  # 28 digits: a Decimal context would round it to 1


@pytest.mark.parametrize(
    ("text", "units"),
    [("1e3", 1000 * SCALE), ("1E-12", 1), (".5", SCALE // 2), ("5.", 5 * SCALE), ("+3", 3 * SCALE), ("-0", 0)],
)
def test_decimal_notation(text: str, units: int) -> None:
    assert parse_number(text) == units


@pytest.mark.parametrize("text", ["1_000", " 5", "5 ", "NaN", "Infinity", "-inf", "\u0661\u0662", "1e-13", "0x10", ""])
def test_what_decimal_would_take_but_is_no_number_here(text: str) -> None:
    assert parse_number(text) is None


@pytest.mark.parametrize(
    "filters",
    [{"__x__": ("a",)}, {"\ud800": ("a",)}, {"r": ("\udc00",)}, {"r": ("x" * 257,)}, {"r": ()}, {"": ("a",)}],
)
def test_a_meter_filter_firestore_cannot_store_or_that_never_matches_is_refused(filters: dict[str, Any]) -> None:
    with pytest.raises(ValidationError):
        Meter.model_validate({"id": "m", "event_name": "e", "aggregation": "count", "filters": filters})
    Meter(id="m", event_name="e", aggregation=Aggregation.COUNT, filters={"a.b": ("x" * 256,), "_x_": ("1",)})


# -- every accepted event reaches the aggregator as it was accepted -------------------------------------------

_text = st.one_of(
    st.text(max_size=8),
    st.sampled_from([".", "..", "__x__", "a~b", "~", "/", "x" * 129, "\ud800", "\x00", "\u2603", "e1", "cus"]),
)
_value = st.one_of(
    st.integers(-(10**13), 10**13),
    st.floats(allow_nan=False),
    st.booleans(),
    st.none(),
    _text,
    st.sampled_from(["1.5", "1e400", "1.0000000000001", "x" * 257]),
    st.lists(st.integers(), max_size=2),
)
_timestamp = st.one_of(
    st.datetimes(
        min_value=dt.datetime(2026, 10, 1),
        max_value=dt.datetime(2026, 11, 21),
        timezones=st.sampled_from([dt.UTC, dt.timezone(dt.timedelta(hours=14)), dt.timezone(dt.timedelta(hours=-12))]),
    ).map(lambda t: t.isoformat()),
    st.sampled_from(["2026-11-20T11:00:00", "2026-11-20T23:59:60Z", "0001-01-01T00:00:00Z", "9999-12-31T23:59:59Z"]),
    st.integers(0, 2**40),
)
_event = st.one_of(
    st.fixed_dictionaries(
        {
            "id": st.one_of(_text, st.sampled_from(["e1", "e2", "e3"])),
            "customer": st.one_of(_text, st.just("cus")),
            "event_name": _text,
            "timestamp": _timestamp,
        },
        optional={"properties": st.dictionaries(_text, _value, max_size=3), "x": st.integers()},
    ),
    _value,
)


def _roundtrip(body: bytes, events: list[Any]) -> None:
    checked = check(events, NOW, TimePolicy())
    assert len(checked.results) == len(events)
    assert set(checked.results) <= {"accepted", "duplicate", "rejected"}
    assert len(checked.refused) == len(events) - len(checked.accepted)
    if not checked.accepted:
        return
    typed = UsageBatch.model_construct(batch_id="b", received_at=NOW, events=checked.accepted)
    assert UsageBatch.model_validate_json(typed.model_dump_json()).events == checked.accepted
    if len(checked.accepted) == len(events):  # the raw body is spliced into the message: the same events
        spliced = b'{"batch_id":"b","received_at":"2026-11-20T12:00:00Z",' + body.lstrip()[1:]
        assert UsageBatch.model_validate_json(spliced).events == checked.accepted


@given(st.lists(_event, min_size=1, max_size=6))
def test_any_batch_gets_a_result_per_event_and_what_is_accepted_is_what_the_aggregator_reads(
    events: list[Any],
) -> None:
    body = json.dumps({"events": events}).encode()
    _roundtrip(body, json.loads(body)["events"])


@pytest.mark.parametrize(
    "body",
    [
        b'{"events": [{"id": "__x__", "id": "e1", "customer": "c", "event_name": "x", "timestamp": 1763636400}]}',
        b'{"events": [{"id": "..", "customer": "c"}], "events": [{"id": "e9", "customer": "c", "event_name": "x",'
        b' "timestamp": "2026-11-20T11:00:00Z"}]}',
        b'{"\\u0065vents": [{"id": "e1", "customer": "c", "event_name": "\\u00e9\\n", "timestamp": '
        b'"2026-11-20T11:00:00+14:00", "properties": {"k": "\\ud83d\\ude00", "n": -1000000000000}}]}',
    ],
)
def test_duplicate_keys_and_escapes_read_the_same_at_the_edge_and_in_the_aggregator(body: bytes) -> None:
    parsed = json.loads(body)
    assert list(parsed) == ["events"]
    _roundtrip(body, parsed["events"])


# -- rating: the tiers reported add up to the amount -------------------------------------------------------------


def _price(pricing: dict[str, Any], currency: str = "EUR") -> Price:
    return Price.model_validate(
        {"id": "p", "product_id": "api", "currency": currency, "recurring": {"interval": "month"}, "pricing": pricing}
    )


TIERS = [
    {"up_to": 10, "unit_amount": "0", "flat_amount": "100"},
    {"up_to": 100, "unit_amount": "2.5"},
    {"up_to": None, "unit_amount": "0.001"},
]


@given(
    st.decimals(min_value=0, max_value=10**6, places=3, allow_nan=False, allow_infinity=False),
    st.sampled_from(["graduated", "volume"]),
    st.sampled_from(["EUR", "JPY", "KWD"]),
)
def test_the_tiers_applied_add_up_to_the_exact_amount_rounded_once(q: Decimal, model: str, currency: str) -> None:
    price = _price({"model": model, "tiers": TIERS}, currency)
    r = rate(price, q)
    exact = exact_amount(price.pricing, q)
    if q > 0:
        assert sum(Fraction(Decimal(t.amount)) for t in r.tiers) == exact
        assert sum(Fraction(Decimal(t.units)) for t in r.tiers) == Fraction(q)
    assert r.amount.amount == int(exact + Fraction(1, 2))  # minor units, half-up, once
