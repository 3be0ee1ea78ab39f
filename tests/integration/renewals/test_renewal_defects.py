"""Renewal defects on the emulators, through the real invoices service and the renewals entry point.

* a ``send_invoice`` subscription advances when its invoice is paid (payment fact, operator mark-paid,
  both, duplicated, reordered) exactly once, and never regresses;
* a plan change while the period is unpaid (past due, pending debit) bills its proration on the next
  invoice exactly once; an upgrade followed by cancel-at-period-end (or cancel now) bills it on a final
  invoice;
* a RenewalDue re-sent for a finalized, unpaid invoice re-announces ``invoice.finalized``.
"""

from __future__ import annotations

import datetime as dt
import itertools
from typing import Any

import pytest

from shared import clients
from shared.domain.money import Money
from shared.events import Received, build_message, parse_message
from shared.events.billing import InvoiceFinalized, InvoicePaid, RenewalDue
from shared.events.envelope import Event
from shared.events.payments import OurRefs, PaymentSucceeded
from shared.invoicing.allocator import NumberAllocator
from shared.invoicing.repository import INVOICES, invoice_id_for
from shared.invoicing.service import InvoiceService
from shared.ops.invoices import main as invoices_cli
from shared.renewals import planner, repository
from shared.renewals.config import renewal_settings
from shared.renewals.entry import handle_push
from shared.renewals.messages import ChargeRetryDue
from shared.subscriptions import commands
from shared.subscriptions.service import SubscriptionService
from tests.fixtures.renewals import Env, push

UTC = dt.UTC


def received(event: Event, key: str) -> Received[Any]:
    data, attrs = build_message(event, idempotency_key=key, occurred_at=dt.datetime.now(UTC))
    return parse_message(data, attrs, "m-1")


def invoices() -> InvoiceService:
    db = clients.firestore()
    return InvoiceService(db=db, allocator=NumberAllocator(db))


def create(
    sub_id: str,
    start: dt.datetime,
    *,
    amount: int,
    currency: str = "EUR",
    seller: str = "acme-de",
    country: str = "DE",
    zone: str = "Europe/Berlin",
    collection: str = "charge_automatically",
    method: str = "pm_card_visa",
) -> dict[str, Any]:
    body: dict[str, Any] = {
        "subscription_id": sub_id,
        "customer": {"id": f"cus-{sub_id}", "name": "Ada Lovelace", "country": country},
        "seller_entity": seller,
        "plan": plan_body("basic", amount, currency),
        "anchor_zone": zone,
        "start_at": start.isoformat(),
        "collection": collection,
    }
    if collection == "charge_automatically":
        body["payment_method"] = {"psp": "stripe", "customer_ref": f"cus_{sub_id}", "method_ref": method}
    status, out = SubscriptionService().create(commands.CreateSubscription.model_validate(body))
    assert status == 201
    return out


def plan_body(plan_id: str, amount: int, currency: str) -> dict[str, Any]:
    return {
        "id": plan_id,
        "currency": currency,
        "interval": "month",
        "lines": [{"description": plan_id, "unit_amount": {"amount": amount, "currency": currency}}],
    }


def tick(env: Env, now: dt.datetime) -> list[RenewalDue]:
    cfg = renewal_settings()
    for shard in range(cfg.shards):
        planner.run_shard(shard, now, cfg)
    return [RenewalDue.model_validate(b) for a, b in env.pull("renewals-due") if a["event_type"] == "renewal.due"]


def resend(env: Env, claimed_at: dt.datetime) -> list[RenewalDue]:
    """The re-send of a claimed, still unsettled request: its first publish was acknowledged, so the
    planner holds it one in-flight window (nothing sent), then re-sends it with the same request id."""
    cfg = renewal_settings()
    held_at = claimed_at + dt.timedelta(seconds=cfg.republish_s)
    assert tick(env, held_at) == []  # acknowledged and maybe still being processed: never re-sent early
    return tick(env, held_at + dt.timedelta(seconds=cfg.republish_s * planner.INFLIGHT_WINDOWS))


def doc(sub_id: str) -> dict[str, Any]:
    return repository.subs().document(sub_id).get().to_dict() or {}


def invoice_events(env: Env) -> list[tuple[dict[str, str], dict[str, Any]]]:
    return env.pull("invoice-events")


