"""What every settlement adapter shares: strict amount parsing, CSV reading, and one precise error.

Why strict: a settlement file is money we are told we received. A float, an exponent (``1e3``), ``NaN``,
a thousands separator or a fraction finer than the currency allows is either a format we do not know or a
hostile row, and guessing would book a wrong amount silently. Every such case raises
:class:`SettlementFormatError` naming the source, the row and the field, and the whole intake is refused:
never a partial batch.
"""

from __future__ import annotations

import csv
import datetime as dt
import decimal
import io
import re
from collections.abc import Iterator, Mapping
from decimal import Decimal
from typing import Any

from pydantic import ValidationError

from shared.domain.iso4217 import EXPONENTS
from shared.settlement.lines import MAX_MINOR, Fee, LineType, SettlementLine

MAX_FILE_BYTES = 256 * 1024 * 1024  # a settlement file larger than this is not one we expect
MAX_PLACES = 8  # Checkout.com states up to 8 decimals, the finest of the six; anything finer is not a PSP amount
_DECIMAL = re.compile(rf"[+-]?[0-9]{{1,18}}(?:\.[0-9]{{1,{MAX_PLACES}}})?")
_INTEGER = re.compile(r"[+-]?[0-9]{1,18}")
_RATE = re.compile(r"[0-9]{1,12}(?:\.[0-9]{1,20})?")
_EXACT = decimal.Context(prec=60, traps=[decimal.Inexact, decimal.InvalidOperation, decimal.Overflow])


class SettlementFormatError(ValueError):
    """The source is not what the PSP documents (or is hostile): refused whole, with where and why."""

    def __init__(self, message: str, *, source: str, row: int | None = None, field: str | None = None) -> None:
        self.source, self.row, self.field, self.reason = source, row, field, message
        where = source + (f" row {row}" if row is not None else "") + (f" [{field}]" if field else "")
        super().__init__(f"{where}: {message}")


class Where:
    """Source, row and field context for errors raised while reading one record."""

    def __init__(self, source: str, row: int | None = None) -> None:
        self.source, self.row = source, row

    def error(self, message: str, field: str | None = None) -> SettlementFormatError:
        return SettlementFormatError(message, source=self.source, row=self.row, field=field)

    def at(self, row: int | None) -> Where:
        return Where(self.source, row)


# -- amounts ----------------------------------------------------------------------------------------
def currency(code: object, where: Where, field: str) -> str:
    """An ISO 4217 code with a minor unit (PSPs write them lower case too: Stripe ``eur``)."""
    text = str(code or "").strip().upper()
    if EXPONENTS.get(text) is None:
        raise where.error(f"unknown currency {str(code)[:16]!r}", field)
    return text


def exponent(code: str) -> int:
    exp = EXPONENTS[code]
    assert exp is not None  # currency() let only codes with a minor unit through
    return exp


def parse_decimal(text: object, where: Where, field: str, *, empty_is_zero: bool = False) -> Decimal:
    """A plain decimal string (``-12.345``): no exponent, separator, NaN, infinity or float."""
    if isinstance(text, float):
        raise where.error("float amounts are refused (precision already lost)", field)
    raw = "" if text is None else str(text).strip()
    if raw == "" and empty_is_zero:
        return Decimal(0)
    if not _DECIMAL.fullmatch(raw):
        raise where.error(f"not a plain decimal amount: {raw[:32]!r}", field)
    return Decimal(raw)


def parse_int(text: object, where: Where, field: str) -> int:
    """A whole number (JSON int or digit string); bools and floats are not amounts."""
    if isinstance(text, int) and not isinstance(text, bool):
        value = text
    elif isinstance(text, str) and _INTEGER.fullmatch(text.strip()):
        value = int(text.strip())
    else:
        raise where.error(f"not an integer amount: {str(text)[:32]!r}", field)
    return bounded(value, where, field)


def parse_rate(text: object, where: Where, field: str) -> Decimal | None:
    """An exchange rate as the PSP states it; None when absent. A float from a JSON SDK is read by its repr."""
    if text is None or (isinstance(text, str) and text.strip() == ""):
        return None
    raw = repr(text) if isinstance(text, float) else str(text).strip()
    if not _RATE.fullmatch(raw) or Decimal(raw) <= 0:
        raise where.error(f"not a positive exchange rate: {raw[:32]!r}", field)
    return Decimal(raw)


def bounded(value: int, where: Where, field: str) -> int:
    if abs(value) > MAX_MINOR:
        raise where.error("amount out of bounds", field)
    return value


def minor_exact(amount: Decimal, code: str, where: Where, field: str) -> int:
    """Major units to minor units that must fit the exponent exactly (``10.999`` EUR is refused)."""
    try:
        scaled = _EXACT.scaleb(amount, exponent(code))
        value = int(_EXACT.to_integral_exact(scaled))
    except decimal.DecimalException:
        raise where.error(f"{amount} has more decimals than {code} allows ({exponent(code)})", field) from None
    return bounded(value, where, field)


def minor_rounded(amount: Decimal, code: str, where: Where, field: str) -> int:
    """Major units to minor units, half-even: only for sources documented as finer than the exponent."""
    scaled = amount.scaleb(exponent(code))
    return bounded(int(scaled.to_integral_value(rounding=decimal.ROUND_HALF_EVEN)), where, field)


def to_major(minor: int, code: str) -> str:
    """Minor units back to the PSP's decimal string (``1099`` EUR -> ``10.99``): the inverse of minor_exact."""
    exp = exponent(code)
    return f"{Decimal(minor).scaleb(-exp):.{exp}f}"


