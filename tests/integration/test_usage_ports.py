"""Usage counted at the clients on the real emulators: what ``shared.clients`` builds with metering on/off."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from shared import clients, usage
from shared.config import reset_settings
from tests.conftest import Gcp


@pytest.fixture
def metered(gcp: Gcp, monkeypatch: pytest.MonkeyPatch) -> Iterator[Gcp]:
    monkeypatch.setenv("USAGE_METERING", "1")
    reset_settings()
    yield gcp
    reset_settings()
    usage._background.drain()  # e.g. the bucket creation, outside any tracked block


def test_firestore_reads_and_writes_are_counted_whatever_the_code_path(metered: Gcp) -> None:
    from google.api_core.exceptions import AlreadyExists, Conflict
    from google.cloud import firestore
    from google.cloud.firestore_v1.base_query import FieldFilter

    db = clients.firestore()
    col = db.collection("metered")
    with usage.track() as u:
        batch = db.batch()
        for i in range(3):
            batch.set(col.document(f"d{i}"), {"x": i})
        batch.commit()
        col.document("d0").update({"x": firestore.Increment(1)})  # a transform is not another write
        with pytest.raises((AlreadyExists, Conflict)):
            col.document("d0").create({"x": 0})  # refused: not billed as a write
        assert (u.reads, u.writes) == (0, 4)
        col.document("d1").get()
        col.document("missing").get()
        assert u.reads == 2
        list(col.where(filter=FieldFilter("x", ">=", 0)).stream())  # 3 documents
        list(col.where(filter=FieldFilter("x", ">=", 99)).stream())  # none: still one read
        assert u.reads == 6

        @firestore.transactional
        def bump(tx: firestore.Transaction) -> None:
            snap = col.document("d2").get(transaction=tx)
            tx.update(col.document("d2"), {"x": (snap.to_dict() or {})["x"] + 1})

        bump(db.transaction())
        assert (u.reads, u.writes) == (7, 5)


def test_publishes_are_counted_with_their_bytes_by_topic(metered: Gcp) -> None:
    metered.topic("metered-topic")
    from shared.config import get_settings

    with usage.track() as u:
        clients.publisher().publish(get_settings().topic_path("metered-topic"), b"x" * 10, event_type="t.e").result()
    assert (u.published, u.published_bytes, u.topics) == (1, 10 + len("event_type") + len("t.e"), {"metered-topic": 1})


def test_storage_object_writes_are_class_a_and_reads_class_b(metered: Gcp) -> None:
    client = clients.storage()
    bucket = client.create_bucket(f"{metered.project}-metered")
    with usage.track() as u:
        blob = bucket.blob("inv.pdf")
        blob.upload_from_string(b"%PDF-1.4", content_type="application/pdf", if_generation_match=0)
        assert blob.download_as_bytes() == b"%PDF-1.4"
    assert (u.storage_class_a, u.storage_class_b) == (1, 1)


def test_without_metering_the_clients_are_the_plain_library_clients(gcp: Gcp) -> None:
    from google.cloud.firestore import Client
    from google.cloud.pubsub_v1 import PublisherClient

    assert type(clients.firestore()) is Client
    assert type(clients.publisher()) is PublisherClient
    with usage.track() as u:
        clients.firestore().collection("plain").document("d").set({"x": 1})
    assert u.writes == 0
