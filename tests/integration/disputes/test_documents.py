"""Signed PSP dispute webhooks through the real webhooks service -> canonical events -> dispute documents;
deadline alerts exactly once across overlapping ticks (test clock); the invoice flag cleared by a win."""

from __future__ import annotations

import concurrent.futures
import datetime as dt
from typing import cast

import pytest

from shared import clients
from shared.disputes.service import DisputeDeps, DisputeService, dispute_key
from shared.events import Received
from shared.events.disputes import DisputeDeadlineApproaching
from shared.events.payments import DisputeEvent
from shared.events.publisher import RecordingPublisher
from tests.conftest import Gcp
from tests.fixtures import disputes as fx
from tests.integration.webhooks.support import Harness, harness

PSPS = sorted(fx.BUILDERS)


def _drain(h: Harness) -> list[Received[DisputeEvent]]:
    out = []
    for m in h.drain():
        assert isinstance(m.event, DisputeEvent)
        out.append(cast("Received[DisputeEvent]", m))
    return out


def _deliver(h: Harness, psp: str, stages: list[str], n: str) -> None:
    for i, stage in enumerate(stages):
        path, body, headers, ctype = fx.delivery(psp, stage, n, i)
        assert h.post(path, body, headers, content_type=ctype).status_code == 200, (psp, stage)


def _service(now: dt.datetime | None = None, publisher: RecordingPublisher | None = None) -> DisputeService:
    deps = DisputeDeps(publisher=publisher or RecordingPublisher(), clock=lambda: now or fx.T0)
    return DisputeService(deps)


@pytest.mark.parametrize("psp", PSPS)
def test_webhooks_make_one_document_per_dispute_in_any_order(
    gcp: Gcp, monkeypatch: pytest.MonkeyPatch, psp: str
) -> None:
    h = harness(gcp, monkeypatch)
    life = fx.LIFECYCLE[psp]
    _deliver(h, psp, life, "a")
    msgs = _drain(h)
    assert {m.envelope.event_type for m in msgs} == {f"dispute.{s}" for s in life}
    svc = _service()
    docs = [svc.apply(m.event, m.envelope.event_id) for m in reversed(msgs)]  # newest first: out of order
    docs += [svc.apply(m.event, m.envelope.event_id) for m in msgs]  # and every one redelivered
    ev = msgs[0].event
    doc = svc.get(dispute_key(psp, ev.account, ev.dispute_id))
    assert doc is not None
    assert (doc["status"], doc["outcome"], doc["open"]) == ("won", "won", False)
    assert doc["amount"] == fx.AMOUNT[psp]
    assert doc["reason"] == fx.REASON[psp]
    assert doc["due_by"] == fx.DUE[psp]
    assert len(doc["applied"]) == len(msgs)
    assert [d["status"] for d in docs] == ["won"] * len(docs), "a late notification never regressed it"
    assert len(list(clients.firestore().collection("disputes").stream())) == 1


def test_a_loss_records_the_chargeback(gcp: Gcp, monkeypatch: pytest.MonkeyPatch) -> None:
    h = harness(gcp, monkeypatch)
    _deliver(h, "stripe", ["opened", "lost"], "l")
    svc = _service()
    for m in _drain(h):
        doc = svc.apply(m.event, m.envelope.event_id)
    assert doc["outcome"] == "lost"
    assert doc["chargeback"]["amount"] == 4200
    assert svc.report() == [
        {
            "psp": "stripe",
            "reason": "fraudulent",
            "won": 0,
            "lost": 1,
            "open": 0,
            "lost_amount": {"EUR": 4200},
            "win_rate": 0.0,
        }
    ]


def test_deadline_alerts_once_per_threshold_across_overlapping_ticks(gcp: Gcp, monkeypatch: pytest.MonkeyPatch) -> None:
    h = harness(gcp, monkeypatch)
    _deliver(h, "checkout", ["opened"], "t")
    [m] = _drain(h)
    _service().apply(m.event, m.envelope.event_id)
    due = fx.CHECKOUT_DUE
    pub = RecordingPublisher()
    clock = [due - dt.timedelta(hours=80)]
    svc = DisputeService(DisputeDeps(publisher=pub, clock=lambda: clock[0]))

    def overlapping(now: dt.datetime, ticks: int = 6) -> None:
        clock[0] = now
        with concurrent.futures.ThreadPoolExecutor(ticks) as pool:
            list(pool.map(lambda _: svc.tick(now), range(ticks)))

    overlapping(due - dt.timedelta(hours=80))  # too early
    assert pub.sent == []
    overlapping(due - dt.timedelta(hours=71))
    overlapping(due - dt.timedelta(hours=50))
    overlapping(due - dt.timedelta(hours=23))
    overlapping(due - dt.timedelta(hours=1))
    overlapping(due + dt.timedelta(hours=1))  # past due: nothing more
    alerts = [s.event() for s in pub.on("dispute-events")]
    assert [(a.hours, a.evidence_due_by) for a in alerts if isinstance(a, DisputeDeadlineApproaching)] == [
        (72, due),
        (24, due),
    ]
    assert isinstance(alerts[0], DisputeDeadlineApproaching)
    assert alerts[0].dispute_key == dispute_key("checkout", "default", "dsp_t")


def test_a_won_dispute_clears_the_invoice_flag(gcp: Gcp, monkeypatch: pytest.MonkeyPatch) -> None:
    """The invoices use case applies dispute.opened then dispute.won from the webhook pipeline."""
    from shared.invoicing.service import InvoiceService
    from tests.fixtures.invoices import fact_msg

    h = harness(gcp, monkeypatch)
    inv_id = "INV-DP-x"
    clients.firestore().collection("invoices").document(inv_id).set(
        {"invoice_id": inv_id, "seq": 1, "status": "open", "number": "F-1", "currency": "EUR", "total": 4200}
    )
    _deliver(h, "adyen", ["opened", "won"], "x")
    payments = InvoiceService().payments
    flags = []
    for m in _drain(h):
        payments.on_payment_fact(fact_msg(m.event))
        flags.append((clients.firestore().collection("invoices").document(inv_id).get().to_dict() or {})["disputed"])
    assert flags == [True, False]
