"""The journal entry each business fact posts (pure). Entry ids derive from the cause, so a redelivered
fact, line or invoice event finds its entry already there.

Why a clearing account (``psp_pending``): a payment fact (webhook/charging) says money is ours at the PSP
before any settlement line books it; the line later moves it into ``psp_balance`` net of fees. The
clearing account per PSP account and currency is zero when facts and lines agree, and what remains in it
is exactly what reconciliation reports (open exceptions, or facts still inside their settlement delay).

Signs follow :mod:`shared.settlement.lines` (amounts signed from the merchant's PSP balance) and
:mod:`shared.ledger.journal` (debit positive).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from typing import TYPE_CHECKING

from shared.events.payments import DisputeOpened, DisputeWon, PaymentEvent, PaymentRefunded, PaymentSucceeded
from shared.ledger import journal as j
from shared.ledger.journal import Entry, Posting
from shared.settlement.lines import LineType, SettlementLine

if TYPE_CHECKING:  # loaded by the invoice events themselves; a payment fact does not need the billing contracts
    from shared.events.billing import CreditNoteIssued, InvoiceFinalized, InvoiceVoided

PAYMENT_TYPES = frozenset({LineType.CAPTURE, LineType.REFUND, LineType.CHARGEBACK, LineType.CHARGEBACK_REVERSAL})


def payout_cause(psp: str, account: str, payout_id: str) -> str:
    """One cause for the balance -> bank transfer, whether a payout LINE or the payout's closure posts it."""
    return f"payout:{psp}:{account}:{payout_id}"


def line_entry(line: SettlementLine) -> Entry:
    """PSP balance moves by ``net``; each fee hits its fee account; the gross leaves the account the line
    explains (clearing for payments, with an FX leg when settled in another currency; fee, adjustment or
    bank otherwise)."""
    psp, acct, cur = line.psp, line.account, line.currency
    ps = [Posting(j.psp_balance(psp, acct), cur, line.net)]
    ps += [Posting(j.psp_fees(psp, f.kind), cur, f.amount) for f in line.fees]
    cause = f"line:{line.key()}"
    if line.type is LineType.PAYOUT:
        ps.append(Posting(j.bank_in_transit(psp, acct), cur, -line.gross))
        if line.payout_id:
            cause = payout_cause(psp, acct, line.payout_id)
    elif line.type is LineType.FEE:
        ps.append(Posting(j.psp_fees(psp, "other"), cur, -line.gross))
    elif line.type is LineType.ADJUSTMENT:
        ps.append(Posting(j.adjustments(psp), cur, -line.gross))
    elif line.presentment_currency and line.presentment_amount is not None and line.presentment_currency != cur:
        pres, amount = line.presentment_currency, line.presentment_amount
        ps += [
            Posting(j.psp_pending(psp, acct), pres, -amount),
            Posting(j.FX, pres, amount),
            Posting(j.FX, cur, -line.gross),
        ]
    else:
        ps.append(Posting(j.psp_pending(psp, acct), cur, -line.gross))
    return Entry(cause, line.booked_at, tuple(ps), memo=f"{line.type.value} {line.line_id}"[:200])


def fact_entry(event: PaymentEvent) -> Entry | None:
    """Payment facts move money between the customer's receivable, the clearing account and chargebacks."""
    pending = j.psp_pending(event.psp, event.account)
    rec = j.receivable(event.refs.customer_id)
    at = event.psp_created_at
    if isinstance(event, PaymentRefunded):
        m = event.refunded
        pairs = [(rec, m.amount), (pending, -m.amount)]
    elif event.amount is None:
        return None
    elif isinstance(event, PaymentSucceeded):
        m = event.amount
        pairs = [(pending, m.amount), (rec, -m.amount)]
    elif isinstance(event, DisputeOpened):
        m = event.amount
        pairs = [(j.CHARGEBACKS, m.amount), (pending, -m.amount)]
    elif isinstance(event, DisputeWon):
        m = event.amount
        pairs = [(pending, m.amount), (j.CHARGEBACKS, -m.amount)]
    else:
        return None
    ps = tuple(Posting(a, m.currency, v) for a, v in pairs)
    return Entry(f"fact:{event.fact_key()}", at, ps, memo=f"{event.EVENT_TYPE} {event.psp_payment_id}"[:200])


