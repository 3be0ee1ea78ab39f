"""The analytics views, written once in BigQuery SQL, run on DuckDB over rows built from real contract
instances (hypothesis), and return what plain Python computes from the same events."""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from infra.local.analytics import Store, row_from_message
from shared.domain.money import Money
from shared.events import Event, build_message
from shared.events.billing import InvoiceFinalized, InvoicePaid, InvoiceVoided
from shared.events.payments import PaymentFailed, PaymentSucceeded

T0 = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
PSPS = ("stripe", "adyen", "paypal", "gocardless", "braintree", "checkout")
CURRENCIES = ("EUR", "JPY", "KWD")
TOPICS = ("payment-events", "invoice-events", "subscription-events")


@dataclass(frozen=True)
class Published:
    event: Event
    key: str
    occurred_at: dt.datetime
    copies: int  # at-least-once: the same message written more than once


@pytest.fixture(scope="module")
def shared_store() -> Iterator[Store]:
    s = Store(TOPICS)
    yield s
    s.close()


@pytest.fixture
def store(shared_store: Store) -> Store:
    shared_store.clear()
    return shared_store


def load(store: Store, published: list[Published]) -> None:
    by_topic: dict[str, list[dict[str, Any]]] = defaultdict(list)
    n = 0
    for p in published:
        data, attrs = build_message(p.event, idempotency_key=p.key, occurred_at=p.occurred_at, producer="tests")
        for _ in range(p.copies):
            n += 1
            row = row_from_message(
                data,
                attrs,
                message_id=str(n),
                publish_time=p.occurred_at + dt.timedelta(seconds=n),
                subscription=f"projects/demo/subscriptions/{p.event.TOPIC}-bigquery",
            )
            by_topic[p.event.TOPIC].append(row)
    for topic, rows in by_topic.items():
        store.insert(topic, rows)


instants = st.integers(min_value=0, max_value=90 * 86400).map(lambda s: T0 + dt.timedelta(seconds=s))
copies = st.integers(min_value=1, max_value=3)


@st.composite
def payment_facts(draw: st.DrawFn) -> list[Published]:
    out = []
    for i in range(draw(st.integers(min_value=0, max_value=25))):
        at = draw(instants)
        psp = draw(st.sampled_from(PSPS))
        webhook = draw(st.booleans())
        common: dict[str, Any] = {
            "psp": psp,
            "psp_payment_id": f"pay_{i}",
            "psp_event_id": f"evt_{i}" if webhook else None,
            "livemode": False,
            "amount": Money(draw(st.integers(min_value=1, max_value=10**6)), draw(st.sampled_from(CURRENCIES))),
            "psp_created_at": at,
        }
        event: Event
        if draw(st.booleans()):
            event = PaymentFailed(
                **common,
                decline_code=draw(st.sampled_from([None, "insufficient_funds", "stolen_card", "do_not_honor"])),
                retryable=draw(st.booleans()),
            )
        else:
            event = PaymentSucceeded(**common)
        out.append(Published(event, event.fact_key(), at, draw(copies)))
    return out


def _day(t: dt.datetime) -> dt.date:
    return t.astimezone(dt.UTC).date()


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(facts=payment_facts())
def test_declines_and_webhook_volume_match_python(shared_store: Store, facts: list[Published]) -> None:
    store = shared_store
    store.clear()
    load(store, facts)
    declines: dict[tuple[Any, ...], list[int]] = defaultdict(lambda: [0, 0])
    volume: dict[tuple[Any, ...], list[Any]] = defaultdict(lambda: [0, set()])
    for p in facts:
        ev: Any = p.event
        if isinstance(ev, PaymentFailed):
            d = declines[(_day(p.occurred_at), ev.psp, ev.decline_code or "unknown")]
            d[0] += 1
            d[1] += 0 if ev.retryable else 1
        if ev.psp_event_id is not None:
            v = volume[(_day(p.occurred_at), ev.psp)]
            v[0] += 1
            v[1].add(ev.psp_event_id)
    assert store.query("declines_by_category") == sorted(
        (
            {"day": k[0], "psp": k[1], "category": k[2], "declines": v[0], "hard_declines": v[1]}
            for k, v in declines.items()
        ),
        key=lambda r: tuple(r.values()),
    )
    assert store.query("webhook_volume") == sorted(
        ({"day": k[0], "psp": k[1], "events": v[0], "notifications": len(v[1])} for k, v in volume.items()),
        key=lambda r: tuple(r.values()),
    )


