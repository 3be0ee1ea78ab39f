"""A customer's credit balance as an append-only ledger of immutable entries. Pure, no I/O.

Why a ledger and not a balance field: a balance updated in place loses writes under concurrency and
cannot be audited; a ledger whose entries have **deterministic ids** can be written with a create-only
write, so a retried or concurrent application of the same fact is rejected by the store itself.

Entries (one currency per balance; amounts signed, the balance is their exact sum and never negative):

* ``grant``        (+) credit given by an operator (goodwill, migration);
* ``credit_note``  (+) the part of a credit note credited to the balance (id ``credit_note:<credit_note_id>``);
* ``application``  (-) credit used to pay an invoice (id ``application:<invoice_id>``: ONE per invoice);
* ``reversal``     (-x of the entry reversed, id ``reversal:<entry_id>``): a voided invoice gives its
  application back, a grant given by mistake is taken back (only if the credit is still there).

The credit is a **payment**, not a discount: it is applied after tax, to the amount due, capped at it, so
it never changes the tax base (:func:`application`). Applying twice for one invoice is a no-op that returns
the first decision, so the invoice's amount due is the same however many times it is composed.
"""

from __future__ import annotations

import datetime as dt
import enum
from collections.abc import Sequence

from pydantic import Field, model_validator

from shared.domain.catalog import Frozen
from shared.domain.money import Money


class CreditError(ValueError):
    """A ledger that breaks an invariant, or an entry that would."""


class EntryKind(enum.StrEnum):
    GRANT = "grant"
    CREDIT_NOTE = "credit_note"
    APPLICATION = "application"
    REVERSAL = "reversal"


_POSITIVE = frozenset({EntryKind.GRANT, EntryKind.CREDIT_NOTE})


class CreditEntry(Frozen):
    """One immutable fact of a customer's balance; ``id`` is its idempotency key (see the module doc)."""

    id: str = Field(min_length=1, max_length=300)
    customer_id: str = Field(min_length=1)
    kind: EntryKind
    amount: Money
    at: dt.datetime
    invoice_id: str | None = None
    credit_note_id: str | None = None
    reverses: str | None = None
    reason: str | None = Field(default=None, max_length=500)

    @model_validator(mode="after")
    def _signed(self) -> CreditEntry:
        a = self.amount.amount
        if a == 0:
            raise ValueError("a credit entry moves a non-zero amount")
        if self.kind in _POSITIVE and a < 0:
            raise ValueError(f"a {self.kind} entry is positive")
        if self.kind is EntryKind.APPLICATION and (a > 0 or self.invoice_id is None):
            raise ValueError("an application is negative and names its invoice")
        if self.kind is EntryKind.REVERSAL and self.reverses is None:
            raise ValueError("a reversal names the entry it reverses")
        return self


def application_id(invoice_id: str) -> str:
    return f"application:{invoice_id}"


def reversal_id(entry_id: str) -> str:
    return f"reversal:{entry_id}"


def credit_note_id(note_id: str) -> str:
    return f"credit_note:{note_id}"


def balance(entries: Sequence[CreditEntry], currency: str) -> Money:
    """The credit available: the exact sum of the entries (all in ``currency``)."""
    acc = Money.zero(currency)
    for e in entries:
        acc = acc + e.amount  # raises CurrencyError on a foreign entry
    return acc


def check_ledger(entries: Sequence[CreditEntry], currency: str) -> None:
    """Raise :class:`CreditError` unless the ledger, in order, holds every invariant of the module doc."""
    seen: dict[str, CreditEntry] = {}
    running = 0
    for e in entries:
        if e.id in seen:
            raise CreditError(f"duplicate entry {e.id}")
        if e.amount.currency != currency:
            raise CreditError(f"entry {e.id} is in {e.amount.currency}, the balance is in {currency}")
        if e.kind is EntryKind.APPLICATION and e.id != application_id(e.invoice_id or ""):
            raise CreditError(f"application {e.id} is not keyed by its invoice")
        if e.kind is EntryKind.REVERSAL:
            target = seen.get(e.reverses or "")
            if target is None or target.kind is EntryKind.REVERSAL or e.amount != -target.amount:
                raise CreditError(f"reversal {e.id} does not mirror an earlier entry")
            if e.id != reversal_id(target.id):
                raise CreditError(f"reversal {e.id} is not keyed by the entry it reverses")
        running += e.amount.amount
        if running < 0:
            raise CreditError(f"the balance goes negative at {e.id}")
        seen[e.id] = e