# -- text and time ------------------------------------------------------------------------------------
def text(value: object, where: Where, field: str, *, required: bool = False, max_len: int = 256) -> str | None:
    """A reference field: stripped, bounded, no control characters; None when empty."""
    raw = "" if value is None else str(value).strip()
    if raw == "":
        if required:
            raise where.error("missing", field)
        return None
    if len(raw) > max_len or any(ord(c) < 32 or ord(c) == 127 for c in raw):
        raise where.error("not a plain reference (too long or control characters)", field)
    return raw


def utc_from_unix(value: object, where: Where, field: str) -> dt.datetime:
    if not isinstance(value, int) or isinstance(value, bool) or not 0 < value < 2**37:
        raise where.error(f"not a unix timestamp: {str(value)[:32]!r}", field)
    return dt.datetime.fromtimestamp(value, dt.UTC)


def parse_iso(value: object, where: Where, field: str) -> dt.datetime:
    """An ISO 8601 / RFC 3339 timestamp with an offset (``Z`` allowed), as UTC."""
    raw = str(value or "").strip()
    try:
        parsed = dt.datetime.fromisoformat(raw.replace("Z", "+00:00"))
    except ValueError:
        raise where.error(f"not an ISO 8601 timestamp: {raw[:40]!r}", field) from None
    if parsed.tzinfo is None:
        raise where.error(f"timestamp without offset: {raw[:40]!r}", field)
    return parsed.astimezone(dt.UTC)


def parse_date(value: object, where: Where, field: str) -> dt.date:
    raw = str(value or "").strip()
    try:
        return dt.date.fromisoformat(raw)
    except ValueError:
        raise where.error(f"not a date: {raw[:40]!r}", field) from None


# -- CSV ----------------------------------------------------------------------------------------------
def decode(data: bytes, source: str) -> str:
    """UTF-8 (a BOM is allowed: PayPal writes one), no NUL bytes, bounded size."""
    if len(data) > MAX_FILE_BYTES:
        raise SettlementFormatError("file too large", source=source)
    try:
        content = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise SettlementFormatError(f"not UTF-8 at byte {exc.start}", source=source) from None
    if "\x00" in content:
        raise SettlementFormatError("NUL byte in file", source=source)
    return content


def records(content: str, source: str) -> Iterator[tuple[int, list[str]]]:
    """CSV records with their 1-based line numbers; blank lines skipped; malformed quoting refused."""
    reader = csv.reader(io.StringIO(content, newline=""), strict=True)
    try:
        for fields in reader:
            if fields and any(f.strip() for f in fields):
                yield reader.line_num, fields
    except csv.Error as exc:
        raise SettlementFormatError(f"malformed CSV: {exc}", source=source, row=reader.line_num) from None


def header(fields: list[str], where: Where, required: frozenset[str]) -> list[str]:
    """Column names (whitespace collapsed): duplicates and missing required columns are refused."""
    names = [" ".join(f.split()) for f in fields]
    if len(set(names)) != len(names):
        raise where.error("duplicate column names in header")
    missing = sorted(required - set(names))
    if missing:
        raise where.error(f"missing columns {missing}")
    return names


def row_dict(names: list[str], fields: list[str], where: Where) -> dict[str, str]:
    if len(fields) != len(names):
        raise where.error(f"{len(fields)} fields where the header has {len(names)}")
    return dict(zip(names, fields, strict=True))


def dict_rows(data: bytes, source: str, required: frozenset[str]) -> Iterator[tuple[Where, dict[str, str]]]:
    """A header-first CSV as dicts keyed by column name (parse by header: PSPs reorder and add columns)."""
    names: list[str] | None = None
    for line, fields in records(decode(data, source), source):
        where = Where(source, line)
        if names is None:
            names = header(fields, where, required)
            continue
        yield where, row_dict(names, fields, where)
    if names is None:
        raise SettlementFormatError("empty file (no header)", source=source)


# -- lines ----------------------------------------------------------------------------------------------
def fees_of(components: Mapping[str, int]) -> tuple[Fee, ...]:
    """Fee components, zero ones dropped, in the order given."""
    return tuple(Fee(kind=k, amount=v) for k, v in components.items() if v != 0)


def fee_only(kind: str, gross: int, fees: tuple[Fee, ...]) -> tuple[int, tuple[Fee, ...]]:
    """A FEE line has no payment gross: what the PSP put in its gross becomes a fee component named ``kind``.

    Why: the ledger posts ``fees`` to the fee accounts; a monthly or payout fee written as a negative gross
    would be booked as revenue going out instead.
    """
    if gross == 0:
        return 0, fees
    return 0, (*fees, Fee(kind=kind, amount=-gross))


def make_line(where: Where, **fields: Any) -> SettlementLine:
    """A validated line; a contract violation (net != gross - fees, bad currency ...) names the row."""
    fields.setdefault("source", f"{where.source}#{where.row}" if where.row is not None else where.source)
    try:
        return SettlementLine(**fields)
    except ValidationError as exc:
        first = exc.errors()[0]
        loc = ".".join(str(p) for p in first.get("loc", ())) or None
        raise where.error(str(first.get("msg", exc)), loc) from None


class LineIds:
    """Stable line ids within one source: a repeated natural key gets ``#2``, ``#3`` in order of appearance."""

    def __init__(self) -> None:
        self._seen: dict[str, int] = {}

    def __call__(self, natural: str) -> str:
        n = self._seen.get(natural, 0) + 1
        self._seen[natural] = n
        return natural if n == 1 else f"{natural}#{n}"


def payout_line_type(kind: LineType) -> bool:
    return kind is LineType.PAYOUT
