"""Amount parsing at the settlement boundary: exact, bounded, never a float, hostile text refused precisely."""

from __future__ import annotations

from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from shared.domain.iso4217 import EXPONENTS
from shared.settlement.adapters.common import (
    LineIds,
    SettlementFormatError,
    Where,
    currency,
    dict_rows,
    minor_exact,
    minor_rounded,
    parse_decimal,
    parse_int,
    parse_rate,
    to_major,
)
from shared.settlement.lines import MAX_MINOR

W = Where("test.csv", 7)
WITH_MINOR_UNIT = sorted(c for c, e in EXPONENTS.items() if e is not None)


@given(st.sampled_from(WITH_MINOR_UNIT), st.integers(-MAX_MINOR, MAX_MINOR))
def test_minor_units_round_trip_through_the_decimal_string_for_every_exponent(code: str, minor: int) -> None:
    major = to_major(minor, code)
    assert minor_exact(parse_decimal(major, W, "amount"), code, W, "amount") == minor
    exp = EXPONENTS[code]
    assert exp is not None
    assert ("." in major) is (exp > 0)
    if exp:
        assert len(major.split(".")[1]) == exp


@pytest.mark.parametrize(
    "raw", ["NaN", "nan", "inf", "-Infinity", "1e3", "1E-2", "1,000.00", "12.", ".5", "0x10", " ", "1 000", "--1", "١٢"]
)
def test_non_plain_decimals_are_refused_with_the_field_and_row(raw: str) -> None:
    with pytest.raises(SettlementFormatError) as err:
        parse_decimal(raw, W, "Net Credit (NC)")
    assert (err.value.source, err.value.row, err.value.field) == ("test.csv", 7, "Net Credit (NC)")
    assert "test.csv row 7 [Net Credit (NC)]" in str(err.value)


def test_floats_are_refused_even_when_they_look_exact() -> None:
    with pytest.raises(SettlementFormatError, match="float"):
        parse_decimal(0.5, W, "amount")
    with pytest.raises(SettlementFormatError):
        parse_int(10.0, W, "amount")
    with pytest.raises(SettlementFormatError):
        parse_int(True, W, "amount")


def test_more_decimals_than_the_currency_allows_is_an_error_not_a_rounding() -> None:
    with pytest.raises(SettlementFormatError, match="more decimals than EUR"):
        minor_exact(Decimal("10.999"), "EUR", W, "gross")
    with pytest.raises(SettlementFormatError, match="JPY"):
        minor_exact(Decimal("100.5"), "JPY", W, "gross")
    assert minor_exact(Decimal("1.234"), "KWD", W, "gross") == 1234
    assert minor_exact(Decimal("10.990"), "EUR", W, "gross") == 1099


def test_amounts_beyond_the_bound_are_refused() -> None:
    with pytest.raises(SettlementFormatError, match="bounds"):
        minor_exact(Decimal("99999999999999999"), "EUR", W, "gross")
    with pytest.raises(SettlementFormatError, match="bounds"):
        parse_int(MAX_MINOR + 1, W, "amount")


def test_half_even_rounding_only_where_documented() -> None:
    assert minor_rounded(Decimal("0.125"), "EUR", W, "net") == 12
    assert minor_rounded(Decimal("0.135"), "EUR", W, "net") == 14
    assert minor_rounded(Decimal("-0.19526938"), "EUR", W, "net") == -20


def test_rates_and_currencies() -> None:
    assert parse_rate(0.91, W, "exchange_rate") == Decimal("0.91")  # an SDK float, read by its shortest repr
    assert parse_rate("1.1723", W, "rate") == Decimal("1.1723")
    assert parse_rate("", W, "rate") is None
    for bad in ("0", "-1.2", "1e2", "NaN"):
        with pytest.raises(SettlementFormatError):
            parse_rate(bad, W, "rate")
    assert currency("eur", W, "currency") == "EUR"
    for bad in ("XAU", "EURO", "", "ZZZ"):
        with pytest.raises(SettlementFormatError, match="unknown currency"):
            currency(bad, W, "currency")


@given(st.text(max_size=24))
def test_any_text_is_either_an_exact_decimal_or_a_format_error(raw: str) -> None:
    try:
        value = parse_decimal(raw, W, "amount")
    except SettlementFormatError:
        return
    assert value.is_finite()
    assert value == Decimal(raw.strip())


def test_csv_shape_errors_name_the_row() -> None:
    with pytest.raises(SettlementFormatError, match="row 3"):
        list(dict_rows(b"a,b\n1,2\n1,2,3\n", "f.csv", frozenset({"a"})))
    with pytest.raises(SettlementFormatError, match="missing columns"):
        list(dict_rows(b"a,b\n", "f.csv", frozenset({"c"})))
    with pytest.raises(SettlementFormatError, match="duplicate"):
        list(dict_rows(b"a,a\n", "f.csv", frozenset()))
    with pytest.raises(SettlementFormatError, match="UTF-8"):
        list(dict_rows(b"a\n\xff\n", "f.csv", frozenset()))
    with pytest.raises(SettlementFormatError, match="NUL"):
        list(dict_rows(b"a\n\x00\n", "f.csv", frozenset()))
    with pytest.raises(SettlementFormatError, match="empty"):
        list(dict_rows(b"", "f.csv", frozenset()))
    assert [r for _, r in dict_rows(b"\xef\xbb\xbfa\n1\n", "f.csv", frozenset({"a"}))] == [{"a": "1"}]


def test_line_ids_are_stable_and_unique_within_a_source() -> None:
    ids = LineIds()
    assert [ids("x"), ids("y"), ids("x"), ids("x")] == ["x", "y", "x#2", "x#3"]
