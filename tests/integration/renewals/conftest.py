"""Fixtures for the renewals integration tests: a fresh emulator project, topics with pull
subscriptions to observe what was published, and a Stripe-shaped stub for the SDK."""

from __future__ import annotations

import base64
import datetime as dt
import json
import threading
import types
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import pytest
from pytest_httpserver import HTTPServer
from werkzeug import Request, Response

from shared.config import reset_settings
from shared.domain.money import Money
from shared.events import build_message
from shared.events.billing import InvoiceFinalized, Party, PaymentMethodRef, RenewalDue
from shared.events.envelope import Event
from shared.events.publisher import PubSubPublisher, RawMessage
from shared.subscriptions.commands import CreateSubscription
from shared.subscriptions.service import SubscriptionService
from tests.conftest import Gcp
from tests.helpers import T0, drain

DECLINES = {
    "declined": "generic_decline",  # soft, retried on the configured schedule
    "insufficient": "insufficient_funds",  # soft, not before the next pay day (at most 3 days)
    "stolen": "stolen_card",  # hard
    "auth": "authentication_required",  # only the customer can unblock it
}
TOPICS = ("renewals-due", "invoice-events", "payment-events", "subscription-events", "billing-ticks")


@dataclass
class StripeStub:
    """Answers POST /v1/payment_intents like Stripe: replays the first answer for a known key."""

    # payment method -> succeeded|processing, or a decline: declined (generic), insufficient, stolen, auth
    behaviour: dict[str, str] = field(default_factory=dict)
    requests: list[dict[str, Any]] = field(default_factory=list)
    _answers: dict[str, tuple[int, dict[str, Any]]] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def handler(self, request: Request) -> Response:
        key = request.headers.get("Idempotency-Key", "")
        form = request.form.to_dict()
        with self._lock:
            self.requests.append({"key": key, "form": form})
            if key not in self._answers:
                self._answers[key] = self._answer(form, len(self._answers) + 1)
            status, body = self._answers[key]
        return Response(json.dumps(body), status=status, content_type="application/json")

    def _answer(self, form: dict[str, str], n: int) -> tuple[int, dict[str, Any]]:
        how = self.behaviour.get(form.get("payment_method", ""), "succeeded")
        pi = {"id": f"pi_{n:06d}", "object": "payment_intent", "created": int(T0.timestamp()), "livemode": False}
        if how in DECLINES:
            code = DECLINES[how]
            err = {"type": "card_error", "code": "card_declined", "decline_code": code, "message": "declined"}
            return 402, {"error": err | {"payment_intent": pi | {"status": "requires_payment_method"}}}
        return 200, pi | {"status": how}

    def charges(self) -> int:
        return len({r["key"] for r in self.requests})


@dataclass
class Env:
    gcp: Gcp
    stripe: StripeStub
    subs: dict[str, str]

    def pull(self, topic: str) -> list[tuple[dict[str, str], dict[str, Any]]]:
        """Everything published to ``topic`` so far (acknowledged, so each call returns new ones)."""
        return drain(self.subs[topic], wait=False)


@pytest.fixture
def env(gcp: Gcp, httpserver: HTTPServer, monkeypatch: pytest.MonkeyPatch) -> Env:
    monkeypatch.setenv("RENEWALS_ALLOW_TEST_CLOCK", "1")
    monkeypatch.setenv("RENEWALS_SHARDS", "4")
    monkeypatch.setenv("RENEWALS_PAGE_SIZE", "3")  # small pages exercise the cursors
    monkeypatch.setenv("STRIPE_API_KEY", "sk_test_demo_not_a_secret")
    monkeypatch.setenv("STRIPE_API_BASE", httpserver.url_for("").rstrip("/"))
    reset_settings()
    stub = StripeStub()
    httpserver.expect_request("/v1/payment_intents", method="POST").respond_with_handler(stub.handler)
    subs = {}
    for t in TOPICS:
        gcp.topic(t)
        subs[t] = gcp.pull_subscription(t)
    return Env(gcp, stub, subs)


class Interrupted:
    """A publisher whose process dies (or whose Pub/Sub is down) at the publish: ``error`` is raised, nothing sent.

    ``before`` runs first (a stalled publish); with ``error=None`` the messages are then really published.
    """

    def __init__(self, error: BaseException | None, before: Callable[[], None] | None = None) -> None:
        self.error, self.before, self.real = error, before, PubSubPublisher()

    def _gate(self) -> None:
        if self.before is not None:
            self.before()
        if self.error is not None:
            raise self.error

    def publish(self, event: Event, **kwargs: Any) -> str:
        self._gate()
        return self.real.publish(event, **kwargs)

    def publish_all(self, items: Sequence[tuple[Event, str, dt.datetime]], timeout_s: float = 30.0) -> list[str]:
        self._gate()
        return self.real.publish_all(items, timeout_s)

    def publish_raw(self, messages: Sequence[RawMessage], timeout_s: float = 30.0) -> list[str]:
        self._gate()
        return self.real.publish_raw(messages, timeout_s)


