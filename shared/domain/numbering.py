"""Legal document numbering: series definitions, formatting and the gap audit. Pure, no I/O.

A *series* is what a tax auditor checks for continuity: one legal entity, one document type (invoice,
credit note), and either one sequence per calendar year (``reset="yearly"``, ``INV-2026-000123``) or
one sequence forever (``reset="never"``, ``INV-000123``). Sequences start at 1, are gapless and never
reused; the allocator (shared.invoicing.allocator) is what guarantees it, the audit here proves it.
"""

from __future__ import annotations

import datetime as dt
import re
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any, Literal, cast

Reset = Literal["yearly", "never"]
DocType = Literal["invoice", "credit_note"]

_PREFIX = re.compile(r"^[A-Z][A-Z0-9]{0,11}(?:-[A-Z0-9]{1,12})?$")
_ENTITY = re.compile(r"^[a-z0-9][a-z0-9-]{0,39}$")


class NumberingError(ValueError):
    """A malformed series definition or a number that does not belong to its series."""


@dataclass(frozen=True, slots=True)
class SeriesDef:
    """How one legal entity numbers one document type."""

    entity: str
    doc_type: DocType
    prefix: str  # "INV", "CN", "FR-INV"
    reset: Reset = "yearly"
    width: int = 6  # zero padding; numbers beyond it simply grow wider

    def __post_init__(self) -> None:
        if not _ENTITY.match(self.entity):
            raise NumberingError(f"entity {self.entity!r} must be lowercase letters, digits and hyphens")
        if not _PREFIX.match(self.prefix):
            raise NumberingError(f"prefix {self.prefix!r} must be upper-case letters/digits, one optional hyphen")
        if not 1 <= self.width <= 12:
            raise NumberingError("width must be 1..12")

    def period(self, at: dt.datetime) -> str | None:
        """The reset period a document issued at ``at`` (UTC) belongs to."""
        if at.tzinfo is None:
            raise NumberingError("issue time must be timezone-aware")
        return str(at.astimezone(dt.UTC).year) if self.reset == "yearly" else None

    def series_id(self, at: dt.datetime) -> str:
        """Stable id of the concrete sequence, e.g. ``acme-fr.INV.2026`` (a Firestore id and a path part)."""
        period = self.period(at)
        return f"{self.entity}.{self.prefix}" + (f".{period}" if period else "")

    def format(self, seq: int, at: dt.datetime) -> str:
        """The printed number of sequence ``seq`` for a document issued at ``at``: the ONE number format."""
        if type(seq) is not int or seq < 1:
            raise NumberingError("sequence numbers start at 1")
        period = self.period(at)
        return f"{self.prefix}-" + (f"{period}-" if period else "") + f"{seq:0{self.width}d}"

    def to_fields(self) -> dict[str, Any]:
        """The definition as stored on a document waiting for its number (Firestore map).

        The allocator formats from it, so a number is printed by the definition in force when the
        document was drafted, and the format lives only in :meth:`format`.
        """
        return {
            "entity": self.entity,
            "doc_type": self.doc_type,
            "prefix": self.prefix,
            "reset": self.reset,
            "width": self.width,
        }

    @classmethod
    def from_fields(cls, d: Any) -> SeriesDef:
        """Inverse of :meth:`to_fields`; a malformed map raises :class:`NumberingError`."""
        if not isinstance(d, dict):
            raise NumberingError(f"series definition must be a map, got {type(d).__name__}")
        try:
            doc_type, reset, width = d["doc_type"], d["reset"], d["width"]
            if doc_type not in ("invoice", "credit_note") or reset not in ("yearly", "never"):
                raise NumberingError(f"unknown doc_type/reset in series definition {d!r}")
            if type(width) is not int:
                raise NumberingError("width must be an integer")
            return cls(str(d["entity"]), cast(DocType, doc_type), str(d["prefix"]), cast(Reset, reset), width)
        except KeyError as exc:
            raise NumberingError(f"series definition lacks {exc}") from None


def parse_seq(number: str) -> int:
    """The sequence part of a formatted number (the digits after the last hyphen)."""
    tail = number.rsplit("-", 1)[-1]
    if not tail.isdigit():
        raise NumberingError(f"{number!r} does not end in a sequence number")
    return int(tail)


@dataclass(frozen=True, slots=True)
class AuditReport:
    """What an auditor asks: how many, up to where, which numbers are missing, which appear twice."""

    series_id: str
    count: int
    last: int  # highest sequence issued (or the counter, when it is higher)
    gaps: tuple[tuple[int, int], ...]  # inclusive ranges of missing sequence numbers
    duplicates: tuple[tuple[int, int], ...]  # (sequence, times seen) for every sequence seen twice or more
    notes: tuple[str, ...] = field(default=())

    @property
    def ok(self) -> bool:
        return not self.gaps and not self.duplicates and not self.notes

    def render(self) -> str:
        lines = [f"series {self.series_id}: {self.count} documents, last number {self.last}"]
        lines += [f"  GAP {a}" if a == b else f"  GAP {a}..{b}" for a, b in self.gaps]
        lines += [f"  DUPLICATE {seq} seen {n} times" for seq, n in self.duplicates]
        lines += [f"  NOTE {n}" for n in self.notes]
        lines.append("  OK: gapless, no duplicate" if self.ok else "  NOT OK")
        return "\n".join(lines)


def audit(series_id: str, seqs: Iterable[int], *, counter: int | None = None) -> AuditReport:
    """Gaps and duplicates in a series; ``counter`` (the allocator's last value) extends the range.

    A counter above the highest document means numbers were consumed without a document: a gap.
    """
    counts = Counter(seqs)
    notes: list[str] = []
    bad = sorted(s for s in counts if s < 1)
    if bad:
        notes.append(f"sequence numbers below 1: {bad}")
    top = max([s for s in counts if s >= 1], default=0)
    if counter is not None and counter < top:
        notes.append(f"counter {counter} is below the highest issued number {top}")
    last = max(top, counter or 0)
    gaps: list[tuple[int, int]] = []
    start: int | None = None
    for s in range(1, last + 2):
        missing = s <= last and s not in counts
        if missing and start is None:
            start = s
        elif not missing and start is not None:
            gaps.append((start, s - 1))
            start = None
    dups = tuple(sorted((s, n) for s, n in counts.items() if n > 1))
    return AuditReport(series_id, sum(counts.values()), last, tuple(gaps), dups, tuple(notes))