def grant(customer_id: str, entry_id: str, amount: Money, at: dt.datetime, *, reason: str | None = None) -> CreditEntry:
    return CreditEntry(id=entry_id, customer_id=customer_id, kind=EntryKind.GRANT, amount=amount, at=at, reason=reason)


def from_credit_note(customer_id: str, note_id: str, amount: Money, at: dt.datetime) -> CreditEntry:
    """The entry crediting a credit note's amount to the balance (one per credit note)."""
    return CreditEntry(
        id=credit_note_id(note_id),
        customer_id=customer_id,
        kind=EntryKind.CREDIT_NOTE,
        amount=amount,
        at=at,
        credit_note_id=note_id,
    )


class Application(Frozen):
    """The decision for one invoice: ``amount`` applied (>= 0); ``entry`` to write, None when nothing to write."""

    amount: Money
    entry: CreditEntry | None


def application(
    entries: Sequence[CreditEntry],
    *,
    customer_id: str,
    invoice_id: str,
    amount_due: Money,
    at: dt.datetime,
) -> Application:
    """How much credit pays ``invoice_id``: ``min(balance, amount_due)``, decided once per invoice.

    An existing (not reversed) application for the invoice is returned as is, with nothing to write, so a
    retry or a re-composition of the invoice is a no-op. After a reversal (a voided invoice) the invoice is
    never paid from the balance again: a void is final. A decision of 0 writes nothing, so composing a draft
    again after credit was granted uses it; the finalized invoice keeps the amounts it was finalized with.
    """
    key = application_id(invoice_id)
    existing = next((e for e in entries if e.id == key), None)
    if existing is not None:
        reversed_ = any(e.reverses == key for e in entries)
        return Application(amount=Money.zero(amount_due.currency) if reversed_ else -existing.amount, entry=None)
    available = balance(entries, amount_due.currency).amount
    amount = min(max(available, 0), max(amount_due.amount, 0))
    if amount == 0:
        return Application(amount=Money.zero(amount_due.currency), entry=None)
    entry = CreditEntry(
        id=key,
        customer_id=customer_id,
        kind=EntryKind.APPLICATION,
        amount=Money(-amount, amount_due.currency),
        at=at,
        invoice_id=invoice_id,
    )
    return Application(amount=Money(amount, amount_due.currency), entry=entry)


def reversal(
    entries: Sequence[CreditEntry], entry_id: str, at: dt.datetime, *, reason: str | None = None
) -> CreditEntry | None:
    """The entry undoing ``entry_id`` (None if already reversed); refuses to take back credit already spent."""
    target = next((e for e in entries if e.id == entry_id), None)
    if target is None:
        raise CreditError(f"no entry {entry_id}")
    if target.kind is EntryKind.REVERSAL:
        raise CreditError("a reversal is not reversed; record a new entry instead")
    key = reversal_id(entry_id)
    if any(e.id == key for e in entries):
        return None
    if balance(entries, target.amount.currency).amount - target.amount.amount < 0:
        raise CreditError(f"{entry_id} cannot be reversed: its credit was already used")
    return CreditEntry(
        id=key,
        customer_id=target.customer_id,
        kind=EntryKind.REVERSAL,
        amount=-target.amount,
        at=at,
        invoice_id=target.invoice_id,
        reverses=entry_id,
        reason=reason,
    )
