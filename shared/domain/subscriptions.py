"""Subscription lifecycle as pure functions: statuses, transitions, the planner's decision, dunning.

Why pure: every rule that decides money (bill this period? retry now? give up?) is a function of the
stored state and an input, so it is tested exhaustively without I/O, and the Firestore layer only has
to apply the result inside one transaction.

Periods are indexes into the subscription's :class:`~shared.domain.calendar.Schedule`. Three pointers:

* ``paid_index``: the last period paid for (the current period); ``None`` before the first payment;
* ``billing.index``: the last period handed to invoicing (a RenewalDue was published for it);
* a period is *in flight* while ``billing.index > paid_index``: no next period is billed until it is
  paid or dunning gives up, so unpaid invoices never stack up.

Idempotency by construction: a duplicate or late input finds the pointers already past it and returns
the state unchanged (``transition is None``); a late failure never regresses a paid period, and a
success never resurrects a canceled subscription.

What a customer owes for a plan change (proration), and when it is billed:

* a change at ``t`` prorates against the period that contains ``t`` **if that period has been invoiced**
  (``billing.index``), paid or not: active, ``past_due``, a pending bank debit, ``unpaid``. The old plan's
  price for it is on an issued invoice, so the customer gets a credit for the old plan's unused time and
  a charge for the new plan's remaining time. A period not invoiced yet (a trial, a period whose renewal
  the planner has not claimed) is simply invoiced at the new price: nothing to prorate;
* those lines wait on the subscription (``pending_lines``; :attr:`SubState.has_pending`) and are moved,
  all of them, onto the **next invoice the subscription emits**, in the same conditional write that
  claims it, so they are billed exactly once and never lost: the next period's renewal invoice, or, when
  the subscription ends (cancel at period end, cancel now, dunning ending in ``canceled``), one
  **final invoice** holding only those lines (the :func:`decide_renewal` kind ``bill`` with ``final=True``; request id
  ``{subscription_id}:{end instant}:final``). An ``unpaid`` subscription keeps them until it is revived
  (next renewal) or canceled (final invoice). Canceling refunds nothing of the current period, so its
  prorations stay owed as agreed.

The final invoice is tracked like a renewal (``billing`` one index past the last period, zero length at
the end instant): re-sent while unpaid, settled by its payment without reviving the subscription.

Smart dunning (the decline taxonomy, :mod:`shared.domain.declines`, read into :class:`Outcome`):

* a hard decline (stolen card, closed account, revoked mandate ...) stops retrying at once: final status;
* a soft decline is retried at the configured slot ``first + retry_days[i]`` but never before the
  advised earliest retry (``Outcome.retry_at``: after pay day for insufficient funds, hours for a
  processing error), applied as a delay from when the failed attempt ran on our clock (the PSP's clock
  or a test clock may differ); an advice past the window's end (``first + retry_days[-1]``) moves the
  attempt to the window's end, the last chance, and no attempt is scheduled at or before the failure;
* authentication required is never retried blindly: the subscription is ``past_due`` with
  ``Dunning.action_required`` until the window's end, waiting for the customer (a payment of the invoice
  revives it); then the planner moves it to the final status (``expire``, reason ``action_not_taken``).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, replace
from typing import Literal

from shared.domain.calendar import Period, Schedule

Status = Literal["trialing", "active", "past_due", "unpaid", "canceled"]
STATUSES: tuple[Status, ...] = ("trialing", "active", "past_due", "unpaid", "canceled")

# Allowed status changes; a renewal is active -> active (the period moves, the status does not).
ALLOWED: dict[Status, frozenset[Status]] = {
    "trialing": frozenset({"active", "past_due", "unpaid", "canceled"}),
    "active": frozenset({"active", "past_due", "unpaid", "canceled"}),
    "past_due": frozenset({"active", "unpaid", "canceled"}),
    "unpaid": frozenset({"active", "canceled"}),
    "canceled": frozenset(),
}


class TransitionError(ValueError):
    """A status change the lifecycle does not allow (a bug or a forged request, never retried)."""


@dataclass(frozen=True, slots=True)
class DunningPolicy:
    """Retries at ``first failure + retry_days[i]`` days; after the last one, ``final_status``."""

    retry_days: tuple[int, ...] = (1, 3, 5, 7)
    final_status: Literal["unpaid", "canceled"] = "unpaid"

    def __post_init__(self) -> None:
        if any(d <= 0 for d in self.retry_days) or list(self.retry_days) != sorted(self.retry_days):
            raise ValueError("retry_days must be positive and increasing")
        if self.final_status not in ("unpaid", "canceled"):
            raise ValueError("final_status must be unpaid or canceled")

    @classmethod
    def parse(cls, retry_days: str, final_status: str) -> DunningPolicy:
        days = tuple(int(x) for x in retry_days.replace(" ", "").split(",") if x)
        return cls(days, final_status)  # type: ignore[arg-type]

    @property
    def max_attempts(self) -> int:
        return 1 + len(self.retry_days)

    def window_end(self, first_failed_at: dt.datetime) -> dt.datetime:
        """The last moment dunning may charge: the last configured retry."""
        return first_failed_at + dt.timedelta(days=self.retry_days[-1] if self.retry_days else 0)

    def retry_at(
        self,
        first_failed_at: dt.datetime,
        failed_attempt: int,
        advised: dt.datetime | None = None,
        failed_at: dt.datetime | None = None,
    ) -> dt.datetime | None:
        """When attempt ``failed_attempt + 1`` runs, or None when no attempt is left.

        The configured slot, moved to ``advised`` when that is later, capped at the window's end; None when
        the capped time is not after ``failed_at`` (the window has no room for another attempt).
        """
        if failed_attempt >= self.max_attempts:
            return None
        at = first_failed_at + dt.timedelta(days=self.retry_days[failed_attempt - 1])
        if advised is not None and advised > at:
            at = min(advised, self.window_end(first_failed_at))
        if failed_at is not None and at <= failed_at:
            return None
        return at


FINAL_SUFFIX = ":final"


@dataclass(frozen=True, slots=True)
class Billing:
    """The last period handed to invoicing; ``republish_at`` recovers a RenewalDue lost in a crash."""

    index: int
    start: dt.datetime
    end: dt.datetime
    request_id: str
    claimed_at: dt.datetime
    republish_at: dt.datetime
    republishes: int = 0

    @property
    def final(self) -> bool:
        """The final invoice of an ended subscription (its pending proration lines only)."""
        return self.request_id.endswith(FINAL_SUFFIX)


@dataclass(frozen=True, slots=True)
class Dunning:
    """Failed collection of ``invoice_id`` (period ``period_index``); attempts are 1-based."""

    invoice_id: str
    period_index: int
    failed_attempt: int
    first_failed_at: dt.datetime
    next_retry_at: dt.datetime | None
    action_required: bool = False  # waiting for the customer (authentication); next_retry_at is the deadline
    attempted_at: dt.datetime | None = None  # when the running retry was claimed (our clock)


@dataclass(frozen=True, slots=True)
class SubState:
    id: str
    customer_id: str
    status: Status
    version: int
    schedule: Schedule
    created_at: dt.datetime
    trial_end: dt.datetime | None = None
    paid_index: int | None = None
    billing: Billing | None = None
    dunning: Dunning | None = None
    cancel_at_period_end: bool = False
    canceled_at: dt.datetime | None = None
    last_cause: str | None = None  # what caused the last transition: a duplicate cause republishes it
    has_pending: bool = False  # proration lines wait for the next invoice (``pending_lines``)
    collection: str = "charge_automatically"
    days_until_due: int | None = None  # send_invoice with due dates (see :func:`decide_renewal`)
    open_due: tuple[tuple[int, dt.datetime], ...] = ()  # send_invoice: (period index, due date) not paid yet
    overdue_until: dt.datetime | None = None  # past_due for an overdue invoice: then the policy's final status

    @property
    def invoiced_by_due_date(self) -> bool:
        """send_invoice with a due date: the customer pays out of band; renewals go on while invoices are open."""
        return self.collection == "send_invoice" and self.days_until_due is not None

    def overdue(self, now: dt.datetime) -> tuple[int, dt.datetime] | None:
        """The oldest open invoice whose due date passed at ``now``, or None."""
        late = [x for x in self.open_due if x[1] <= now]
        return min(late, key=lambda x: (x[1], x[0])) if late else None

    @property
    def last_billed(self) -> int:
        """Highest period index already invoiced or paid (-1 before the first)."""
        b = self.billing.index if self.billing else -1
        p = self.paid_index if self.paid_index is not None else -1
        return max(b, p)

    @property
    def in_flight(self) -> bool:
        return self.billing is not None and (self.paid_index is None or self.billing.index > self.paid_index)

    @property
    def current_period(self) -> tuple[dt.datetime, dt.datetime] | None:
        if self.paid_index is not None:
            p = self.schedule.period(self.paid_index)
            return p.start, p.end
        if self.status == "trialing" and self.trial_end is not None:
            return self.created_at, self.trial_end
        return None

    def period_index_of(self, period_start: dt.datetime) -> int:
        return self.schedule.index_at(period_start)


@dataclass(frozen=True, slots=True)
class Transition:
    from_status: Status | None
    to_status: Status
    reason: str
    version: int


@dataclass(frozen=True, slots=True)
class Change:
    state: SubState
    transition: Transition | None = None

    @property
    def changed(self) -> bool:
        return self.transition is not None


def new_subscription(
    *,
    id: str,
    customer_id: str,
    schedule: Schedule,
    now: dt.datetime,
    trial_end: dt.datetime | None = None,
) -> Change:
    """A fresh subscription: trialing until ``trial_end`` or active awaiting its first invoice."""
    status: Status = "trialing" if trial_end is not None else "active"
    s = SubState(id=id, customer_id=customer_id, status="active", version=0, schedule=schedule, created_at=now)
    s = replace(s, trial_end=trial_end, status=status, version=1, last_cause="created")
    return Change(s, Transition(None, status, "created", 1))


def transition(state: SubState, to: Status, reason: str, cause: str) -> Change:
    """Move to ``to`` (validated), bump the version and remember the cause."""
    if to not in ALLOWED[state.status]:
        raise TransitionError(f"{state.status} -> {to} is not allowed")
    v = state.version + 1
    s = replace(state, status=to, version=v, last_cause=cause)
    if to == "canceled":
        s = replace(s, cancel_at_period_end=False)
    return Change(s, Transition(state.status, to, reason, v))


def due_at(state: SubState) -> dt.datetime | None:
    """When the planner next has work for this subscription (the indexed ``due_at`` field)."""
    if state.status == "canceled":
        b = state.billing
        if b is not None and b.final and state.in_flight:
            return b.republish_at  # the final invoice, until it is paid
        if state.has_pending and not (b is not None and b.final):
            return state.canceled_at or state.created_at  # its pending lines need a final invoice now
        return None
    if state.status == "unpaid":
        return None
    if state.invoiced_by_due_date:
        nxt = [state.schedule.boundary(state.last_billed + 1)]
        if state.in_flight and state.billing is not None and not state.billing.final:
            nxt.append(state.billing.republish_at)
        if state.status == "past_due" and state.overdue_until is not None:
            nxt.append(state.overdue_until)
        elif state.open_due:
            nxt.append(min(due for _, due in state.open_due))
        return min(nxt)
    if state.in_flight:
        assert state.billing is not None
        d = state.dunning
        if d is not None and d.period_index == state.billing.index:
            return d.next_retry_at
        return state.billing.republish_at
    return state.schedule.boundary(state.last_billed + 1)


# -- the planner's decision ----------------------------------------------------------------------
DecisionKind = Literal["none", "bill", "republish", "retry", "cancel", "expire", "overdue"]


@dataclass(frozen=True, slots=True)
class RenewalDecision:
    """What one tick must do for one subscription (named apart from the price plan a customer buys)."""

    kind: DecisionKind
    change: Change
    period: Period | None = None
    attempt: int | None = None  # for retries: the attempt to run
    invoice_id: str | None = None
    final: bool = False  # a ``bill`` of the pending lines only (the subscription ended); no plan lines


def request_id(sub_id: str, period_start: dt.datetime) -> str:
    """``{subscription_id}:{period_start iso}``, the RenewalDue idempotency key."""
    return f"{sub_id}:{period_start.astimezone(dt.UTC).isoformat().replace('+00:00', 'Z')}"


def _republish(state: SubState, now: dt.datetime, republish_s: int) -> RenewalDecision:
    """Re-send the claimed request (same request id) once its deadline passed, backing off."""
    b = state.billing
    assert b is not None
    if b.republish_at > now:
        return RenewalDecision("none", Change(state))
    n = b.republishes + 1
    b2 = replace(b, republishes=n, republish_at=now + dt.timedelta(seconds=republish_s * 2 ** min(n, 8)))
    period = state.schedule.period(max(b.index - 1, 0)) if b.final else state.schedule.period(b.index)
    return RenewalDecision("republish", Change(replace(state, billing=b2)), period, final=b.final)


def _final(state: SubState, ended_at: dt.datetime, now: dt.datetime, republish_s: int) -> tuple[SubState, Period]:
    """Claim the final invoice of the pending lines: one index past the last period, zero length."""
    k = state.last_billed
    billing = Billing(
        index=k + 1,
        start=ended_at,
        end=ended_at,
        request_id=request_id(state.id, ended_at) + FINAL_SUFFIX,
        claimed_at=now,
        republish_at=now + dt.timedelta(seconds=republish_s),
    )
    # The invoice shows the period the prorations belong to: the last one invoiced.
    return replace(state, billing=billing, has_pending=False), state.schedule.period(max(k, 0))


def _overdue(state: SubState, now: dt.datetime, final_status: Status, grace: dt.timedelta) -> RenewalDecision | None:
    """send_invoice: an invoice past its due date makes the subscription ``past_due``; still unpaid ``grace``
    later (the dunning policy's window), ``final_status``. Renewals go on meanwhile (Stripe's behaviour)."""
    late = state.overdue(now)
    if late is None:
        return None
    k, due = late
    if state.status in ("active", "trialing"):
        s = replace(state, overdue_until=due + grace)
        return RenewalDecision("overdue", transition(s, "past_due", "invoice_overdue", f"overdue:{k}"))
    if state.status == "past_due" and state.overdue_until is not None and state.overdue_until <= now:
        s = replace(state, overdue_until=None)
        return RenewalDecision("overdue", transition(s, final_status, "invoice_overdue", f"overdue_final:{k}"))
    return None


def decide_renewal(
    state: SubState,
    now: dt.datetime,
    *,
    republish_s: int,
    final_status: Status = "unpaid",
    overdue_grace: dt.timedelta = dt.timedelta(0),
) -> RenewalDecision:
    """What a tick at ``now`` must do for this subscription (at most one thing).

    ``final_status`` is where an unanswered authentication request ends (the account's dunning policy), and
    where an overdue send_invoice invoice ends ``overdue_grace`` after its due date.
    """
    none = RenewalDecision("none", Change(state))
    renew_open = False  # send_invoice: bill the next period although the last invoice is still open
    if state.invoiced_by_due_date and state.status != "canceled":
        late = _overdue(state, now, final_status, overdue_grace)
        if late is not None:
            if late.change.state.status != "past_due":
                return late
            # Past due does not stop renewals: a period due at the same tick is billed with the transition.
            nxt = decide_renewal(
                late.change.state,
                now,
                republish_s=republish_s,
                final_status=final_status,
                overdue_grace=overdue_grace,
            )
            if nxt.kind != "bill":
                return late
            return replace(nxt, change=Change(nxt.change.state, late.change.transition))
        b = state.billing
        if state.in_flight and b is not None and not b.final and state.status != "unpaid":
            # An open invoice does not hold the next period back: bill it at its boundary.
            if state.schedule.period(state.last_billed + 1).start > now or state.cancel_at_period_end:
                return _republish(state, now, republish_s)
            renew_open = True
    if state.status == "canceled":
        b = state.billing
        if b is not None and b.final:
            return _republish(state, now, republish_s) if state.in_flight else none
        if state.has_pending:
            s, last = _final(state, state.canceled_at or now, now, republish_s)
            return RenewalDecision("bill", Change(s), last, final=True)
        return none
    if state.status == "unpaid":
        return none
    if state.in_flight and not renew_open:
        b = state.billing
        assert b is not None
        d = state.dunning
        if d is not None and d.period_index == b.index:
            if d.next_retry_at is None or d.next_retry_at > now:
                return none
            if d.action_required:  # the customer never authenticated: dunning ends without a blind retry
                done = replace(state, dunning=replace(d, next_retry_at=None))
                ch = transition(done, final_status, "action_not_taken", f"{d.invoice_id}:action_deadline")
                return RenewalDecision("expire", ch, state.schedule.period(b.index), invoice_id=d.invoice_id)
            # Claim the retry; if its outcome never arrives the same attempt is re-sent (the collector
            # deduplicates on invoice + attempt, and so does the PSP on the idempotency key).
            d2 = replace(d, next_retry_at=now + dt.timedelta(seconds=republish_s), attempted_at=now)
            return RenewalDecision(
                "retry",
                Change(replace(state, dunning=d2)),
                state.schedule.period(b.index),
                attempt=d.failed_attempt + 1,
                invoice_id=d.invoice_id,
            )
        return _republish(state, now, republish_s)
    k = state.last_billed + 1
    period = state.schedule.period(k)
    if period.start > now:
        return none
    if state.cancel_at_period_end:
        ch = transition(state, "canceled", "canceled_at_period_end", f"period_end:{k}")
        ended = replace(ch.state, canceled_at=period.start)
        if state.has_pending:  # an upgrade before the end is still owed: bill it on a final invoice
            s, last = _final(ended, period.start, now, republish_s)
            return RenewalDecision("bill", Change(s, ch.transition), last, final=True)
        return RenewalDecision("cancel", Change(ended, ch.transition), period)
    billing = Billing(
        index=k,
        start=period.start,
        end=period.end,
        request_id=request_id(state.id, period.start),
        claimed_at=now,
        republish_at=now + dt.timedelta(seconds=republish_s),
    )
    billed = replace(state, billing=billing, has_pending=False)
    if state.invoiced_by_due_date:
        assert state.days_until_due is not None
        billed = replace(billed, open_due=(*state.open_due, (k, invoice_due_at(period.start, state.days_until_due))))
    return RenewalDecision("bill", Change(billed), period)


def invoice_due_at(issued: dt.datetime, days_until_due: int) -> dt.datetime:
    """The due date of a send_invoice invoice: ``days_until_due`` days after its period starts (or it is issued)."""
    return issued + dt.timedelta(days=days_until_due)


def proration_period(state: SubState, at: dt.datetime) -> Period | None:
    """The period a plan change at ``at`` prorates against: the invoiced one containing ``at``, else None.

    Paid or not does not matter (see the module doc): the old price is on an issued invoice either way.
    """
    if state.status == "canceled" or state.last_billed < 0:
        return None
    p = state.schedule.period(state.last_billed)
    return p if p.start <= at < p.end else None


# -- payment outcomes ----------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class Outcome:
    """A final payment fact about one charge attempt of one invoice of this subscription."""

    kind: Literal["succeeded", "failed"]
    invoice_id: str
    attempt: int
    period_index: int
    at: dt.datetime  # when the PSP says it happened (deterministic across redeliveries)
    cause: str  # the fact's key
    retryable: bool = True
    retry_at: dt.datetime | None = None  # the decline taxonomy's advised earliest retry
    action_required: bool = False  # only the customer can unblock it: never retried blindly
    category: str | None = None  # canonical decline category (reasons and records)


def apply_payment(state: SubState, o: Outcome, policy: DunningPolicy) -> Change:
    """Advance on success, dun on failure; duplicates, late and reordered facts change nothing."""
    if o.kind == "succeeded" and any(k == o.period_index for k, _ in state.open_due):
        return _settle_open(state, o)
    already_paid = state.paid_index is not None and o.period_index <= state.paid_index
    if already_paid:
        return Change(state)
    if state.status == "canceled":
        b = state.billing
        if o.kind == "succeeded" and b is not None and b.final and o.period_index == b.index:
            # The final invoice is paid: stop re-sending it; the subscription stays canceled. No transition,
            # so ``last_cause`` stays the cancellation's (a duplicate of this fact finds it paid instead).
            return Change(replace(state, paid_index=b.index))
        return Change(state)
    if o.kind == "succeeded":
        reason = {"active": "renewed", "trialing": "trial_converted"}.get(state.status, "recovered")
        moved = replace(state, paid_index=o.period_index, dunning=None)
        if state.billing is None or state.billing.index < o.period_index:
            p = state.schedule.period(o.period_index)
            moved = replace(
                moved,
                billing=Billing(o.period_index, p.start, p.end, request_id(state.id, p.start), o.at, o.at),
            )
        return transition(moved, "active", reason, o.cause)
    if state.status == "unpaid":
        return Change(state)  # dunning is over; only a success can revive it
    d = state.dunning
    if d is not None and (
        d.period_index > o.period_index or (d.period_index == o.period_index and o.attempt <= d.failed_attempt)
    ):
        return Change(state)  # a duplicate or an older attempt's failure
    if d is not None and d.period_index == o.period_index:
        first = d.first_failed_at
    elif state.billing is not None and state.billing.index == o.period_index:
        # Retries count from when collection of the period started on OUR clock (deterministic,
        # test-clock friendly), not from the PSP's timestamp of the failure.
        first = state.billing.claimed_at
    else:
        first = o.at
    # When the failed attempt ran on OUR clock (the PSP's clock, or a test clock, may differ): the claim of
    # the retry, or the start of collection. The PSP's advice is applied as a delay from there.
    failed_at = d.attempted_at if d is not None and d.period_index == o.period_index and d.attempted_at else first
    advised = failed_at + (o.retry_at - o.at) if o.retry_at is not None else None
    if o.action_required:
        # Ask the customer, never retry blindly: past due until the window's end, then the final status.
        deadline = policy.window_end(first)
        if deadline > failed_at:
            waiting = replace(state, dunning=Dunning(o.invoice_id, o.period_index, o.attempt, first, deadline, True))
            if state.status == "past_due":
                return Change(replace(waiting, last_cause=o.cause))
            return transition(waiting, "past_due", "action_required", o.cause)
        retry = None
    else:
        retry = policy.retry_at(first, o.attempt, advised, failed_at) if o.retryable else None
    dunned = replace(state, dunning=Dunning(o.invoice_id, o.period_index, o.attempt, first, retry))
    if retry is None:
        reason = "hard_decline" if not o.retryable and not o.action_required else "dunning_exhausted"
        return transition(dunned, policy.final_status, reason, o.cause)
    if state.status == "past_due":
        return Change(replace(dunned, last_cause=o.cause))  # still past due: a new retry date, no transition
    return transition(dunned, "past_due", "payment_failed", o.cause)


def _settle_open(state: SubState, o: Outcome) -> Change:
    """A send_invoice invoice paid (in any order): it is no longer open; past_due ends when none is overdue."""
    rest = tuple(x for x in state.open_due if x[0] != o.period_index)
    paid = max(state.paid_index if state.paid_index is not None else -1, o.period_index)
    moved = replace(state, open_due=rest, paid_index=paid, dunning=None)
    if state.status == "canceled":
        return Change(moved)
    if state.status in ("past_due", "unpaid"):
        if any(due <= o.at for _, due in rest):
            return Change(replace(moved, last_cause=o.cause))  # another invoice is still overdue
        return transition(replace(moved, overdue_until=None), "active", "recovered", o.cause)
    reason = "trial_converted" if state.status == "trialing" else "renewed"
    return transition(moved, "active", reason, o.cause)


def cancel_now(state: SubState, now: dt.datetime, cause: str) -> Change:
    if state.status == "canceled":
        return Change(state)
    ch = transition(state, "canceled", "canceled_by_request", cause)
    return Change(replace(ch.state, canceled_at=now), ch.transition)


def cancel_at_period_end(state: SubState) -> Change:
    """Stop renewing: the planner cancels when the current period (or the trial) ends."""
    if state.status == "canceled" or state.cancel_at_period_end:
        return Change(state)
    return Change(replace(state, cancel_at_period_end=True))
