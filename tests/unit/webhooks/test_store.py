"""The archive fields of a record always fit a Firestore document, whatever the payload size."""

from __future__ import annotations

import os
import zlib

from shared.webhooks import store


def test_small_payloads_are_kept_as_text() -> None:
    assert store.archived_raw('{"a":1}') == {"raw": '{"a":1}'}


def test_large_compressible_payloads_are_compressed_losslessly() -> None:
    text = '{"description":"' + "abc" * 300_000 + '"}'
    fields = store.archived_raw(text)
    assert zlib.decompress(fields["raw_zlib"]).decode() == text
    assert len(fields["raw_zlib"]) < store.STORED_RAW_MAX


def test_incompressible_payloads_keep_a_marked_prefix() -> None:
    text = os.urandom(1_000_000).decode("latin-1")  # high entropy, as a scrubbed non-UTF-8 body could be
    fields = store.archived_raw(text)
    assert fields["raw_truncated"] is True
    assert text.startswith(fields["raw"])
    assert len(fields["raw"]) <= store.INLINE_RAW_MAX


def test_record_ids_separate_psps_and_accounts() -> None:
    ids = {store.record_id(p, a, "evt_1") for p in ("stripe", "adyen") for a in ("default", "eu")}
    assert len(ids) == 4
    assert all(len(i) == 64 for i in ids)