# --- invoices: renewals paid on time and MRR --------------------------------------------------------

PERIODS: dict[str, dt.timedelta | int] = {"week": dt.timedelta(days=7), "month": 1, "quarter": 3, "year": 12}


def _add_months(t: dt.datetime, months: int) -> dt.datetime:
    y, m = divmod(t.month - 1 + months, 12)
    return t.replace(year=t.year + y, month=m + 1, day=min(t.day, 28))


@dataclass(frozen=True)
class Renewal:
    invoice_id: str
    subscription_id: str
    start: dt.datetime
    end: dt.datetime
    subtotal: Money
    paid_after: dt.timedelta | None
    voided: bool
    auto: bool


@st.composite
def renewals(draw: st.DrawFn) -> list[Renewal]:
    out = []
    for i in range(draw(st.integers(min_value=0, max_value=15))):
        start = draw(instants).replace(day=draw(st.integers(min_value=1, max_value=28)))
        cadence = draw(st.sampled_from(sorted(PERIODS)))
        step = PERIODS[cadence]
        end = start + step if isinstance(step, dt.timedelta) else _add_months(start, step)
        voided = draw(st.booleans()) and draw(st.booleans())
        paid_after = (
            None if voided else draw(st.none() | st.integers(0, 5 * 86400).map(lambda s: dt.timedelta(seconds=s)))
        )
        out.append(
            Renewal(
                invoice_id=f"inv_{i}",
                subscription_id=f"sub_{draw(st.integers(0, 4))}",
                start=start,
                end=end,
                # Credits can exceed the plan: negative subtotals exercise DIV/MOD's rounding towards zero.
                subtotal=Money(draw(st.integers(-5000, 10**6)), draw(st.sampled_from(CURRENCIES))),
                paid_after=paid_after,
                voided=voided,
                auto=draw(st.booleans()),
            )
        )
    return out


def _invoice_events(r: Renewal, copies: int) -> list[Published]:
    tax = Money.zero(r.subtotal.currency)
    fin = InvoiceFinalized(
        invoice_id=r.invoice_id,
        number=f"N-{r.invoice_id}",
        subscription_id=r.subscription_id,
        customer_id="cus",
        request_id=f"{r.subscription_id}:{r.start.isoformat()}",
        period_start=r.start,
        period_end=r.end,
        subtotal=r.subtotal,
        tax=tax,
        total=r.subtotal + tax,
        amount_due=r.subtotal + tax,
        collection="charge_automatically" if r.auto else "send_invoice",
        finalized_at=r.start,
    )
    out = [Published(fin, f"{r.invoice_id}:finalized", r.start, copies)]
    if r.paid_after is not None:
        paid_at = r.start + r.paid_after
        paid = InvoicePaid(
            invoice_id=r.invoice_id,
            number=fin.number,
            subscription_id=r.subscription_id,
            customer_id="cus",
            amount_paid=fin.total,
            paid_at=paid_at,
        )
        out.append(Published(paid, f"{r.invoice_id}:paid", paid_at, copies))
    if r.voided:
        void = InvoiceVoided(invoice_id=r.invoice_id, number=fin.number, customer_id="cus", reason="test")
        out.append(Published(void, f"{r.invoice_id}:voided", r.start + dt.timedelta(hours=1), 1))
    return out