def deliver_invoice_events(env: Env) -> list[tuple[dict[str, str], dict[str, Any]]]:
    """What the renewals push subscription on invoice-events does with everything published so far."""
    got = invoice_events(env)
    kinds: dict[str, type[Event]] = {"invoice.finalized": InvoiceFinalized, "invoice.paid": InvoicePaid}
    for attrs, body in got:
        cls = kinds.get(attrs["event_type"])
        if cls is not None:
            handle_push(push(cls.model_validate(body), attrs["idempotency_key"]))
    return got


def deliver_payment_facts(env: Env, svc: InvoiceService) -> None:
    """The collector's facts go to both consumers of payment-events: invoices and renewals."""
    for attrs, body in env.pull("payment-events"):
        if attrs["event_type"] == "payment.succeeded":
            fact = PaymentSucceeded.model_validate(body)
            svc.on_payment_fact(received(fact, attrs["idempotency_key"]))
            handle_push(push(fact, attrs["idempotency_key"]))


def customer_payment(sub_id: str, invoice_id: str, amount: Money, at: dt.datetime, n: int = 1) -> PaymentSucceeded:
    """The customer paid the sent invoice (hosted page, bank transfer matched by the PSP): no attempt of ours."""
    return PaymentSucceeded(
        psp="stripe",
        psp_event_id=f"evt_{invoice_id}_{n}",
        psp_payment_id=f"pi_{invoice_id}_{n}",
        livemode=False,
        amount=amount,
        refs=OurRefs(subscription_id=sub_id, invoice_id=invoice_id),
        psp_created_at=at,
    )


def transitions(env: Env) -> list[dict[str, Any]]:
    return [b for _, b in env.pull("subscription-events")]


# -- send_invoice ---------------------------------------------------------------------------------
CASES = [
    # start, currency, amount, seller, country, zone, next boundary
    (dt.datetime(2026, 1, 31, 9, tzinfo=UTC), "EUR", 1990, "acme-de", "DE", "Europe/Berlin", "2026-02-28T09:00:00Z"),
    (dt.datetime(2027, 3, 15, 15, tzinfo=UTC), "JPY", 12000, "acme-jp", "JP", "Asia/Tokyo", "2027-04-15T15:00:00Z"),
    (
        dt.datetime(2026, 10, 5, 23, 30, tzinfo=UTC),
        "KWD",
        12345,
        "acme-fr",
        "FR",
        "Europe/Paris",
        "2026-11-06T00:30:00Z",
    ),
]


def _send_invoice_period_0(env: Env, sub_id: str, case: tuple[Any, ...]) -> tuple[InvoiceService, str]:
    start, currency, amount, seller, country, zone, _ = case
    create(
        sub_id,
        start,
        amount=amount,
        currency=currency,
        seller=seller,
        country=country,
        zone=zone,
        collection="send_invoice",
    )
    (due,) = tick(env, start)
    svc = invoices()
    out = svc.on_renewal_due(received(due, due.request_id))
    assert out["invoice_id"] == invoice_id_for(due.request_id)
    deliver_invoice_events(env)  # invoice.finalized: send_invoice, nothing charged
    assert env.stripe.requests == []
    assert doc(sub_id)["paid_index"] is None
    return svc, out["invoice_id"]


def _amount_due(invoice_id: str) -> Money:
    inv = clients.firestore().collection(INVOICES).document(invoice_id).get().to_dict() or {}
    return Money(int(inv["amount_due"]), inv["currency"])


@pytest.mark.parametrize("case", CASES, ids=["EUR", "JPY", "KWD"])
def test_send_invoice_paid_by_a_payment_fact_renews(env: Env, case: tuple[Any, ...]) -> None:
    start, *_, next_boundary = case
    svc, iid = _send_invoice_period_0(env, "sub_si", case)
    transitions(env)
    fact = customer_payment("sub_si", iid, _amount_due(iid), start + dt.timedelta(days=3))
    svc.on_payment_fact(received(fact, fact.fact_key()))  # the invoices function: paid, invoice.paid
    handle_push(push(fact, fact.fact_key()))  # the renewals function
    d = doc("sub_si")
    assert (d["status"], d["paid_index"], d["version"]) == ("active", 0, 2)
    assert [(t["version"], t["reason"]) for t in transitions(env)] == [(2, "renewed")]
    deliver_invoice_events(env)  # invoice.paid arrives too: nothing more
    assert doc("sub_si")["version"] == 2
    assert transitions(env) == []
    boundary = dt.datetime.fromisoformat(next_boundary)
    assert tick(env, boundary - dt.timedelta(seconds=1)) == []
    (nxt,) = tick(env, boundary)
    assert nxt.request_id == f"sub_si:{next_boundary}"
    assert nxt.collection == "send_invoice"


