"""Series formatting and the gap audit, without I/O."""

from __future__ import annotations

import datetime as dt

import pytest
from hypothesis import given
from hypothesis import strategies as st

from shared.domain.numbering import NumberingError, SeriesDef, audit, parse_seq

AT = dt.datetime(2026, 12, 31, 23, 30, tzinfo=dt.timezone(dt.timedelta(hours=-2)))  # 2027 in UTC


def test_yearly_series_resets_by_utc_year() -> None:
    s = SeriesDef("acme-fr", "invoice", "INV")
    assert s.series_id(AT) == "acme-fr.INV.2027"
    assert s.format(123, AT) == "INV-2027-000123"
    assert s.format(1234567, AT) == "INV-2027-1234567"
    assert parse_seq("INV-2027-000123") == 123


def test_never_reset_series() -> None:
    s = SeriesDef("acme-jp", "invoice", "JP", reset="never", width=4)
    assert (s.series_id(AT), s.format(7, AT)) == ("acme-jp.JP", "JP-0007")


def test_bad_definitions_and_numbers() -> None:
    with pytest.raises(NumberingError):
        SeriesDef("Acme FR", "invoice", "INV")
    with pytest.raises(NumberingError):
        SeriesDef("acme", "invoice", "inv")
    with pytest.raises(NumberingError):
        SeriesDef("acme", "invoice", "INV").format(0, AT)
    with pytest.raises(NumberingError):
        SeriesDef("acme", "invoice", "INV").series_id(dt.datetime(2026, 1, 1))  # naive
    with pytest.raises(NumberingError):
        parse_seq("INV-2026-")


def test_audit_finds_gaps_duplicates_and_counter_overrun() -> None:
    r = audit("s", [1, 2, 4, 4, 7], counter=9)
    assert r.gaps == ((3, 3), (5, 6), (8, 9))
    assert r.duplicates == ((4, 2),)
    assert not r.ok
    assert "GAP 5..6" in r.render()
    assert audit("s", [2, 1, 3], counter=3).ok
    assert audit("s", [], counter=None).ok
    assert not audit("s", [1, 2, 3], counter=2).ok  # counter behind the documents


@given(st.sets(st.integers(1, 300)))
def test_audit_gaps_are_exactly_the_missing_numbers(present: set[int]) -> None:
    r = audit("s", sorted(present))
    missing = {n for a, b in r.gaps for n in range(a, b + 1)}
    assert missing == set(range(1, max(present, default=0) + 1)) - present
    assert r.duplicates == ()


_PREFIXES = st.from_regex(r"[A-Z][A-Z0-9]{0,11}(-[A-Z0-9]{1,12})?", fullmatch=True)
_ENTITIES = st.from_regex(r"[a-z0-9][a-z0-9-]{0,39}", fullmatch=True)


@given(
    _ENTITIES,
    st.sampled_from(["invoice", "credit_note"]),
    _PREFIXES,
    st.sampled_from(["yearly", "never"]),
    st.integers(1, 12),
    st.integers(1, 10**13),
    st.datetimes(dt.datetime(2000, 1, 1), dt.datetime(2100, 1, 1), timezones=st.just(dt.UTC)),
)
def test_a_stored_definition_formats_exactly_as_the_definition(
    entity: str, doc_type: str, prefix: str, reset: str, width: int, seq: int, at: dt.datetime
) -> None:
    """What a queued document carries is enough to print its number, and prints the same number."""
    s = SeriesDef(entity, doc_type, prefix, reset, width)  # type: ignore[arg-type]
    back = SeriesDef.from_fields(s.to_fields())
    assert back == s
    assert back.format(seq, at) == s.format(seq, at)
    assert back.series_id(at) == s.series_id(at)


def test_a_malformed_stored_definition_is_refused() -> None:
    good = SeriesDef("acme-fr", "invoice", "INV").to_fields()
    for bad in (
        None,
        {k: v for k, v in good.items() if k != "prefix"},
        {**good, "reset": "monthly"},
        {**good, "doc_type": "receipt"},
        {**good, "width": "6"},
        {**good, "prefix": "inv"},
    ):
        with pytest.raises(NumberingError):
            SeriesDef.from_fields(bad)


@given(
    st.dictionaries(
        st.from_regex(r"invoices/in_[a-z0-9]{1,20}", fullmatch=True),
        st.tuples(
            st.integers(1, 10**9),
            st.datetimes(dt.datetime(2000, 1, 1), dt.datetime(2100, 1, 1), timezones=st.just(dt.UTC)),
        ),
        max_size=20,
    )
)
def test_the_batch_record_gives_back_exactly_the_numbering_fields(rows: dict[str, tuple[int, dt.datetime]]) -> None:
    """What the series document records of a commit is what the documents got (no lossy encoding)."""
    from shared.invoicing.allocator import batch_fields, batch_record

    s = SeriesDef("acme-fr", "invoice", "INV")
    assigned = {
        p: {"seq": q, "number": s.format(q, at), "status": "open", "finalized_at": at, "series_id": s.series_id(at)}
        for p, (q, at) in rows.items()
    }
    back = batch_fields("the-series", batch_record(assigned))
    assert back == {p: {**f, "series_id": "the-series"} for p, f in assigned.items()}
    assert batch_fields("x", "not json") is None
    assert batch_fields("x", None) == {}