def _trunc_div(a: int, b: int) -> tuple[int, int]:
    """BigQuery's DIV and MOD: the quotient rounds towards zero, the remainder has the dividend's sign."""
    q = abs(a) // b * (1 if a >= 0 else -1)
    return q, a - q * b


def expected_mrr(rs: list[Renewal]) -> list[dict[str, Any]]:
    sums: dict[tuple[dt.date, str], int] = defaultdict(int)
    subs: dict[tuple[dt.date, str], set[str]] = defaultdict(set)
    for r in rs:
        if r.voided:
            continue
        s, e = r.start.date(), r.end.date()
        months = 1 if (e - s).days < 28 else max((e.year - s.year) * 12 + e.month - s.month, 1)
        q, rem = _trunc_div(r.subtotal.amount, months)
        for k in range(months):
            y, m = divmod(s.month - 1 + k, 12)
            key = (dt.date(s.year + y, m + 1, 1), r.subtotal.currency)
            sums[key] += q + (rem if k == 0 else 0)
            subs[key].add(r.subscription_id)
    rows = [{"month": k[0], "currency": k[1], "mrr": v, "subscriptions": len(subs[k])} for k, v in sums.items()]
    return sorted(rows, key=lambda r: tuple(r.values()))


def expected_on_time(rs: list[Renewal]) -> list[dict[str, Any]]:
    acc: dict[tuple[dt.date, str], list[int]] = defaultdict(lambda: [0, 0, 0, 0])
    for r in rs:
        if not r.auto:
            continue
        a = acc[(r.start.date(), r.subtotal.currency)]
        a[0] += 1
        if r.paid_after is None:
            a[3] += 1
        elif r.paid_after <= dt.timedelta(days=1):
            a[1] += 1
        else:
            a[2] += 1
    rows = [
        {"day": k[0], "currency": k[1], "renewals": v[0], "paid_on_time": v[1], "paid_late": v[2], "unpaid": v[3]}
        for k, v in acc.items()
    ]
    return sorted(rows, key=lambda r: tuple(r.values()))


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(rs=renewals(), dup=copies)
def test_mrr_and_renewals_on_time_match_python(shared_store: Store, rs: list[Renewal], dup: int) -> None:
    shared_store.clear()
    load(shared_store, [p for r in rs for p in _invoice_events(r, dup)])
    assert shared_store.query("mrr") == expected_mrr(rs)
    assert shared_store.query("renewals_on_time") == expected_on_time(rs)


def test_a_yearly_plan_spreads_over_twelve_months_and_the_months_add_up(store: Store) -> None:
    start = dt.datetime(2026, 3, 15, 9, tzinfo=dt.UTC)
    r = Renewal("inv_y", "sub_y", start, _add_months(start, 12), Money(12_005, "EUR"), None, False, True)
    load(store, _invoice_events(r, 2))
    rows = store.query("mrr")
    assert [x["month"] for x in rows] == [dt.date(2026 + (2 + k) // 12, (2 + k) % 12 + 1, 1) for k in range(12)]
    assert [x["mrr"] for x in rows] == [1_005] + [1_000] * 11
    assert sum(x["mrr"] for x in rows) == 12_005


def test_duplicated_deliveries_count_once(store: Store) -> None:
    at = dt.datetime(2026, 2, 1, 12, tzinfo=dt.UTC)
    ev = PaymentFailed(
        psp="adyen",
        psp_payment_id="p1",
        psp_event_id="AUTHORISATION:p1:false",
        livemode=False,
        psp_created_at=at,
        decline_code="stolen_card",
        retryable=False,
    )
    load(store, [Published(ev, ev.fact_key(), at, 3)])
    assert store.con.execute("SELECT count(*) FROM analytics.payment_events").fetchall() == [(3,)]
    assert store.query("declines_by_category") == [
        {"day": at.date(), "psp": "adyen", "category": "stolen_card", "declines": 1, "hard_declines": 1}
    ]
    assert store.query("webhook_volume") == [{"day": at.date(), "psp": "adyen", "events": 1, "notifications": 1}]