def test_send_invoice_marked_paid_by_an_operator_renews(env: Env, capsys: pytest.CaptureFixture[str]) -> None:
    case = CASES[0]
    next_boundary = case[-1]
    _, iid = _send_invoice_period_0(env, "sub_op", case)
    assert invoices_cli(["mark-paid", iid, "--reason", "bank transfer 4711"]) == 0
    assert '"status": "paid"' in capsys.readouterr().out
    got = deliver_invoice_events(env)
    ((attrs, paid),) = [(a, b) for a, b in got if a["event_type"] == "invoice.paid"]
    assert attrs["idempotency_key"] == f"{iid}:paid"
    assert (paid["paid_by"], paid["reason"], paid["psp_payment_id"]) == ("operator", "bank transfer 4711", None)
    due_amount = _amount_due(iid)
    assert paid["collection"] == "send_invoice"
    assert paid["amount_paid"] == {"amount": due_amount.amount, "currency": due_amount.currency}
    d = doc("sub_op")
    assert (d["status"], d["paid_index"], d["version"]) == ("active", 0, 2)
    assert invoices_cli(["mark-paid", iid, "--reason", "again"]) == 0  # idempotent: nothing re-published
    assert invoice_events(env) == []
    (nxt,) = tick(env, dt.datetime.fromisoformat(next_boundary))
    assert nxt.request_id == f"sub_op:{next_boundary}"


ORDERS = sorted(set(itertools.permutations(["fact", "fact", "paid", "paid"])))


@pytest.mark.parametrize("order", ORDERS, ids=["-".join(o) for o in ORDERS])
def test_fact_and_invoice_paid_duplicated_and_reordered_advance_exactly_once(env: Env, order: tuple[str, ...]) -> None:
    case = CASES[1]
    start, *_, next_boundary = case
    svc, iid = _send_invoice_period_0(env, "sub_both", case)
    transitions(env)
    fact = customer_payment("sub_both", iid, _amount_due(iid), start + dt.timedelta(hours=5))
    svc.on_payment_fact(received(fact, fact.fact_key()))
    ((_, body),) = [(a, b) for a, b in invoice_events(env) if a["event_type"] == "invoice.paid"]
    paid = InvoicePaid.model_validate(body)
    for what in order:
        handle_push(push(fact, fact.fact_key()) if what == "fact" else push(paid, f"{iid}:paid"))
    d = doc("sub_both")
    assert (d["status"], d["paid_index"], d["version"]) == ("active", 0, 2)
    assert {(t["version"], t["reason"]) for t in transitions(env)} == {(2, "renewed")}  # re-announced at most
    (nxt,) = tick(env, dt.datetime.fromisoformat(next_boundary))
    assert tick(env, dt.datetime.fromisoformat(next_boundary) + dt.timedelta(seconds=1)) == []
    # Late copies of period 0's payment, after period 1 was claimed, change nothing (never regress).
    handle_push(push(fact, fact.fact_key()))
    handle_push(push(paid, f"{iid}:paid"))
    after = doc("sub_both")
    assert (after["paid_index"], after["version"], after["billing"]["index"]) == (0, 2, 1)
    assert after["billing"]["request_id"] == nxt.request_id


# -- proration while unpaid -------------------------------------------------------------------------
T1 = dt.datetime(2026, 4, 30, 22, 0, tzinfo=UTC)  # 2026-05-01 00:00 in Berlin; the period is all of May


def _proration_amounts(lines: Any) -> list[tuple[str, int]]:
    return [(ln.kind, ln.unit_amount.amount) for ln in lines]


def _change(sub_id: str, amount: int, at: dt.datetime, currency: str = "EUR") -> dict[str, Any]:
    body = commands.ChangePlan.model_validate({"plan": plan_body("pro", amount, currency), "at": at.isoformat()})
    return SubscriptionService().change_plan(sub_id, body)


def _charge(env: Env, svc: InvoiceService, due: RenewalDue) -> str:
    iid: str = svc.on_renewal_due(received(due, due.request_id))["invoice_id"]
    deliver_invoice_events(env)  # the collector charges the finalized invoice
    return iid


