"""On the emulators: the evidence packet from our records into Cloud Storage (once per content), shown by
the CLI; a loss posts its ledger entry once however often it is delivered, a later win reverses it."""

from __future__ import annotations

import datetime as dt
import io
import json
import zipfile

from shared import clients
from shared.disputes import evidence
from shared.disputes.service import DisputeDeps, DisputeService
from shared.domain.money import Money
from shared.events.payments import DisputeLost, DisputeOpened, DisputeWon
from shared.events.publisher import RecordingPublisher
from shared.ledger import store
from shared.ops import disputes as cli
from tests.conftest import Gcp
from tests.integration.disputes.support import NOW, PDF, disputed


def _objects(gcp: Gcp) -> list[str]:
    return [b.name for b in clients.storage().list_blobs(f"{gcp.project}-dispute-evidence")]


def test_packet_from_our_records_stored_once_and_shown(gcp: Gcp) -> None:
    svc, key = disputed()
    first = svc.build_evidence(key)
    again = svc.build_evidence(key)
    assert first["created"] is True
    assert again["created"] is False, "rebuilding from the same records writes nothing"
    assert (again["uri"], again["sha256"]) == (first["uri"], first["sha256"])
    assert _objects(gcp) == [first["uri"].split("/", 3)[3]]
    with zipfile.ZipFile(io.BytesIO(evidence.read(first["uri"]))) as z:
        assert z.read("invoices/INV-1.pdf") == PDF[1]
        assert z.read("invoices/INV-2.pdf") == PDF[2]
        facts = json.loads(z.read("evidence.json"))
    assert facts["dispute"]["key"] == key
    assert [s["invoice"] for s in facts["service"]] == ["INV-1", "INV-2"]
    assert [p["psp_payment_id"] for p in facts["payments"]] == ["pay_1", "pay_2"]
    assert facts["subscription"]["id"] == "sub_1"
    out = io.StringIO()
    assert cli.main(["show", key], out, svc) == 0
    shown = json.loads(out.getvalue())["evidence"]
    assert shown["uri"] == first["uri"]
    assert shown["summary"] == {
        "invoices": 2,
        "pdfs": 2,
        "payments": 2,
        "refunds": 0,
        "service_periods": 2,
        "customer": "c-1",
    }
    out = io.StringIO()
    assert cli.main(["evidence", "build", key], out, svc) == 0
    assert json.loads(out.getvalue())["uri"] == first["uri"]


def test_a_new_fact_makes_a_new_packet_the_document_points_at(gcp: Gcp) -> None:
    svc, key = disputed()
    first = svc.build_evidence(key)
    clients.firestore().collection("invoices").document("inv_2").collection("facts").document("r1").set(
        {
            "event_type": "payment.refunded",
            "event": {
                "psp": "stripe",
                "psp_payment_id": "pay_2",
                "refund_id": "re_1",
                "psp_created_at": NOW.isoformat(),
                "refunded": {"amount": 100, "currency": "EUR"},
            },
        }
    )
    second = svc.build_evidence(key)
    assert second["uri"] != first["uri"]
    assert second["summary"]["refunds"] == 1
    assert (svc.get(key) or {})["evidence"]["uri"] == second["uri"]
    assert len(_objects(gcp)) == 2


def _event(cls: type, at: dt.datetime) -> DisputeOpened:
    return cls(  # type: ignore[no-any-return]
        psp="adyen",
        psp_payment_id="psp_9",
        livemode=False,
        amount=Money(4200, "EUR"),
        psp_created_at=at,
        dispute_id="cb_9",
        normalised_reason="fraudulent",
    )


def test_loss_posts_the_chargeback_entry_once_and_a_later_win_reverses_it(gcp: Gcp) -> None:
    svc = DisputeService(DisputeDeps(publisher=RecordingPublisher(), clock=lambda: NOW))
    db = clients.firestore()
    svc.apply(_event(DisputeOpened, NOW), "o")
    assert list(store.entries(db)) == []
    lost = _event(DisputeLost, NOW + dt.timedelta(days=20))
    for event_id in ("l", "l", "l-redelivered-with-new-id"):
        svc.apply(lost, event_id)
    (entry,) = store.entries(db)
    assert entry.cause == "dispute:adyen:default:cb_9:lost"
    assert store.balances(db) == {("chargeback_losses", "EUR"): 4200, ("chargebacks", "EUR"): -4200}
    # The document write succeeded but the ledger write did not (a crash): the redelivery repairs it.
    db.collection(store.ENTRIES).document(entry.id).delete()
    svc.apply(lost, "l")
    assert [e.cause for e in store.entries(db)] == [entry.cause]
    svc.apply(_event(DisputeWon, NOW + dt.timedelta(days=40)), "w")  # an Adyen reversal after the debit
    assert store.balances(db) == {}
    assert len(list(store.entries(db))) == 2
