"""Act 37: a chargeback opened by a signed webhook, its 72 h alert by the test clock, the evidence packet,
and a won dispute that clears the invoice's flag.

A paid invoice of its own (a renewal-due request for a subscription customer, paid by an Adyen capture
fact), then signed Adyen dispute notifications through the running webhooks function:
``NOTIFICATION_OF_CHARGEBACK`` (dispute.opened, defence period ending 10 days later) and, after the
evidence, ``CHARGEBACK_REVERSED`` (dispute.won). The disputes function keeps the dispute document; the
invoices function flags and unflags the invoice; the deadline tick (``dispute-ticks`` with the test
clock's "now") raises ``dispute.deadline_approaching`` once however often it runs. The evidence packet is
built as the operator CLI builds it and copied to ``demo-output/disputes/``.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

from google.api_core.exceptions import AlreadyExists

from infra.local.acts import DemoContext

ORDER = 37
TITLE = "Disputes: opened by webhook, the 72 h alert, the evidence packet, a win clears the invoice flag"

T0 = dt.datetime(2026, 7, 1, 9, 0, tzinfo=dt.UTC)
ALERTS = "demo-dispute-alerts"


def adyen_notification(
    code: str, dispute: str, payment: str, *, invoice_id: str, due: dt.datetime, at: dt.datetime
) -> bytes:
    """A signed Adyen dispute notification (the demo's HMAC key of act 10) for ``payment``."""
    from infra.local.acts.webhooks import ENV
    from shared.psp import signing

    item = {
        "additionalData": {
            "defensePeriodEndsAt": due.isoformat(),
            "chargebackReasonCode": " 13.2",  # Visa: cancelled recurring transaction
            "disputeStatus": "Won" if code == "CHARGEBACK_REVERSED" else "Undefended",
            "metadata.invoice_id": invoice_id,
            "metadata.customer_id": "cus_dispute_demo",
            "metadata.subscription_id": "sub_dispute_demo",
        },
        "amount": {"currency": "EUR", "value": 2975},
        "eventCode": code,
        "eventDate": at.isoformat(),
        "merchantAccountCode": "DemoECOM",
        "merchantReference": f"{invoice_id}:1",
        "originalReference": payment,
        "pspReference": dispute,
        "reason": "Cancelled Recurring",
        "success": "true",
    }
    body = signing.adyen_sign(
        {"live": "false", "notificationItems": [{"NotificationRequestItem": item}]}, ENV["ADYEN_HMAC_KEYS"]
    )
    return json.dumps(body, separators=(",", ":")).encode()


def deliver(webhooks_url: str, body: bytes) -> int:
    from infra.local.acts.webhooks import ENV
    from shared.psp import signing

    headers = {"Content-Type": "application/json", "Authorization": signing.basic_auth(ENV["ADYEN_BASIC_AUTH"])}
    req = urllib.request.Request(webhooks_url + "/adyen", body, headers, method="POST")  # noqa: S310
    try:
        with urllib.request.urlopen(req, timeout=15) as r:  # noqa: S310 (loopback)
            return int(r.status)
    except urllib.error.HTTPError as exc:
        return int(exc.code)


def tick(now: dt.datetime) -> None:
    """What Cloud Scheduler publishes on ``dispute-ticks``, with the test clock's explicit "now"."""
    from shared import clients
    from shared.config import get_settings

    body = json.dumps({"now": now.isoformat().replace("+00:00", "Z")}).encode()
    topic = get_settings().topic_path("dispute-ticks")
    clients.publisher().publish(topic, body, event_type="disputes.tick").result(timeout=30)


def wait(read: Any, ok: Any, timeout_s: float = 30.0) -> Any:
    deadline = time.monotonic() + timeout_s
    while True:
        value = read()
        if ok(value):
            return value
        if time.monotonic() > deadline:
            raise TimeoutError(f"not as expected within {timeout_s}s: {value}")
        time.sleep(0.1)


def _paid_invoice(tag: str) -> dict[str, Any]:
    from infra.local.acts.invoices import publish_requests, wait_doc, wait_invoices
    from shared.domain.money import Money
    from shared.events import publish
    from shared.events.billing import LineIn, Party, RenewalDue
    from shared.events.payments import OurRefs, PaymentSucceeded
    from shared.invoicing.repository import INVOICES

    req = RenewalDue(
        request_id=f"{tag}:dispute",
        seller_entity="acme-de",
        customer=Party(id="cus_dispute_demo", name="Dana Demo", country="DE", email="dana@example.com"),
        currency="EUR",
        collection="send_invoice",
        lines=(LineIn(description="Pro plan, July 2026", quantity=1, unit_amount=Money(2500, "EUR"), kind="plan"),),
        subscription_id="sub_dispute_demo",
        period_start=T0,
        period_end=T0 + dt.timedelta(days=31),
    )
    publish_requests([req], copies=1)
    (inv,) = wait_invoices([req])
    pay = PaymentSucceeded(
        psp="adyen",
        psp_payment_id=f"PAY{tag}",
        livemode=False,
        amount=Money(int(inv["total"]), inv["currency"]),
        refs=OurRefs(invoice_id=inv["invoice_id"], customer_id="cus_dispute_demo", subscription_id="sub_dispute_demo"),
        psp_created_at=T0 + dt.timedelta(hours=1),
    )
    publish(pay, idempotency_key=pay.fact_key(), occurred_at=pay.psp_created_at)
    return wait_doc(INVOICES, inv["invoice_id"], lambda d: d.get("status") == "paid")


def _doc(coll: str, doc_id: str) -> dict[str, Any]:
    from shared import clients

    return clients.firestore().collection(coll).document(doc_id).get().to_dict() or {}


def _alerts(ctx: DemoContext) -> Any:
    """A pull subscription on ``dispute-events``: what the operators' alerting would receive."""
    from google.cloud.pubsub_v1 import SubscriberClient

    sub = SubscriberClient()
    path = sub.subscription_path(ctx.stack.project, ALERTS)
    try:
        sub.create_subscription(name=path, topic=f"projects/{ctx.stack.project}/topics/dispute-events")
    except AlreadyExists:
        pass
    return sub, path


def _open(ctx: DemoContext, tag: str, inv: dict[str, Any], due: dt.datetime, at: dt.datetime) -> str:
    from shared.disputes.service import dispute_key
    from shared.domain.money import Money
    from shared.invoicing.repository import INVOICES

    key = dispute_key("adyen", "default", f"DSP{tag}")
    body = adyen_notification(
        "NOTIFICATION_OF_CHARGEBACK", f"DSP{tag}", f"PAY{tag}", invoice_id=inv["invoice_id"], due=due, at=at
    )
    status = deliver(ctx.stack.function_urls["webhooks"], body)
    doc = wait(lambda: _doc("disputes", key), bool)
    flagged = wait(lambda: _doc(INVOICES, inv["invoice_id"]), lambda d: d.get("disputed"))
    ctx.say(f"  NOTIFICATION_OF_CHARGEBACK (signed) -> HTTP {status}; dispute {key}")
    ctx.say(
        f"      status {doc['status']}, reason {doc['reason']} (scheme code {doc['reason_code']}), "
        f"{Money(int(doc['amount']), doc['currency'])}, evidence due {doc['due_by'].isoformat()}"
    )
    ctx.say(f"      invoice {flagged['number']} flagged disputed={flagged['disputed']}")
    return key


def _ticks(ctx: DemoContext, due: dt.datetime) -> None:
    sub, alerts = _alerts(ctx)
    steps = [
        ("80 h before the due time: nothing yet", due - dt.timedelta(hours=80)),
        ("71 h before: the 72 h alert", due - dt.timedelta(hours=71)),
        ("70 h before: a second tick raises nothing new", due - dt.timedelta(hours=70)),
    ]
    for label, now in steps:
        tick(now)
        time.sleep(1.0)  # let the tick's push land before the next one (the clock moves forward)
        ctx.say(f"  dispute tick @ {now.isoformat()} ({label})")
    got = wait(lambda: sub.pull(subscription=alerts, max_messages=50, timeout=5).received_messages, bool)
    sub.acknowledge(subscription=alerts, ack_ids=[m.ack_id for m in got])
    seen = {m.message.attributes["event_id"]: json.loads(m.message.data) for m in got}
    for b in seen.values():
        ctx.say(f"      dispute.deadline_approaching: {b['hours']} h before {b['evidence_due_by']} (once)")


def _packet(ctx: DemoContext, key: str) -> str:
    from shared.disputes import evidence
    from shared.disputes.service import DisputeService

    svc = DisputeService()
    logging.disable(logging.WARNING)  # the in-process service's log lines; what they say is printed below
    try:
        packet = svc.build_evidence(key)
        again = svc.build_evidence(key)
    finally:
        logging.disable(logging.NOTSET)
    out = Path(ctx.output_dir) / "disputes"
    out.mkdir(parents=True, exist_ok=True)
    target = out / packet["uri"].rsplit("/", 1)[1]
    target.write_bytes(evidence.read(packet["uri"]))
    ctx.say(f"  evidence packet {packet['uri']}")
    ctx.say(f"      members: {', '.join(packet['members'])} (+ manifest.json of their sha256)")
    ctx.say(f"      summary: {packet['summary']}")
    same = again["uri"] == packet["uri"] and not again["created"]
    ctx.say(f"      rebuilt from the same records: {'the same object, nothing written' if same else 'a NEW object'}")
    ctx.say(f"      copied to {target.relative_to(Path(ctx.output_dir).parent)}")
    ctx.say(f"      to send it: python -m shared.ops.disputes submit {key} [--confirm]")
    return str(packet["uri"])


def play(ctx: DemoContext) -> None:
    from shared.domain.money import Money
    from shared.invoicing.repository import INVOICES

    tag = f"dsp{int(time.time())}"
    inv = _paid_invoice(tag)
    ctx.say(f"  invoice {inv['number']} paid ({Money(int(inv['total']), inv['currency'])}) by Adyen payment PAY{tag}")
    opened_at = T0 + dt.timedelta(days=20)
    due = opened_at + dt.timedelta(days=10)
    key = _open(ctx, tag, inv, due, opened_at)
    _ticks(ctx, due)
    uri = _packet(ctx, key)
    body = adyen_notification(
        "CHARGEBACK_REVERSED",
        f"DSP{tag}",
        f"PAY{tag}",
        invoice_id=inv["invoice_id"],
        due=due,
        at=opened_at + dt.timedelta(days=30),
    )
    status = deliver(ctx.stack.function_urls["webhooks"], body)
    doc = wait(lambda: _doc("disputes", key), lambda d: d.get("status") == "won")
    cleared = wait(lambda: _doc(INVOICES, inv["invoice_id"]), lambda d: d.get("disputed") is False)
    ctx.say(f"  CHARGEBACK_REVERSED (signed) -> HTTP {status}; dispute {doc['status']}, outcome {doc['outcome']}")
    ctx.say(f"      invoice {cleared['number']} disputed={cleared['disputed']} (the win cleared the flag)")
    ctx.say("  declines: a hard decline that stops retries and a soft one that recovers are shown by act 35")
    ctx.facts["disputes"] = {"key": key, "packet": uri}