def test_plan_change_while_past_due_is_billed_on_the_next_invoice_once(env: Env) -> None:
    env.stripe.behaviour["pm_tired"] = "declined"
    create("sub_pd", T1, amount=3100, method="pm_tired")
    svc = invoices()
    (due0,) = tick(env, T1)
    _charge(env, svc, due0)
    assert doc("sub_pd")["status"] == "past_due"
    # 21 of 31 days left (May 11 00:00 Berlin): the unpaid May invoice still bills the old price.
    out = _change("sub_pd", 6200, dt.datetime(2026, 5, 10, 22, 0, tzinfo=UTC))
    assert [(ln["kind"], ln["unit_amount"]["amount"]) for ln in out["pending_lines"]] == [
        ("proration", -2100),
        ("proration", 4200),
    ]
    env.stripe.behaviour["pm_tired"] = "succeeded"
    cfg = renewal_settings()
    for shard in range(cfg.shards):
        planner.run_shard(shard, T1 + dt.timedelta(days=1), cfg)
    (retry,) = [b for a, b in env.pull("billing-ticks") if a.get("event_type") == "renewal.charge_retry_due"]
    handle_push(push(ChargeRetryDue.model_validate(retry), f"{retry['invoice_id']}:2"))
    deliver_payment_facts(env, svc)
    assert (doc("sub_pd")["status"], doc("sub_pd")["paid_index"]) == ("active", 0)
    june = dt.datetime(2026, 5, 31, 22, 0, tzinfo=UTC)
    (due1,) = tick(env, june)
    assert _proration_amounts(due1.lines) == [("plan", 6200), ("proration", -2100), ("proration", 4200)]
    assert doc("sub_pd")["pending_lines"] == []
    again = resend(env, june)  # the lost-message re-send: same request
    assert [d.request_id for d in again] == [due1.request_id]
    assert again[0].lines == due1.lines
    iid1 = _charge(env, svc, due1)
    inv = clients.firestore().collection(INVOICES).document(iid1).get().to_dict() or {}
    assert [ln["net"] for ln in inv["lines"]] == [6200, -2100, 4200]
    deliver_payment_facts(env, svc)
    (due2,) = tick(env, dt.datetime(2026, 6, 30, 22, 0, tzinfo=UTC))
    assert _proration_amounts(due2.lines) == [("plan", 6200)]  # billed once, never again


def test_plan_change_while_a_bank_debit_is_pending_is_billed_once(env: Env) -> None:
    env.stripe.behaviour["pm_sepa"] = "processing"
    start = dt.datetime(2026, 2, 1, 8, 0, tzinfo=UTC)  # Berlin 09:00; February has 28 days
    create("sub_sepa", start, amount=2800, method="pm_sepa")
    svc = invoices()
    (due0,) = tick(env, start)
    _charge(env, svc, due0)
    d = doc("sub_sepa")
    assert (d["status"], d["paid_index"]) == ("active", None)  # the debit is clearing
    out = _change("sub_sepa", 1400, start + dt.timedelta(days=7))  # a downgrade with 21 days left
    assert [ln["unit_amount"]["amount"] for ln in out["pending_lines"]] == [-2100, 1050]
    (pi,) = [c["psp_payment_id"] for c in d["charges"].values()]
    cleared = PaymentSucceeded(
        psp="stripe",
        psp_event_id="evt_cleared",
        psp_payment_id=pi,
        livemode=False,
        refs=OurRefs(subscription_id="sub_sepa", invoice_id=invoice_id_for(due0.request_id)),
        psp_created_at=start + dt.timedelta(days=3),
    )
    handle_push(push(cleared, cleared.fact_key()))
    assert doc("sub_sepa")["paid_index"] == 0
    (due1,) = tick(env, dt.datetime(2026, 3, 1, 8, 0, tzinfo=UTC))
    assert _proration_amounts(due1.lines) == [("plan", 1400), ("proration", -2100), ("proration", 1050)]
    assert doc("sub_sepa")["pending_lines"] == []