def invoice_entry(event: InvoiceFinalized | InvoiceVoided | CreditNoteIssued, at: dt.datetime) -> Entry | None:
    """Receivable per customer against revenue and tax (finalized), reversed (voided) or credited."""
    from shared.events.billing import CreditNoteIssued, InvoiceFinalized

    rec = j.receivable(event.customer_id)
    if isinstance(event, InvoiceFinalized):
        cur, total, tax = event.total.currency, event.total.amount, event.tax.amount
        ps: tuple[Posting, ...] = (
            Posting(rec, cur, total),
            Posting(j.REVENUE, cur, tax - total),
            Posting(j.TAX_PAYABLE, cur, -tax),
        )
        return Entry(f"invoice:{event.invoice_id}:finalized", event.finalized_at, ps, memo=event.number)
    if isinstance(event, CreditNoteIssued):
        cur, amount = event.amount.currency, event.amount.amount
        ps = (Posting(j.CREDIT_NOTES, cur, amount), Posting(rec, cur, -amount))
        return Entry(f"credit_note:{event.credit_note_id}", at, ps, memo=event.credit_note_number)
    return None


def void_entry(event: InvoiceVoided, finalized: Entry, at: dt.datetime) -> Entry:
    """The exact reverse of the finalization entry (its postings negated)."""
    ps = tuple(Posting(p.account, p.currency, -p.amount) for p in finalized.postings)
    return Entry(f"invoice:{event.invoice_id}:voided", at, ps, memo=event.number)


def payout_entry(psp: str, account: str, payout_id: str, *, currency: str, amount: int, at: dt.datetime) -> Entry:
    ps = (
        Posting(j.psp_balance(psp, account), currency, -amount),
        Posting(j.bank_in_transit(psp, account), currency, amount),
    )
    return Entry(payout_cause(psp, account, payout_id), at, ps, memo=f"payout {payout_id}")


def resolution_entry(
    exception_id: str, psp: str, account: str, *, impact: Mapping[str, int], reason: str, at: dt.datetime
) -> Entry:
    """Resolving an exception moves its unexplained amount out of the clearing account, with the reason:
    an entry, never an edit of what was posted before."""
    pending = j.psp_pending(psp, account)
    ps: list[Posting] = []
    for cur, amount in impact.items():
        ps += [Posting(pending, cur, -amount), Posting(j.RECON_ADJUSTMENTS, cur, amount)]
    return Entry(f"resolve:{exception_id}", at, tuple(ps), memo=reason[:200])


CHARGEBACK_LOSSES = "chargeback_losses"  # expense: disputed money that is gone for good


def dispute_loss_entry(
    psp: str, account: str, dispute_id: str, *, currency: str, amount: int, at: dt.datetime, reversed_: bool = False
) -> Entry:
    """A lost dispute turns the withdrawn amount (``chargebacks``, debited by ``dispute.opened``) into a
    loss; a later win (a reversal after the loss) posts the exact opposite under its own cause. One cause
    per dispute, so a redelivered or re-decided loss posts nothing twice."""
    sign = -1 if reversed_ else 1
    ps = (Posting(CHARGEBACK_LOSSES, currency, sign * amount), Posting(j.CHARGEBACKS, currency, -sign * amount))
    what = "loss_reversed" if reversed_ else "lost"
    return Entry(f"dispute:{psp}:{account}:{dispute_id}:{what}", at, ps, memo=f"dispute {what} {dispute_id}"[:200])
