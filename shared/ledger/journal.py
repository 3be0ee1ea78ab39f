"""A pure, append-only double-entry journal in integer minor units.

Why pure: the invariants (every entry sums to zero per currency; the same cause posts once; balances are
a fold over entries) are what makes the books trustworthy, so they live in code without I/O that
hypothesis can hammer. The Firestore store only persists what this module builds and validates.

Sign convention: a posting's ``amount`` is a debit when positive and a credit when negative, so an
asset account (PSP balance, receivable, bank) has a positive balance and revenue a negative one.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from shared.domain.iso4217 import EXPONENTS

MAX_MINOR = 10**15


class UnbalancedEntry(ValueError):
    """An entry whose postings do not sum to zero in one of its currencies."""


class ConflictingEntry(ValueError):
    """The same cause (entry id) posted again with different postings: a bug, never silently accepted."""


def entry_id(cause: str) -> str:
    """Entry id derived from its cause: redelivery of the cause finds the entry already there."""
    return hashlib.sha256(cause.encode()).hexdigest()[:40]


# --- accounts: one naming scheme, so reports can group by prefix -------------------------------------


def receivable(customer_id: str | None) -> str:
    return f"receivable:{customer_id or 'unknown'}"


def psp_balance(psp: str, account: str) -> str:
    """What the PSP holds for us (settled, not yet paid out): the PSP's own view of our balance."""
    return f"psp_balance:{psp}:{account}"


def psp_pending(psp: str, account: str) -> str:
    """Money a payment fact says is ours at the PSP and no settlement line has booked yet (the clearing
    account of reconciliation: zero per currency when everything matched)."""
    return f"psp_pending:{psp}:{account}"


def psp_fees(psp: str, kind: str) -> str:
    return f"psp_fees:{psp}:{kind}"


def bank_in_transit(psp: str, account: str) -> str:
    return f"bank:{psp}:{account}"


def adjustments(psp: str) -> str:
    return f"psp_adjustments:{psp}"


REVENUE = "revenue"
TAX_PAYABLE = "tax_payable"
CREDIT_NOTES = "credit_notes"  # contra-revenue: what credit notes gave back
CHARGEBACKS = "chargebacks"
FX = "fx"  # conversion position: the presentment leg against the settlement leg
RECON_ADJUSTMENTS = "reconciliation_adjustments"  # where a resolved exception's amount goes


@dataclass(frozen=True, slots=True)
class Posting:
    account: str
    currency: str
    amount: int  # > 0 debit, < 0 credit

    def __post_init__(self) -> None:
        if type(self.amount) is not int:
            raise TypeError("posting amounts are int minor units")
        if self.currency not in EXPONENTS:
            raise ValueError(f"unknown currency {self.currency}")
        if not self.account:
            raise ValueError("posting without account")
        if abs(self.amount) > MAX_MINOR:
            raise ValueError("posting amount out of range")


@dataclass(frozen=True, slots=True)
class Entry:
    """One balanced journal entry. Zero-amount postings are dropped; postings are kept in a canonical
    order so two builds of the same cause compare equal."""

    cause: str
    occurred_at: dt.datetime
    postings: tuple[Posting, ...]
    memo: str = ""
    id: str = field(default="")

    def __post_init__(self) -> None:
        merged: dict[tuple[str, str], int] = defaultdict(int)
        for p in self.postings:
            merged[(p.account, p.currency)] += p.amount
        canon = tuple(Posting(a, c, v) for (a, c), v in sorted(merged.items()) if v)
        object.__setattr__(self, "postings", canon)
        object.__setattr__(self, "id", self.id or entry_id(self.cause))
        if self.occurred_at.tzinfo is None:
            raise ValueError("occurred_at must be timezone-aware")
        for cur, total in totals_by_currency(canon).items():
            if total:
                raise UnbalancedEntry(f"entry {self.cause!r} is off by {total} {cur}")

    @property
    def empty(self) -> bool:
        return not self.postings

    def to_doc(self) -> dict[str, object]:
        return {
            "cause": self.cause,
            "occurred_at": self.occurred_at,
            "memo": self.memo,
            "postings": [{"account": p.account, "currency": p.currency, "amount": p.amount} for p in self.postings],
            "accounts": sorted({p.account for p in self.postings}),
        }

    @classmethod
    def from_doc(cls, doc: Mapping[str, object], entry_id_: str = "") -> Entry:
        raw = doc["postings"]
        assert isinstance(raw, list)
        occurred = doc["occurred_at"]
        assert isinstance(occurred, dt.datetime)
        return cls(
            cause=str(doc["cause"]),
            occurred_at=occurred,
            postings=tuple(Posting(str(p["account"]), str(p["currency"]), int(p["amount"])) for p in raw),
            memo=str(doc.get("memo") or ""),
            id=entry_id_,
        )


def totals_by_currency(postings: Iterable[Posting]) -> dict[str, int]:
    out: dict[str, int] = defaultdict(int)
    for p in postings:
        out[p.currency] += p.amount
    return dict(out)


Balances = dict[tuple[str, str], int]


def fold(entries: Iterable[Entry], into: Balances | None = None) -> Balances:
    """Balances per (account, currency): the only way a balance exists."""
    out: Balances = defaultdict(int, into or {})
    for e in entries:
        for p in e.postings:
            out[(p.account, p.currency)] += p.amount
    return {k: v for k, v in out.items() if v}


def trial_balance(balances: Mapping[tuple[str, str], int]) -> dict[str, int]:
    """Sum of all balances per currency: zero for every currency in a sound ledger."""
    out: dict[str, int] = defaultdict(int)
    for (_, cur), v in balances.items():
        out[cur] += v
    return {c: v for c, v in out.items() if v}


def by_prefix(balances: Mapping[tuple[str, str], int], prefix: str) -> dict[tuple[str, str], int]:
    return {k: v for k, v in balances.items() if k[0] == prefix or k[0].startswith(prefix + ":")}


class Journal:
    """In-memory journal with the store's semantics: append-only, idempotent by entry id."""

    def __init__(self) -> None:
        self._entries: dict[str, Entry] = {}

    def post(self, entry: Entry) -> bool:
        """True when appended, False when the same entry was already there (a redelivery)."""
        if entry.empty:
            return False
        old = self._entries.get(entry.id)
        if old is not None:
            if old.postings != entry.postings:
                raise ConflictingEntry(f"entry {entry.cause!r} was posted with other postings")
            return False
        self._entries[entry.id] = entry
        return True

    @property
    def entries(self) -> tuple[Entry, ...]:
        return tuple(self._entries.values())

    def balances(self) -> Balances:
        return fold(self._entries.values())