def test_upgrade_then_cancel_at_period_end_bills_the_proration_on_a_final_invoice(env: Env) -> None:
    create("sub_up", T1, amount=3100)
    svc = invoices()
    (due0,) = tick(env, T1)
    _charge(env, svc, due0)
    deliver_payment_facts(env, svc)
    assert doc("sub_up")["paid_index"] == 0
    _change("sub_up", 9300, dt.datetime(2026, 5, 21, 22, 0, tzinfo=UTC))  # 10 of 31 days left
    cancel = commands.CancelSubscription(at_period_end=True, at=T1 + dt.timedelta(days=25))
    assert SubscriptionService().cancel("sub_up", cancel)["cancel_at_period_end"] is True
    transitions(env)
    end = dt.datetime(2026, 5, 31, 22, 0, tzinfo=UTC)
    assert tick(env, end - dt.timedelta(seconds=1)) == []
    (final,) = tick(env, end)
    assert final.request_id == "sub_up:2026-05-31T22:00:00Z:final"
    assert _proration_amounts(final.lines) == [("proration", -1000), ("proration", 3000)]
    assert (final.period_start, final.period_end) == (T1, end)  # the period the prorations belong to
    d = doc("sub_up")
    assert (d["status"], d["pending_lines"], d["canceled_at"]) == ("canceled", [], end)
    assert [(t["to_status"], t["reason"]) for t in transitions(env)] == [("canceled", "canceled_at_period_end")]
    # Collected like any invoice: 20.00 net + 19 % German VAT, charged once.
    iid = _charge(env, svc, final)
    inv = clients.firestore().collection(INVOICES).document(iid).get().to_dict() or {}
    assert (inv["subtotal"], inv["total"]) == (2000, 2380)
    assert env.stripe.requests[-1]["form"]["amount"] == "2380"
    deliver_payment_facts(env, svc)
    d = doc("sub_up")
    assert (d["status"], d["version"], d["paid_index"]) == ("canceled", 3, 1)  # settled without reviving it
    assert d["due_at"] is None
    assert tick(env, end + dt.timedelta(days=40)) == []  # nothing more, ever
    assert transitions(env) == []


def test_cancel_now_with_pending_proration_gets_a_final_invoice_once(env: Env) -> None:
    create("sub_now", T1, amount=3100, collection="send_invoice")
    svc = invoices()
    (due0,) = tick(env, T1)
    svc.on_renewal_due(received(due0, due0.request_id))
    _change("sub_now", 6200, dt.datetime(2026, 5, 10, 22, 0, tzinfo=UTC))  # unpaid send_invoice period
    at = dt.datetime(2026, 5, 12, 10, 0, tzinfo=UTC)
    SubscriptionService().cancel("sub_now", commands.CancelSubscription(at=at))
    (final,) = tick(env, at + dt.timedelta(minutes=1))
    assert final.request_id == "sub_now:2026-05-12T10:00:00Z:final"
    assert _proration_amounts(final.lines) == [("proration", -2100), ("proration", 4200)]
    assert tick(env, at + dt.timedelta(minutes=2)) == []
    # Unpaid, it is re-sent like any claimed request (same id) until paid; then never again.
    assert [d.request_id for d in resend(env, at + dt.timedelta(minutes=1))] == [final.request_id]
    iid = svc.on_renewal_due(received(final, final.request_id))["invoice_id"]
    assert invoices_cli(["mark-paid", iid, "--reason", "cheque"]) == 0
    deliver_invoice_events(env)
    d = doc("sub_now")
    assert (d["status"], d["due_at"], d["billing"]["index"], d["paid_index"]) == ("canceled", None, 1, 1)
    assert tick(env, at + dt.timedelta(days=30)) == []


# -- a lost invoice.finalized is recovered by the re-sent RenewalDue ------------------------------------
def test_dead_lettered_invoice_finalized_is_reannounced_by_the_resent_renewal_due(env: Env) -> None:
    create("sub_dl", T1, amount=3100)
    svc = invoices()
    (due,) = tick(env, T1)
    svc.on_renewal_due(received(due, due.request_id))
    ((first, _),) = invoice_events(env)  # ... and dead-lettered: the renewals function never sees it
    assert env.stripe.requests == []
    (again,) = resend(env, T1)
    assert again.request_id == due.request_id
    svc.on_renewal_due(received(again, again.request_id))  # the invoices function gets the re-sent request
    got = deliver_invoice_events(env)
    assert [(a["event_type"], a["event_id"], a["idempotency_key"]) for a, _ in got] == [
        ("invoice.finalized", first["event_id"], first["idempotency_key"])
    ]
    assert env.stripe.charges() == 1
    deliver_payment_facts(env, svc)
    assert doc("sub_dl")["paid_index"] == 0
    invoice_events(env)
    # Paid now: a late re-send of the request re-announces nothing.
    svc.on_renewal_due(received(again, again.request_id))
    assert [a["event_type"] for a, _ in invoice_events(env)] == []
