"""THE hook between usage and the renewal invoice: usage of the period that just ended, billed in arrears on the
invoice that bills the next period in advance, after the grace period for late events; and, when the subscription
ends, on its final invoice.

The renewals planner calls this module, for a subscription a metered calendar was attached to (its document carries
``metered``, written by :meth:`shared.metering.store.MeteringStore.attach`):

* :func:`deferred` (through :func:`waiting`): the period boundary (or the end of the subscription) has passed but not
  the grace: the planner leaves the invoice due (no claim, no write) and a later tick bills it; the whole invoice
  waits, so nothing is finalized early. A cancellation at period end still happens at the boundary: only its final
  invoice waits;
* :func:`with_usage`: the RenewalDue gets the usage lines (and late adjustments of earlier periods) among its
  charges. The close is keyed by the RenewalDue's request id, so a claim that loses a race, or a renewal re-sent
  later, gets the very same lines: billed exactly once.

The final invoice. A metered subscription always owes the usage of its current period (billed in arrears), so
:func:`owes_usage` makes the repository count it as pending (``SubState.has_pending``) until its final close: the
domain's rule "an ended subscription with pending lines gets one final invoice" (request id
``{subscription}:{end}:final``) then covers usage too, for every way of ending (cancel at period end, cancel now,
dunning ending in ``canceled``), and every writer of the subscription computes the same ``due_at``. The final close
bills the usage of the period the subscription ended in (and of any earlier period not closed yet), the late
adjustments and the threshold credit, like a normal close, once the end + grace has passed; it records the end on
the usage calendar. ``usage_final`` on the subscription marks it done, written in the claim itself. Nothing to bill
(every usage line at 0, no pending line): no invoice; the claim only writes the marker.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Mapping
from dataclasses import replace
from typing import TYPE_CHECKING, Any

from shared.domain.calendar import Period
from shared.domain.subscriptions import Change, RenewalDecision, SubState

# The repository reads :func:`owes_usage` for every subscription it loads (a subscriptions API read, a renewals
# tick): the store, the settings and the contracts load with the first metered subscription, not with this module.
if TYPE_CHECKING:
    from shared.domain.pricing import ChargeLine
    from shared.events.billing import RenewalDue
    from shared.metering.store import Calendar, MeteringStore

    Build = Callable[[RenewalDecision, tuple[ChargeLine, ...]], RenewalDue]

_US = dt.timedelta(microseconds=1)
MAX_FINAL_PERIODS = 24  # periods a final close may catch up on (a subscription left unpaid for a long time)


def owes_usage(doc: Mapping[str, Any]) -> bool:
    """True while a metered subscription's final usage close has not been claimed (the repository's ``has_pending``)."""
    return bool(doc.get("metered") and doc.get("items") and not doc.get("usage_final"))


def _ended_at(p: RenewalDecision) -> dt.datetime:
    b = p.change.state.billing
    assert b is not None
    return b.start  # a final invoice's billing is the zero-length period at the end instant


def waiting(doc: Mapping[str, Any], p: RenewalDecision, now: dt.datetime) -> bool:
    """True while the usage of the period ending at the billed period's start (or at the end) is within its grace."""
    b = p.change.state.billing
    if not doc.get("metered") or p.period is None or b is None:
        return False
    from shared.metering.config import metering_settings

    if p.final:
        return owes_usage(doc) and now < _ended_at(p) + metering_settings().grace
    if b.index == 0:
        return False  # the first invoice has no usage behind it
    return now < p.period.start + metering_settings().grace


def deferred(doc: Mapping[str, Any], state: SubState, p: RenewalDecision, now: dt.datetime) -> RenewalDecision:
    """The planner's decision ``p`` with the usage grace applied (unchanged for a subscription without usage)."""
    if p.kind != "bill" or not waiting(doc, p, now):
        return p
    if p.final and p.change.transition is not None:
        # Canceled at period end: the cancellation happens at the boundary, the final invoice after the grace
        # (still pending: due again at the end instant, billed by the first tick past the grace).
        ended = replace(p.change.state, billing=state.billing, has_pending=True)
        return RenewalDecision("cancel", Change(ended, p.change.transition), p.period)
    if p.final and state.canceled_at is None:
        # Ended by dunning: the end instant is recorded now, so the final request id is stable from here on.
        return RenewalDecision("cancel", Change(replace(state, canceled_at=_ended_at(p))), p.period)
    return RenewalDecision("none", Change(state))


def with_usage(
    doc: Mapping[str, Any], state: SubState, p: RenewalDecision, build: Build, now: dt.datetime
) -> tuple[RenewalDecision, RenewalDue | None, dict[str, Any]]:
    """The request of a ``bill`` decision with its usage lines, and the subscription fields to write with the claim.

    A final invoice with nothing to bill becomes a ``cancel`` (no request; the marker only).
    """
    if not doc.get("metered") or p.period is None or not doc.get("items"):
        return p, build(p, ()), {}
    due_id = p.change.state.billing.request_id if p.change.state.billing else ""
    if p.final:
        lines = _final_lines(doc, p, due_id, now)
        amount = sum(ln.amount.amount for ln in lines)
        marker = {"usage_final": {"request_id": due_id, "ended_at": _ended_at(p), "amount": amount}}
        if not any(ln.amount.amount for ln in lines) and not (doc.get("pending_lines") or doc.get("pending_charges")):
            done = replace(p.change.state, billing=state.billing, has_pending=False)
            return RenewalDecision("cancel", Change(done, p.change.transition), p.period), None, marker
        return p, build(p, lines), marker
    return p, build(p, _cycle_lines(doc, p, due_id, now)), {}


def _metered(doc: Mapping[str, Any]) -> tuple[MeteringStore, str, Calendar | None]:
    """The store, the metered customer of a subscription document and its usage calendar (None: never attached)."""
    from shared.metering.store import MeteringStore

    store = MeteringStore()
    customer = doc["metered"]["customer"]
    return store, customer, store.calendar(customer)


def _cycle_lines(
    doc: Mapping[str, Any], p: RenewalDecision, request_id: str, now: dt.datetime
) -> tuple[ChargeLine, ...]:
    """The usage of the period that ended at the billed period's start."""
    assert p.period is not None
    store, customer, cal = _metered(doc)
    if cal is None:
        return ()
    ended = cal.schedule.period_at(p.period.start - _US)
    if ended.end > p.period.start or ended.end <= cal.schedule.boundary(0):
        return ()  # no usage period ended here (the first invoice of the subscription)
    return store.close(customer, ended, request_id, now=now)


def _final_lines(
    doc: Mapping[str, Any], p: RenewalDecision, request_id: str, now: dt.datetime
) -> tuple[ChargeLine, ...]:
    """The usage of the last period(s): from the last invoiced period's start to the end instant."""
    assert p.period is not None
    store, customer, cal = _metered(doc)
    end = _ended_at(p)
    if cal is None or cal.subscription_id != doc.get("id") or end <= cal.schedule.boundary(0):
        return ()  # the customer's usage is billed by another subscription now, or this one ended before it began
    last = cal.schedule.period_at(end - _US)
    first = cal.schedule.period_at(max(p.period.start, cal.schedule.boundary(0)))
    earlier: list[Period] = [
        cal.schedule.period(k) for k in range(max(first.index, last.index - MAX_FINAL_PERIODS), last.index)
    ]
    return store.close(customer, last, request_id, now=now, ended_at=end, earlier=earlier)