class DyingFirestore:
    """A Firestore client factory whose process dies on ``kill()``: every later use raises."""

    def __init__(self) -> None:
        self.dead = False

    def kill(self) -> None:
        self.dead = True

    def __call__(self) -> Any:
        from shared import clients

        if self.dead:
            raise OSError("process died")
        return clients.firestore()


def push(event: Event, key: str, occurred: dt.datetime = T0, message_id: str | None = None) -> Any:
    """The CloudEvent functions-framework hands to the function for one Pub/Sub push."""
    data, attrs = build_message(event, idempotency_key=key, occurred_at=occurred)
    msg = {"data": base64.b64encode(data).decode(), "attributes": attrs, "messageId": message_id or uuid.uuid4().hex}
    return types.SimpleNamespace(data={"message": msg, "subscription": "projects/p/subscriptions/s"})


# What the Cloud Scheduler job sends (infra/locals.tf): fixed attributes, no envelope.
SCHEDULER_TICK_ATTRIBUTES = {"event_type": "billing.tick", "producer": "cloud-scheduler", "schedule": "billing-tick"}


def tick_push(
    body: dict[str, Any] | None, publish_time: dt.datetime = T0, attributes: dict[str, str] | None = None
) -> Any:
    raw = json.dumps(body).encode() if body is not None else b""
    msg = {
        "data": base64.b64encode(raw).decode(),
        "attributes": SCHEDULER_TICK_ATTRIBUTES if attributes is None else attributes,
        "messageId": uuid.uuid4().hex,
        "publishTime": publish_time.isoformat().replace("+00:00", "Z"),
    }
    return types.SimpleNamespace(data={"message": msg, "subscription": "projects/p/subscriptions/ticks"})


def new_sub(
    sub_id: str,
    *,
    start: dt.datetime = T0,
    method: str = "pm_card_visa",
    trial_days: int = 0,
    amount: int = 1000,
    interval: str = "month",
) -> dict[str, Any]:
    body = CreateSubscription.model_validate(
        {
            "subscription_id": sub_id,
            "customer": Party(id=f"cus-{sub_id}", name="Ada Lovelace", country="DE").model_dump(mode="json"),
            "seller_entity": "acme-de",
            "plan": {
                "id": "pro",
                "currency": "EUR",
                "interval": interval,
                "lines": [{"description": "Pro plan", "unit_amount": {"amount": amount, "currency": "EUR"}}],
            },
            "anchor_zone": "Europe/Berlin",
            "start_at": start.isoformat(),
            "trial_days": trial_days,
            "payment_method": PaymentMethodRef(
                psp="stripe", customer_ref=f"cus_{sub_id}", method_ref=method
            ).model_dump(),
        }
    )
    status, out = SubscriptionService().create(body)
    assert status == 201
    return out


def finalized_for(due: RenewalDue, invoice_id: str, amount: int | None = None) -> InvoiceFinalized:
    """What the invoices function would publish for ``due`` (our tests never depend on it)."""
    total = amount if amount is not None else sum(line.unit_amount.amount * line.quantity for line in due.lines)
    money = Money(total, due.currency)
    return InvoiceFinalized(
        invoice_id=invoice_id,
        number=f"INV-{invoice_id}",
        subscription_id=due.subscription_id,
        customer_id=due.customer.id,
        request_id=due.request_id,
        period_start=due.period_start,
        period_end=due.period_end,
        subtotal=money,
        tax=Money(0, due.currency),
        total=money,
        amount_due=money,
        collection=due.collection,
        payment_method=due.payment_method,
        finalized_at=due.period_start or T0,
    )


def deliver_until_acked(fn: Callable[[], object], attempts: int = 200) -> object:
    """What Pub/Sub does: redeliver while the handler raises (a concurrent lease nacks)."""
    from shared.idempotency import IdempotencyAlreadyInProgressError

    last: Exception | None = None
    for _ in range(attempts):
        try:
            return fn()
        except IdempotencyAlreadyInProgressError as exc:
            last = exc
            threading.Event().wait(0.02)
    raise AssertionError(f"never acknowledged: {last}")
