"""Invoices and credit notes as values: lines, tax per line, totals, states. Pure, no I/O.

Why per-line tax summed up (and not tax on the subtotal): each line can carry its own rate, and the
document must reconcile exactly: ``total == subtotal + tax``, ``subtotal == sum(line nets)``,
``tax == sum(line taxes) == sum(breakdown taxes)``, always, in integer minor units. The rounding rule
lives in :mod:`shared.domain.tax` and is applied once, per line.

States (Stripe's vocabulary, which finance teams know)::

    draft --finalize--> open --> paid
                          |---> void            (keeps its number: numbers are never reused)
                          '---> uncollectible --> paid | void
"""

from __future__ import annotations

import enum
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from decimal import Decimal

from shared.domain.money import CurrencyError, Money, total
from shared.domain.tax import TAX_ROUNDING, TaxDecision, line_tax


class InvoiceError(ValueError):
    """A request that can never become a valid document (retrying will not help)."""


class Status(enum.StrEnum):
    DRAFT = "draft"
    OPEN = "open"
    PAID = "paid"
    VOID = "void"
    UNCOLLECTIBLE = "uncollectible"


ALLOWED: dict[Status, frozenset[Status]] = {
    Status.DRAFT: frozenset({Status.OPEN}),
    Status.OPEN: frozenset({Status.PAID, Status.VOID, Status.UNCOLLECTIBLE}),
    Status.UNCOLLECTIBLE: frozenset({Status.PAID, Status.VOID}),
    Status.PAID: frozenset(),
    Status.VOID: frozenset(),
}


class InvalidTransition(InvoiceError):
    def __init__(self, current: Status, target: Status) -> None:
        super().__init__(f"invoice cannot go from {current} to {target}")
        self.current = current
        self.target = target


def transition(current: Status, target: Status) -> bool:
    """True if the move must be written, False if already there (idempotent); raises if forbidden."""
    if current == target:
        return False
    if target not in ALLOWED[current]:
        raise InvalidTransition(current, target)
    return True


@dataclass(frozen=True, slots=True)
class LineSpec:
    """What a requester asks to invoice (no tax yet)."""

    description: str
    quantity: int
    unit_amount: Money
    kind: str = "plan"
    tax_category: str = "standard"


@dataclass(frozen=True, slots=True)
class Line:
    """A priced line: ``net = unit * quantity``; ``tax`` by the per-line rule; ``gross = net + tax``."""

    description: str
    quantity: int
    unit_amount: Money
    kind: str
    tax_category: str
    rate: Decimal
    net: Money
    tax: Money

    @property
    def gross(self) -> Money:
        return self.net + self.tax


@dataclass(frozen=True, slots=True)
class TaxRow:
    """One row of the tax breakdown: everything taxed at ``rate``."""

    rate: Decimal
    net: Money
    tax: Money


@dataclass(frozen=True, slots=True)
class Totals:
    subtotal: Money
    tax: Money
    total: Money
    breakdown: tuple[TaxRow, ...]

    @property
    def amount_due(self) -> Money:
        """What to collect: a net credit (prorations above the plan price) is never collected."""
        return self.total if self.total.amount > 0 else Money.zero(self.total.currency)


def price_lines(specs: Sequence[LineSpec], currency: str, decision: TaxDecision) -> tuple[Line, ...]:
    if not specs:
        raise InvoiceError("an invoice needs at least one line")
    out = []
    for s in specs:
        if s.unit_amount.currency != currency:
            raise InvoiceError(f"line {s.description!r} is in {s.unit_amount.currency}, invoice is in {currency}")
        if type(s.quantity) is not int or s.quantity < 1:
            raise InvoiceError("quantity must be a positive int")
        r = decision.rate(s.tax_category)
        net = s.unit_amount.times(s.quantity)
        out.append(Line(s.description, s.quantity, s.unit_amount, s.kind, s.tax_category, r, net, line_tax(net, r)))
    return tuple(out)


def totals(lines: Iterable[Line], currency: str) -> Totals:
    """Sums of exact parts; the breakdown groups lines by rate (highest rate first)."""
    ls = list(lines)
    try:
        subtotal = total([ln.net for ln in ls], currency)
        tax = total([ln.tax for ln in ls], currency)
    except CurrencyError as exc:
        raise InvoiceError(str(exc)) from exc
    by_rate: dict[Decimal, tuple[Money, Money]] = {}
    for ln in ls:
        n, t = by_rate.get(ln.rate, (Money.zero(currency), Money.zero(currency)))
        by_rate[ln.rate] = (n + ln.net, t + ln.tax)
    rows = tuple(TaxRow(r, n, t) for r, (n, t) in sorted(by_rate.items(), key=lambda kv: -kv[0]))
    return Totals(subtotal, tax, subtotal + tax, rows)


def credit_lines(invoice_lines: Sequence[Line], amount: Money, *, full: bool) -> tuple[Line, ...]:
    """Lines of a credit note worth ``amount`` (tax included) against an invoice's lines.

    A full credit mirrors the invoice line by line. A partial credit is spread over the invoice's lines
    in proportion to their gross (largest remainder, so the parts sum to ``amount``), then each part
    is split into tax (half-up, the same rule) and net, so ``net + tax`` is exactly the part.
    Credit notes carry positive amounts: the document type says they reduce what is owed.
    """
    if amount.amount <= 0:
        raise InvoiceError("a credit note amount must be positive")
    positive = [ln for ln in invoice_lines if ln.gross.amount > 0]
    if not positive:
        raise InvoiceError("nothing on the invoice can be credited")
    if full:
        return tuple(
            Line(
                f"Credit: {ln.description}",
                ln.quantity,
                ln.unit_amount,
                ln.kind,
                ln.tax_category,
                ln.rate,
                ln.net,
                ln.tax,
            )
            for ln in invoice_lines
        )
    parts = amount.allocate([ln.gross.amount for ln in positive])
    out = []
    for ln, part in zip(positive, parts, strict=True):
        if part.amount == 0:
            continue
        tax = part.multiply(ln.rate / (1 + ln.rate), rounding=TAX_ROUNDING)
        net = part - tax
        out.append(Line(f"Credit: {ln.description}", 1, net, ln.kind, ln.tax_category, ln.rate, net, tax))
    return tuple(out)
