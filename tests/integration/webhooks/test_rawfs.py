"""The raw-protobuf writes against the Firestore emulator: same documents, same errors, same usage counts."""

from __future__ import annotations

import datetime as dt

import pytest
from google.api_core.exceptions import AlreadyExists, NotFound

from shared import clients, usage
from shared.config import get_settings
from shared.webhooks import rawfs, store
from tests.conftest import Gcp

NOW = dt.datetime(2026, 1, 31, 9, 0, 0, 123456, tzinfo=dt.UTC)
RECORD = {
    "psp": "stripe",
    "psp_event_id": "evt_1",
    "received_at": NOW,
    "raw": '{"id":"evt_1"}',
    "raw_zlib": b"\x00\x01",
    "attempts": 1,
    "backfilled": True,
    "lease_until": None,
}


def test_raw_create_stores_what_the_library_stores(gcp: Gcp) -> None:
    db = clients.firestore()
    ref = rawfs.document(db, "raw", "a")
    assert type(ref).__name__ == "RawCreateRef"
    written = ref.create(RECORD, timeout=5)
    db.collection("raw").document("b").create(RECORD, timeout=5)
    a, b = db.collection("raw").document("a").get(), db.collection("raw").document("b").get()
    assert a.to_dict() == b.to_dict() == RECORD
    assert written.update_time == a.update_time  # the claim's version for later preconditions
    with pytest.raises(AlreadyExists):
        ref.create(RECORD, timeout=5)


def test_raw_batch_updates_and_fails_like_a_batch(gcp: Gcp) -> None:
    db = clients.firestore()
    db.collection("raw").document("a").create({"state": "received", "n": 1})
    batch = rawfs.RawBatch(db)
    batch.update(db.collection("raw").document("a"), {"state": "published", "message_id": "7"})
    batch.commit(timeout=5)
    assert db.collection("raw").document("a").get().to_dict() == {"state": "published", "message_id": "7", "n": 1}
    missing = rawfs.RawBatch(db)
    missing.update(db.collection("raw").document("nope"), {"state": "published"})
    with pytest.raises(NotFound):
        missing.commit(timeout=5)
    assert not db.collection("raw").document("nope").get().exists


def test_a_batch_the_raw_encoder_cannot_build_goes_through_the_library(gcp: Gcp) -> None:
    db = clients.firestore()
    db.collection("raw").document("a").create({"n": 1})
    batch = rawfs.RawBatch(db)
    batch.update(db.collection("raw").document("a"), {"n": 2.5})
    batch.commit(timeout=5)
    assert db.collection("raw").document("a").get().to_dict() == {"n": 2.5}


def test_metered_clients_count_the_raw_writes(gcp: Gcp) -> None:
    db = clients._firestore(get_settings().project_id, True)
    with usage.track() as u:
        claimed = store.claim(db, "metered", {"psp": "stripe"}, NOW)
        batch = rawfs.RawBatch(db)
        store.finish(claimed, store.PUBLISHED, writer=batch, message_id="1")
        batch.commit(timeout=5)
    assert claimed.outcome is store.Claim.OWNED
    assert (u.writes, u.reads) == (2, 0)
