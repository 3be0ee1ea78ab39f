"""Act 37 on the real local stack: a signed chargeback webhook to a won dispute through the functions,
the 72 h alert raised once by ticks on the test clock, the evidence packet stored once."""

from __future__ import annotations

from pathlib import Path

from infra.local.acts import DemoContext
from infra.local.acts import disputes as act
from infra.local.stack import Stack
from shared import clients
from shared.disputes import evidence
from shared.invoicing.repository import INVOICES


def test_disputes_act(stack_env: Stack, tmp_path: Path) -> None:
    ctx = DemoContext(stack=stack_env, output_dir=tmp_path)
    act.play(ctx)
    key = ctx.facts["disputes"]["key"]
    db = clients.firestore()
    doc = db.collection("disputes").document(key).get().to_dict() or {}
    assert (doc["status"], doc["outcome"], doc["reason"]) == ("won", "won", "subscription_canceled")
    assert doc["evidence"]["uri"] == ctx.facts["disputes"]["packet"]
    assert doc["evidence"]["summary"]["pdfs"] == 1
    inv = db.collection(INVOICES).document(doc["refs"]["invoice_id"]).get().to_dict() or {}
    assert (inv["disputed"], inv["disputes_closed"]) == (False, [doc["dispute_id"]])
    alerts = sorted(s.id for s in db.collection("dispute_alerts").stream() if s.id.startswith(key))
    assert alerts == [f"{key}~72h"], "three ticks, one alert"
    members = sorted(evidence.unpack(evidence.read(doc["evidence"]["uri"]))[1])
    assert members == ["invoices/" + inv["number"] + ".pdf"]
    assert list((tmp_path / "disputes").glob("evidence-*.zip"))
