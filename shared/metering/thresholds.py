"""Thresholds (progressive billing): invoice a period's usage early when its amount crosses a threshold.

A metered subscription may carry ``threshold`` (minor units of its currency). After the aggregator folds a batch,
the estimated amount of each touched open period (:func:`~shared.metering.store.usage_lines`, the rating of the
close) is compared with the multiples of the threshold (:func:`~shared.domain.meters.threshold_crossed`). A
crossing records, in ``usage_thresholds/{customer}~{period start}``, the threshold index, the usage billed to date
per line and the invoice request; one write conditioned on the document's ``update_time`` (the compare-and-set
policy), so concurrent or redelivered batches record a crossing once. The request is then published as a
RenewalDue (``request_id`` ``threshold:{subscription}:{period}:{index}``: the invoice id is derived from it, so a
re-publish is the same invoice) and marked published; an unpublished one is published again by the next batch.

The threshold invoice is numbered, archived and collected like any invoice (auto-charged with the subscription's
payment method, or sent), but it names no subscription: the outcome handler and dunning never take it for a
period's invoice, so paying it (or failing to) never moves the subscription's period. Its ``request_id`` prefix is
its billing reason. The period's close (:meth:`~shared.metering.store.MeteringStore.close`) bills the full usage and
credits what the threshold invoices billed, line by line, capped at the line's amount (never below zero), and
marks the document closed in its own commit: no threshold invoice after the close, and the credit once.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from shared.domain.calendar import Period
from shared.domain.meters import Event, Rated, threshold_crossed
from shared.domain.money import Money
from shared.domain.pricing import ChargeLine, PricingError
from shared.events.publisher import Publisher, default_publisher
from shared.idempotency import retry_on_contention
from shared.idempotency.cas import Stale, precondition
from shared.log import get_logger
from shared.metering.store import (
    THRESHOLDS,
    Calendar,
    MeteringStore,
    _calendar,
    _line,
    period_key,
    usage_lines,
)

# The aggregator checks thresholds after every fold, on a cold instance too: the billing contracts (and the due-date
# rule) load with the first crossing's invoice request, not with the first batch (README, cold start).
if TYPE_CHECKING:
    from shared.events.billing import RenewalDue

log = get_logger(__name__)


def request_id(subscription_id: str, pk: str, index: int) -> str:
    from shared.events.billing import THRESHOLD_PREFIX

    return f"{THRESHOLD_PREFIX}{subscription_id}:{pk}:{index}"


def is_threshold_request(rid: str) -> bool:
    """The billing reason of an invoice issued from ``rid``: a threshold invoice, not a period's."""
    from shared.events.billing import THRESHOLD_PREFIX

    return rid.startswith(THRESHOLD_PREFIX)


def to_date_lines(
    cal: Calendar, rated: list[tuple[tuple[str, str], Rated]], billed: dict[str, Any], p: Period
) -> tuple[list[ChargeLine], dict[str, Any]]:
    """The usage to date not billed yet, per line (the difference to ``billed``), and the new billed record."""
    lines, now_billed = [], dict(billed)
    for key, r in rated:
        k = f"{r.price_id}|{key[0]}|{key[1]}"
        before = billed.get(k, {"quantity": "0", "amount": 0})
        delta = r.amount.amount - int(before["amount"])
        now_billed[k] = {"quantity": f"{r.quantity:f}", "amount": r.amount.amount}
        if delta:
            units = max(r.quantity - Decimal(before["quantity"]), Decimal(0))
            ln = _line(cal, r, key, p, amount=Money(delta, r.amount.currency), quantity=units, adjustment=None)
            text = ln.description.replace("Usage ", "Usage to date ", 1)
            lines.append(ln.model_copy(update={"description": f"{text} (billed so far: {before['quantity']})"[:500]}))
    return lines, now_billed


