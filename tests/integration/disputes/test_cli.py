"""The operator CLI on the emulator: list sorted by due time, show, accept behind --confirm, report."""

from __future__ import annotations

import datetime as dt
import io
import json

from shared.disputes.service import DisputeDeps, DisputeService
from shared.domain.money import Money
from shared.events.payments import DisputeNeedsResponse, DisputeOpened
from shared.events.publisher import RecordingPublisher
from shared.ops import disputes as cli
from tests.conftest import Gcp

T0 = dt.datetime(2026, 11, 20, tzinfo=dt.UTC)


def _opened(dispute_id: str, due_days: int, cls: type = DisputeOpened) -> DisputeOpened:
    return cls(  # type: ignore[no-any-return]
        psp="stripe",
        psp_payment_id=f"pi_{dispute_id}",
        livemode=False,
        amount=Money(1000, "EUR"),
        psp_created_at=T0,
        dispute_id=dispute_id,
        normalised_reason="fraudulent",
        evidence_due_by=T0 + dt.timedelta(days=due_days),
    )


def run(svc: DisputeService, *argv: str) -> tuple[int, str]:
    out = io.StringIO()
    return cli.main(list(argv), out, svc), out.getvalue()


def test_list_show_accept_report(gcp: Gcp) -> None:
    svc = DisputeService(DisputeDeps(publisher=RecordingPublisher(), clock=lambda: T0))
    svc.apply(_opened("late", 9), "e1")
    svc.apply(_opened("soon", 2), "e2")
    svc.apply(_opened("mid", 5, DisputeNeedsResponse), "e3")
    code, text = run(svc, "list")
    assert code == 0
    assert [line.split("\t")[0] for line in text.splitlines()] == [
        "stripe~default~soon",
        "stripe~default~mid",
        "stripe~default~late",
    ]
    code, text = run(svc, "show", "stripe~default~mid")
    assert (code, json.loads(text)["status"]) == (0, "needs_response")
    code, _ = run(svc, "accept", "stripe~default~soon")
    assert code == 2, "accept without --confirm changes nothing"
    assert (svc.get("stripe~default~soon") or {})["status"] == "opened"
    code, text = run(svc, "accept", "stripe~default~soon", "--confirm")
    assert (code, json.loads(text)["status"]) == (0, "accepted")
    doc = svc.get("stripe~default~soon") or {}
    assert (doc["outcome"], doc["chargeback"]["amount"]) == ("lost", 1000)
    code, text = run(svc, "report")
    assert json.loads(text) == [
        {
            "psp": "stripe",
            "reason": "fraudulent",
            "won": 0,
            "lost": 1,
            "open": 2,
            "lost_amount": {"EUR": 1000},
            "win_rate": 0.0,
        }
    ]
