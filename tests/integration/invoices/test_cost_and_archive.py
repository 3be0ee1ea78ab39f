"""What a delivery costs at the ports (counted by ``shared.usage``), and the PDF archive's guarantees."""

from __future__ import annotations

import io
import json
import threading
import zipfile
from typing import Any

import pytest

from shared import clients, usage
from shared.domain.money import Money
from shared.invoicing import pdf, storage
from shared.invoicing.repository import FACTS, INVOICES, document_view, invoice_id_for
from tests.fixtures.invoices import due_msg, fact_msg, paid, renewal
from tests.integration.invoices.conftest import Env


def _counts(u: usage.Usage) -> tuple[int, int, int, int]:
    return u.reads, u.writes, u.published, u.storage_class_a


def test_finalization_after_numbering_is_one_read_one_write_and_nothing_read_back(metered: Env) -> None:
    """Draft: one write. After the number: the facts query (one read), the archive object, the publish,
    and ONE write recording the PDF together with the ``finalized`` mark."""
    r = renewal("cost:1")
    iid = invoice_id_for(r.request_id)
    with usage.track() as u:
        draft = metered.svc.create_draft(r, iid)
    assert _counts(u) == (0, 1, 0, 0)
    numbered = metered.svc.number(iid, draft)
    with usage.track() as u:
        metered.svc.finalize(iid, numbered)
    assert _counts(u) == (1, 1, 1, 1)
    inv = metered.doc(INVOICES, iid)
    assert inv["published"] == ["finalized"]
    assert inv["pdf_sha256"] == pdf.sha256(storage.get(inv["pdf_uri"]))


def test_payment_of_a_numbered_invoice_is_one_read_and_one_write_without_a_fact_document(metered: Env) -> None:
    iid = metered.svc.on_renewal_due(due_msg(renewal("cost:2")))["invoice_id"]
    metered.events()
    msg = fact_msg(paid(iid, Money(3000, "EUR")))
    with usage.track() as u:
        assert (metered.svc.on_payment_fact(msg) or {})["status"] == "paid"
    assert _counts(u) == (1, 1, 1, 0)  # the paid write (the fact's id and the "paid" mark with it), the publish
    with usage.track() as u:
        metered.svc.on_payment_fact(msg)  # a redelivery: its id is on the invoice
    assert _counts(u) == (1, 0, 0, 0)
    inv = metered.doc(INVOICES, iid)
    assert inv["facts_applied"] == [msg.envelope.event_id]
    assert list(clients.firestore().collection(INVOICES).document(iid).collection(FACTS).stream()) == []
    assert [a["event_type"] for a, _ in metered.events()] == ["invoice.paid"]


def test_archived_pdf_is_the_recorded_one_and_re_renders_identically(env: Env) -> None:
    """The legal archive: the bytes in the write-once archive object are the ones whose sha256 was recorded
    at finalization, the archive's manifest says so too, and rendering the stored document again gives
    the very same bytes (what a customer download renders on demand)."""
    iid = env.svc.on_renewal_due(due_msg(renewal("arch:1", amounts=(1999, 500))))["invoice_id"]
    inv = env.doc(INVOICES, iid)
    archive_uri, _, member = inv["pdf_uri"].partition(storage.MEMBER_SEP)
    assert member == storage.object_name(inv["series_id"], inv["number"])
    data = storage.get(inv["pdf_uri"])
    assert pdf.sha256(data) == inv["pdf_sha256"]
    assert len(data) == inv["pdf_bytes"]
    with zipfile.ZipFile(io.BytesIO(storage.get(archive_uri))) as z:
        manifest = json.loads(z.read(storage.MANIFEST))
    assert manifest[member]["sha256"] == inv["pdf_sha256"]
    assert pdf.render(document_view(inv)) == data


def test_concurrent_documents_share_one_archive_object(env: Env) -> None:
    writer = storage.ArchiveWriter(quiet_s=30.0, max_wait_s=60.0, max_members=5)  # sealed by its 5th member
    docs = {f"invoices/s/INV-{i}.pdf": f"pdf {i}".encode() for i in range(5)}
    out: dict[str, Any] = {}
    threads = [
        threading.Thread(target=lambda n=n, d=d: out.update({n: writer.store("s", n, d)})) for n, d in docs.items()
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert writer.objects_written == 1
    assert len({s.uri.partition(storage.MEMBER_SEP)[0] for s in out.values()}) == 1
    assert {n: storage.get(s.uri) for n, s in out.items()} == docs
    assert all(s.sha256 == pdf.sha256(docs[n]) for n, s in out.items())


def test_a_failed_archive_write_fails_every_member(env: Env, monkeypatch: pytest.MonkeyPatch) -> None:
    def down(name: str, data: bytes, content_type: str = "application/pdf", **kw: Any) -> Any:
        raise RuntimeError("storage unavailable")

    monkeypatch.setattr(storage, "put_once", down)
    writer = storage.ArchiveWriter(quiet_s=30.0, max_wait_s=60.0, max_members=3)
    errors: list[BaseException] = []

    def store(i: int) -> None:
        try:
            writer.store("s", f"invoices/s/{i}.pdf", b"x")
        except RuntimeError as exc:
            errors.append(exc)

    threads = [threading.Thread(target=store, args=(i,)) for i in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert len(errors) == 3  # nobody is told "archived": each delivery fails and is redelivered
    assert writer.objects_written == 0


def test_a_renewal_due_creates_its_invoice_numbered_and_numbering_reads_nothing(metered: Env) -> None:
    """One instance at a trickle: the invoice is created WITH its number (no draft write first), the series
    counter is written once per invoice (the lease is taken and released by that same commit, on the version
    the previous commit left: no claim, no poll, no queue query), then the PDF and ``finalized`` mark: one
    read (the facts query) and three writes per invoice, allocator thread included."""
    metered.svc.on_renewal_due(due_msg(renewal("trickle:0")))  # creates the series document
    usage._background.drain()
    for i in range(1, 4):
        with usage.track() as u:
            out = metered.svc.on_renewal_due(due_msg(renewal(f"trickle:{i}")))
        bg = usage._background.drain()
        assert (u.reads + bg["reads"], u.writes + bg["writes"], u.published) == (1, 3, 1)
        assert out["number"] == f"INV-2026-{i + 1:06d}"
    inv = metered.doc(INVOICES, invoice_id_for(renewal("trickle:3").request_id))
    assert (inv["seq"], inv["status"], inv["published"]) == (4, "open", ["finalized"])
    assert "number_queue" not in inv
