"""Compose an invoice from priced lines, discounts, tax and credit: THE order of operations. Pure, no I/O.

The same function builds the real invoice and the upcoming-invoice preview: it is deterministic in its
inputs (no clock, no ordering by chance), so a preview with the inputs the renewal will see equals the
invoice. Order, per invoice:

1. **lines** priced, each rounded once half-up (:mod:`shared.domain.pricing`);
2. **discounts** before tax, in the stacking order, allocated per line (:func:`shared.domain.discounts.allocate`);
3. **tax** per line on the discounted amount, with the per-line rule of :mod:`shared.domain.tax` (exclusive:
   ``tax = round_half_up(net * rate)``; inclusive: ``tax = round_half_up(gross * rate / (1 + rate))``,
   ``net = gross - tax``);
4. **credit** from the customer's balance after tax, as a payment, capped at the total
   (:func:`shared.domain.credit.application`, keyed by the invoice id).

Every figure is an int of minor units and the document reconciles exactly::

    line:     amount - discount == net (exclusive) or net + tax (inclusive);   total == net + tax
    invoice:  total == subtotal - discount + exclusive_tax == net + tax
              amount_due == max(total, 0) - credit_applied >= 0

``subtotal`` is the lines as priced (gross for inclusive prices), ``exclusive_tax`` the tax added on top of
exclusive lines (inclusive lines already contain theirs). A negative total (prorations exceeding the
charges) is never collected; it is reported as ``excess`` for the caller to credit or drop.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from decimal import Decimal
from fractions import Fraction
from typing import Annotated

from pydantic import Field, PlainSerializer, StrictInt

from shared.domain.catalog import DecimalAmount, Frozen, TaxBehavior
from shared.domain.credit import CreditEntry, application
from shared.domain.discounts import AppliedDiscount, LineDiscount, allocate
from shared.domain.money import Money, total
from shared.domain.pricing import ChargeLine, LineKind, split_inclusive
from shared.domain.tax import TAX_ROUNDING, TaxDecision, line_tax


class CompositionError(ValueError):
    """Inputs that can never make an invoice (no line, a foreign currency, missing credit context)."""


Rate = Annotated[Decimal, PlainSerializer(lambda d: f"{d:f}", return_type=str)]


class ComposedLine(Frozen):
    """One invoice (or credit note) line with its discounts and tax; see the module doc for the identities."""

    description: str
    kind: LineKind
    price_id: str
    product_id: str
    tax_category: str
    tax_behavior: TaxBehavior
    quantity: DecimalAmount
    period_start: dt.datetime | None = None
    period_end: dt.datetime | None = None
    amount: Money
    discounts: tuple[LineDiscount, ...] = ()
    discount: Money
    rate: Rate
    net: Money
    tax: Money
    total: Money


class DiscountTotal(Frozen):
    discount_id: str
    coupon_id: str
    amount: Money


class ComposedInvoice(Frozen):
    """The amounts of one invoice for ``period_index`` of its subscription (0 for a one-off)."""

    currency: str
    period_index: StrictInt
    lines: tuple[ComposedLine, ...] = Field(min_length=1)
    subtotal: Money
    discount: Money
    discounts: tuple[DiscountTotal, ...]
    net: Money
    tax: Money
    exclusive_tax: Money
    total: Money
    credit_applied: Money
    credit_entry: CreditEntry | None = None  # to write with the invoice (None: nothing, or already written)
    amount_due: Money
    excess: Money


def _tax_line(base: ChargeLine, parts: tuple[LineDiscount, ...], rate: Decimal, currency: str) -> ComposedLine:
    amount = base.amount
    discount = total([p.amount for p in parts], currency)
    taxable = amount - discount
    if base.tax_behavior is TaxBehavior.INCLUSIVE:
        net, tax = split_inclusive(taxable, rate)
    else:
        net, tax = taxable, line_tax(taxable, rate)
    return ComposedLine(
        description=base.description,
        kind=base.kind,
        price_id=base.price_id,
        product_id=base.product_id,
        tax_category=base.tax_category,
        tax_behavior=base.tax_behavior,
        quantity=base.quantity,
        period_start=base.period_start,
        period_end=base.period_end,
        amount=amount,
        discounts=parts,
        discount=discount,
        rate=rate,
        net=net,
        tax=tax,
        total=net + tax,
    )


def _sums(lines: Sequence[ComposedLine], currency: str) -> dict[str, Money]:
    return {
        "subtotal": total([ln.amount for ln in lines], currency),
        "discount": total([ln.discount for ln in lines], currency),
        "net": total([ln.net for ln in lines], currency),
        "tax": total([ln.tax for ln in lines], currency),
        "exclusive_tax": total([ln.tax for ln in lines if ln.tax_behavior is TaxBehavior.EXCLUSIVE], currency),
        "total": total([ln.total for ln in lines], currency),
    }


def _discount_totals(lines: Sequence[ComposedLine], currency: str) -> tuple[DiscountTotal, ...]:
    acc: dict[tuple[str, str], int] = {}
    for ln in lines:
        for p in ln.discounts:
            acc[(p.discount_id, p.coupon_id)] = acc.get((p.discount_id, p.coupon_id), 0) + p.amount.amount
    return tuple(DiscountTotal(discount_id=d, coupon_id=c, amount=Money(a, currency)) for (d, c), a in acc.items())


def compose(
    lines: Sequence[ChargeLine],
    *,
    currency: str,
    tax: TaxDecision,
    discounts: Sequence[AppliedDiscount] = (),
    period_index: int = 0,
    credit_entries: Sequence[CreditEntry] = (),
    customer_id: str | None = None,
    invoice_id: str | None = None,
    at: dt.datetime | None = None,
) -> ComposedInvoice:
    """The invoice (or its preview) of ``lines`` under the order of the module doc.

    With ``credit_entries`` (the customer's ledger), ``customer_id``, ``invoice_id`` and ``at`` are required:
    the credit application is keyed by the invoice id, so composing again after it was written returns the
    same amounts and nothing new to write.
    """
    if not lines:
        raise CompositionError("an invoice needs at least one line")
    if any(ln.amount.currency != currency for ln in lines):
        raise CompositionError(f"every line must be in {currency}")
    allocations = allocate(lines, discounts, period_index=period_index, currency=currency)
    out = tuple(
        _tax_line(ln, parts, tax.rate(ln.tax_category), currency) for ln, parts in zip(lines, allocations, strict=True)
    )
    sums = _sums(out, currency)
    due = Money(max(sums["total"].amount, 0), currency)
    applied, entry = Money.zero(currency), None
    if credit_entries:
        if customer_id is None or invoice_id is None or at is None:
            raise CompositionError("applying credit needs customer_id, invoice_id and at")
        decision = application(credit_entries, customer_id=customer_id, invoice_id=invoice_id, amount_due=due, at=at)
        applied, entry = decision.amount, decision.entry
    return ComposedInvoice(
        currency=currency,
        period_index=period_index,
        lines=out,
        discounts=_discount_totals(out, currency),
        credit_applied=applied,
        credit_entry=entry,
        amount_due=due - applied,
        excess=Money(max(-sums["total"].amount, 0), currency),
        **sums,
    )


class ComposedCreditNote(Frozen):
    """A credit note against a composed invoice: positive amounts, discounts carried in proportion."""

    currency: str
    lines: tuple[ComposedLine, ...]
    subtotal: Money
    discount: Money
    net: Money
    tax: Money
    exclusive_tax: Money
    total: Money


def _carried(discount: Money, share: Fraction) -> Money:
    """The part of a line discount a credit of ``share`` of the line gives back (half-up, capped)."""
    part = discount.multiply(share, rounding=TAX_ROUNDING)
    return part if part <= discount else discount


def credit_note(invoice: ComposedInvoice, amount: Money | None = None) -> ComposedCreditNote:
    """A credit note for the whole invoice (``amount`` None or the total) or for ``amount`` of it (tax included).

    A full note mirrors every line. A partial ``amount`` is spread over the positive lines in proportion to
    their totals (largest remainder: the parts sum to ``amount``); each part ``p`` of a line is split into
    tax (the inclusive per-line rule, as in :func:`shared.domain.invoices.credit_lines`) and net, and carries
    each of the line's discounts times ``p / line.total`` (half-up, never more than the discount), so the
    line's pre-discount ``amount`` is reconstructed and the note shows the discount it gives back.
    """
    cur = invoice.currency
    if amount is None or amount == invoice.total:
        lines = tuple(ln.model_copy(update={"description": f"Credit: {ln.description}"}) for ln in invoice.lines)
        return ComposedCreditNote(currency=cur, lines=lines, **_sums(lines, cur))
    if amount.currency != cur or not 0 < amount.amount < invoice.total.amount:
        raise CompositionError("a partial credit note is positive and below the invoice total, in its currency")
    positive = [ln for ln in invoice.lines if ln.total.amount > 0]
    out = []
    for ln, part in zip(positive, amount.allocate([ln.total.amount for ln in positive]), strict=True):
        if part.amount == 0:
            continue
        share = Fraction(part.amount, ln.total.amount)
        carried = tuple(d.model_copy(update={"amount": _carried(d.amount, share)}) for d in ln.discounts)
        carried = tuple(d for d in carried if d.amount.amount)
        discount = total([d.amount for d in carried], cur)
        tax = part.multiply(Fraction(ln.rate) / (1 + Fraction(ln.rate)), rounding=TAX_ROUNDING)
        net = part - tax
        priced = (part if ln.tax_behavior is TaxBehavior.INCLUSIVE else net) + discount
        out.append(
            ln.model_copy(
                update={
                    "description": f"Credit: {ln.description}",
                    "amount": priced,
                    "discounts": carried,
                    "discount": discount,
                    "net": net,
                    "tax": tax,
                    "total": part,
                }
            )
        )
    lines = tuple(out)
    return ComposedCreditNote(currency=cur, lines=lines, **_sums(lines, cur))
