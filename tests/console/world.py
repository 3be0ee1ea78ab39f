"""Data for the console tests, the browser tests and the benchmark: real invoices (issued by the invoices
service, so their PDFs are real), a subscription, charge attempts, archived webhooks, a dead letter."""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from shared import clients
from shared.console.app import Console, flask_app
from shared.console.config import ConsoleSettings
from shared.events import build_message
from shared.events.probe import ProbeRequested
from shared.invoicing.allocator import NumberAllocator
from shared.invoicing.service import InvoiceService
from shared.webhooks.store import record_id
from tests.card_data import PANS
from tests.fixtures.invoices import B2C_FR, due_msg, renewal

ROOT = Path(__file__).resolve().parents[2]
CONSOLE_ROOT = ROOT / "functions" / "console"
T0 = dt.datetime(2026, 3, 1, tzinfo=dt.UTC)
USER = "alice@example.com"
DLQ_SUB = "probe-sink-probes"
SETTINGS = ConsoleSettings(dev_identity=None, csrf_secret=b"k" * 32, deadletter_subscriptions=(DLQ_SUB,))


@dataclass
class World:
    project: str
    customer: str = B2C_FR.id
    invoices: list[str] = field(default_factory=list)
    numbers: list[str] = field(default_factory=list)
    check_sub: str = ""  # a pull subscription on the dead letter's source topic: sees a replay

    def console(self, settings: ConsoleSettings = SETTINGS) -> Console:
        return Console(root=CONSOLE_ROOT, settings=lambda: settings)

    def app(self, settings: ConsoleSettings = SETTINGS) -> Any:
        return flask_app(self.console(settings))


def issue_invoices(n: int, prefix: str = "inv") -> list[dict[str, Any]]:
    """``n`` finalized invoices of the French B2C customer through the real invoices service."""
    db = clients.firestore()
    svc = InvoiceService(db=db, allocator=NumberAllocator(db), clock=lambda: T0)
    return [svc.on_renewal_due(due_msg(renewal(f"{prefix}:{i}", amounts=(1000 + i,)))) for i in range(n)]


def seed_payments(customer: str, invoice_ids: list[str], events_per_payment: int, *, with_card: bool = True) -> None:
    """One charge attempt per invoice and ``events_per_payment`` archived webhooks behind each (batched)."""
    db = clients.firestore()
    now = dt.datetime.now(dt.UTC).replace(microsecond=0)  # recent, so the 30-day charts show them
    batch, n = db.batch(), 0
    for i, iid in enumerate(invoice_ids):
        pid = f"pi_{i:04d}"
        at = now - dt.timedelta(hours=len(invoice_ids) - i)
        status = "failed" if i % 3 == 2 else "succeeded"
        attempt = {
            "invoice_id": iid,
            "attempt": 1,
            "status": status,
            "psp": "stripe",
            "account": "default",
            "psp_payment_id": pid,
            "customer_id": customer,
            "subscription_id": "sub_1",
            "amount": {"amount": 1000 + i, "currency": "EUR"},
            "created_at": at,
            **({"category": "insufficient_funds", "decline_code": "insufficient_funds"} if status == "failed" else {}),
        }
        batch.set(db.collection("charge_attempts").document(f"{iid}:1"), attempt)
        for k in range(events_per_payment):
            fact = "payment.failed" if status == "failed" else ("payment.succeeded" if k == 0 else "payment.updated")
            eid = f"evt_{i:04d}_{k:02d}"
            card = {"card": {"number": PANS[0], "cvc": "123"}} if with_card and k == 0 else {}
            raw = json.dumps({"id": eid, "type": fact, "data": {"object": {"id": pid, **card}}})
            record = {
                "psp": "stripe",
                "account": "default",
                "psp_event_id": eid,
                "psp_event_type": fact,
                "received_at": at + dt.timedelta(seconds=k),
                "headers": "{}",
                "raw": raw,
                "state": "published",
                "fact_key": f"stripe:default:{pid}:{fact}",
            }
            batch.set(db.collection("webhook_events").document(record_id("stripe", "default", eid)), record)
            n += 1
            if n % 400 == 0:
                batch.commit()
                batch = db.batch()
        n += 1
    batch.commit()


def seed_subscription(customer: str) -> None:
    db = clients.firestore()
    db.collection("customers").document(customer).set(
        {
            "id": customer,
            "legal_name": B2C_FR.name,
            "email": "camille@example.com",
            "country": B2C_FR.country,
            "currency": "EUR",
            "created_at": T0,
        }
    )
    db.collection("subscriptions").document("sub_1").set(
        {
            "customer_id": customer,
            "customer": B2C_FR.model_dump(mode="json") | {"email": "camille@example.com"},
            "status": "active",
            "version": 3,
            "last_cause": "renewed",
            "billing": {"index": 2, "start": T0, "end": T0 + dt.timedelta(days=31)},
            # as shared.renewals.lifecycle.recorded writes it, one entry per transition
            "transitions": [
                {"version": 1, "from_status": None, "to_status": "active", "reason": "created"},
                {"version": 3, "from_status": "past_due", "to_status": "active", "reason": "recovered"},
                {"version": 2, "from_status": "active", "to_status": "past_due", "reason": "payment_failed"},
            ],
        }
    )


def seed_dead_letter(project: str) -> tuple[str, str]:
    """A dead-lettered probe in ``probe-sink-probes-dlq`` (as Pub/Sub leaves it) and a subscription that sees
    the source topic; returns (message id of the dead letter, that subscription's path)."""
    from google.cloud import pubsub_v1

    pub, sub = pubsub_v1.PublisherClient(), pubsub_v1.SubscriberClient()
    topic = pub.topic_path(project, "probes")
    dlq_topic = pub.topic_path(project, f"{DLQ_SUB}-dlq")
    for t in (topic, dlq_topic):
        pub.create_topic(name=t)
    sub.create_subscription(request={"name": sub.subscription_path(project, DLQ_SUB), "topic": topic})
    sub.create_subscription(request={"name": sub.subscription_path(project, f"{DLQ_SUB}-dlq"), "topic": dlq_topic})
    check = sub.subscription_path(project, "probes-check")
    sub.create_subscription(request={"name": check, "topic": topic})
    data, attrs = build_message(ProbeRequested(probe_id="p-dead"), idempotency_key="p-dead", occurred_at=T0)
    attrs |= {"CloudPubSubDeadLetterSourceDeliveryCount": "5", "CloudPubSubDeadLetterSourceSubscription": DLQ_SUB}
    message_id = pub.publish(dlq_topic, data, **attrs).result(timeout=30)
    return str(message_id), check


def build_world(project: str, *, invoices: int = 3, events_per_payment: int = 2) -> World:
    from google.cloud import pubsub_v1

    pub = pubsub_v1.PublisherClient()
    pub.create_topic(name=pub.topic_path(project, "invoice-events"))
    w = World(project)
    issued = issue_invoices(invoices)
    w.invoices = [d["invoice_id"] for d in issued]
    w.numbers = [d["number"] for d in issued]
    seed_subscription(w.customer)
    seed_payments(w.customer, w.invoices, events_per_payment)
    return w
