"""The archive's Cloud Storage operations: one Class A write per archive object and no existence check
(its name carries the digest of its bytes), while a non-archive name is still checked first."""

from __future__ import annotations

from shared import usage
from shared.invoicing import pdf, storage
from shared.invoicing.repository import INVOICES, invoice_id_for
from tests.fixtures.invoices import renewal
from tests.integration.invoices.conftest import Env


def test_archiving_a_finalization_is_one_class_a_write_and_no_class_b(metered: Env) -> None:
    r = renewal("ops:1")
    iid = invoice_id_for(r.request_id)
    numbered = metered.svc.number(iid, metered.svc.create_draft(r, iid))
    with usage.track() as u:
        metered.svc.finalize(iid, numbered)
    assert (u.storage_class_a, u.storage_class_b) == (1, 0)
    inv = metered.doc(INVOICES, iid)
    assert pdf.sha256(storage.get(inv["pdf_uri"])) == inv["pdf_sha256"]


def test_storing_the_same_archive_again_keeps_one_object_with_the_same_bytes(metered: Env) -> None:
    members = {"invoices/s/INV-1.pdf": b"pdf 1", "invoices/s/INV-2.pdf": b"pdf 2"}
    first = storage.store_archive("s", members)
    again = storage.store_archive("s", members)  # a redelivered group: same bytes, same name
    assert {n: s.uri for n, s in first.items()} == {n: s.uri for n, s in again.items()}
    assert {n: storage.get(s.uri) for n, s in again.items()} == members
    assert all(s.sha256 == pdf.sha256(members[n]) for n, s in again.items())


def test_a_name_without_a_digest_is_checked_before_writing(metered: Env) -> None:
    storage.put_once("invoices/s/plain.pdf", b"first")
    with usage.track() as u:
        kept = storage.put_once("invoices/s/plain.pdf", b"second")
    assert kept.created is False
    assert u.storage_class_b >= 1  # the existence check (then the stored bytes are read back)
    assert storage.get(kept.uri) == b"first"