@dataclass
class Thresholds:
    store: MeteringStore = field(default_factory=MeteringStore)
    publisher: Publisher = field(default_factory=default_publisher)

    def after_batch(self, events: Sequence[Event]) -> list[str]:
        """Check every (customer, period) the batch touched; the threshold requests published."""
        out: list[str] = []
        for customer in sorted({e.customer for e in events}):
            cal = self.store.calendar(customer)
            if cal is None or not cal.threshold or cal.ended_at is not None:  # none (or ended): no further read
                continue
            periods = {
                period_key(p): p
                for p in (cal.schedule.period_at(e.timestamp) for e in events if e.customer == customer)
            }
            for pk in sorted(periods):
                try:
                    out += self.check(customer, periods[pk])
                except PricingError as exc:
                    # A usage total beyond what a line prices (e.g. a sum of bytes past 10^12 units): no
                    # threshold can be billed for it, and the events are counted already, so redelivering the
                    # batch would only end in the dead-letter topic. Logged for the on-call; the period's close
                    # refuses it too (the planner logs it and leaves that renewal due): meter a coarser unit.
                    log.error(
                        "usage threshold not checked: usage beyond what a line prices",
                        extra={
                            "event": "billing.blocked",
                            "stage": "usage_threshold",
                            "customer": customer,
                            "period": pk,
                            "error": str(exc)[:200],
                        },
                    )
        return out

    def check(self, customer: str, period: Period) -> list[str]:
        """Record a crossing (once), publish the requests not published yet, mark them published."""
        pending = retry_on_contention(lambda: self._step(customer, period), what=f"usage threshold {customer}")
        if not pending:
            return []
        cal = self.store.calendar(customer)
        assert cal is not None
        sub = self.store._col("subscriptions").document(cal.subscription_id).get().to_dict() or {}
        items = [(self._request(cal, sub, e), e["request_id"], e["crossed_at"]) for e in pending]
        self.publisher.publish_all(items)  # a failure raises: the batch is redelivered and publishes again
        done = {e["request_id"] for e in pending}
        retry_on_contention(lambda: self._mark(customer, period, done), what=f"usage threshold {customer}")
        log.info("threshold invoices requested", extra={"requests": sorted(done)})
        return sorted(done)

    def _ref(self, customer: str, period: Period) -> Any:
        return self.store._col(THRESHOLDS).document(f"{customer}~{period_key(period)}")

    def _step(self, customer: str, period: Period) -> list[dict[str, Any]]:
        from google.api_core.exceptions import AlreadyExists, Conflict, NotFound

        ref = self._ref(customer, period)
        snap = ref.get()
        doc = (snap.to_dict() or {}) if snap.exists else {}
        invoices = list(doc.get("invoices", []))
        pending = [e for e in invoices if not e.get("published")]
        cal = _calendar(self.store._col("usage_calendars").document(customer).get())
        if doc.get("closed_at") is not None or cal is None or not cal.threshold or cal.ended_at is not None:
            return pending
        meters = {it.meter: self.store.meter(it.meter) for it in cal.items}
        rated = usage_lines(cal, meters, self.store.period_totals(customer, period))
        amount = sum(r.amount.amount for _, r in rated)
        n = threshold_crossed(amount, cal.threshold, int(doc.get("index", 0)))
        if n is None:
            return pending
        lines, now_billed = to_date_lines(cal, rated, doc.get("lines", {}), period)
        total = sum(ln.amount.amount for ln in lines)
        if total <= 0:
            return pending
        pk = period_key(period)
        entry = {
            "index": n,
            "request_id": request_id(cal.subscription_id, pk, n),
            "lines": [ln.model_dump(mode="json") for ln in lines],
            "amount": total,
            "currency": cal.items[0].price.currency,
            "published": False,
            "crossed_at": self.store.deps.clock(),  # the due date counts from here: a re-sent request is the same
        }
        fields = {
            "index": n,
            "lines": now_billed,
            "invoices": [*invoices, entry],
            "billed_amount": int(doc.get("billed_amount", 0)) + total,
            "updated_at": self.store.deps.clock(),
        }
        try:
            if snap.exists:
                ref.update(fields, option=precondition(snap.update_time))
            else:
                ref.create({"customer": customer, "period": pk, "closed_at": None, **fields})
        except (AlreadyExists, Conflict, NotFound):
            raise Stale from None
        log.info("usage threshold crossed", extra={"index": n, "amount": amount, "billed": total})
        return [*pending, entry]

    def _mark(self, customer: str, period: Period, done: set[str]) -> None:
        from google.api_core.exceptions import Conflict, NotFound

        ref = self._ref(customer, period)
        snap = ref.get()
        invoices = [
            {**e, "published": True} if e["request_id"] in done else e for e in (snap.to_dict() or {})["invoices"]
        ]
        try:
            ref.update({"invoices": invoices}, option=precondition(snap.update_time))
        except (Conflict, NotFound):
            raise Stale from None

    @staticmethod
    def _request(cal: Calendar, sub: dict[str, Any], entry: dict[str, Any]) -> RenewalDue:
        """The threshold invoice: the subscription's seller, customer and collection, but not its id (see above)."""
        from shared.domain.subscriptions import invoice_due_at
        from shared.events.billing import Party, PaymentMethodRef, RenewalDue

        pm = sub.get("payment_method")
        days = sub.get("days_until_due")
        return RenewalDue(
            request_id=entry["request_id"],
            subscription_id=None,
            seller_entity=sub["seller_entity"],
            customer=Party.model_validate(sub["customer"]),
            currency=entry["currency"],
            charges=tuple(ChargeLine.model_validate(x) for x in entry["lines"]),
            collection=sub.get("collection", "charge_automatically"),
            payment_method=PaymentMethodRef.model_validate(pm) if pm else None,
            due_at=invoice_due_at(entry["crossed_at"], int(days)) if days is not None else None,
            billing_reason="subscription_threshold",
        )
