"""THE hook between usage and the renewal invoice: usage of the period that just ended, billed in arrears on the
invoice that bills the next period in advance, after the grace period for late events.

The renewals planner calls two functions, for a subscription a metered calendar was attached to (its document
carries ``metered``, written by :meth:`shared.metering.store.MeteringStore.attach`):

* :func:`waiting`: the period boundary has passed but not the grace: the planner leaves the renewal due (no
  claim, no write) and a later tick bills it; the whole invoice waits, so nothing is finalized early;
* :func:`with_usage`: the RenewalDue gets the usage lines (and late adjustments of earlier periods) among its
  charges. The close is keyed by the RenewalDue's request id, so a claim that loses a race, or a renewal re-sent
  later, gets the very same lines: billed exactly once.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from shared.domain.subscriptions import RenewalDecision
from shared.events.billing import RenewalDue
from shared.metering.config import metering_settings
from shared.metering.store import MeteringStore

_US = dt.timedelta(microseconds=1)


def waiting(doc: dict[str, Any], p: RenewalDecision, now: dt.datetime) -> bool:
    """True while the usage of the period ending at the billed period's start is still within its grace."""
    b = p.change.state.billing
    if not doc.get("metered") or p.period is None or p.final or b is None or b.index == 0:
        return False  # the first invoice has no usage behind it
    return now < p.period.start + metering_settings().grace


def with_usage(doc: dict[str, Any], p: RenewalDecision, due: RenewalDue, now: dt.datetime) -> RenewalDue:
    """``due`` with the usage lines of the ended period among its charges (unchanged for a non-metered one)."""
    if not doc.get("metered") or p.period is None or not doc.get("items"):
        return due
    store = MeteringStore()
    customer = doc["metered"]["customer"]
    cal = store.calendar(customer)
    if cal is None:
        return due
    ended = cal.schedule.period_at(p.period.start - _US)
    if ended.end > p.period.start or ended.end <= cal.schedule.boundary(0):
        return due  # no usage period ended here (the first invoice of the subscription)
    lines = store.close(customer, ended, due.request_id, now=now)
    return due.model_copy(update={"charges": (*due.charges, *lines)}) if lines else due
