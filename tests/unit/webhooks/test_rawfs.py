"""The raw-protobuf writes of the webhook path are byte for byte the library's own writes (no I/O).

The library builds the reference ``Write`` messages (``pbs_for_create`` / ``pbs_for_update``); the raw
encoder must produce equal messages for every value it handles, and hand anything else back.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from typing import Any

import pytest
from google.cloud import firestore
from google.cloud.firestore_v1 import _helpers
from hypothesis import given
from hypothesis import strategies as st

from shared.webhooks import rawfs

PATH = "webhook_events/abc"

values = st.one_of(
    st.text(),
    st.booleans(),
    st.integers(min_value=-(2**63), max_value=2**63 - 1),
    st.none(),
    st.binary(),
    st.datetimes(min_value=dt.datetime(1970, 1, 2), max_value=dt.datetime(9998, 12, 31), timezones=st.just(dt.UTC)),
    st.datetimes(min_value=dt.datetime(1970, 1, 2), max_value=dt.datetime(9998, 12, 31)),  # naive: read as UTC
    # Before the epoch (negative seconds, positive nanos) and other offsets: the in-place timestamp arithmetic.
    st.datetimes(min_value=dt.datetime(1, 1, 2), max_value=dt.datetime(1970, 1, 2), timezones=st.just(dt.UTC)),
    st.datetimes(
        min_value=dt.datetime(1900, 1, 2),
        max_value=dt.datetime(9998, 12, 31),
        timezones=st.builds(
            dt.timezone, st.timedeltas(min_value=-dt.timedelta(hours=23), max_value=dt.timedelta(hours=23))
        ),
    ),
)
names = st.from_regex(r"\A[A-Za-z_][A-Za-z0-9_]{0,20}\Z")
documents = st.dictionaries(names, values, min_size=1, max_size=12)


@pytest.fixture(scope="module")
def client() -> Iterator[Any]:
    mp = pytest.MonkeyPatch()
    mp.setenv("FIRESTORE_EMULATOR_HOST", "127.0.0.1:9")  # never dialled: building messages needs no server
    yield firestore.Client(project="demo-unit")
    mp.undo()


def _channel(client: Any) -> Any:
    ch = rawfs._channel(client)
    assert ch is not None, "the raw path is unavailable: the library's private attributes changed"
    return ch


@given(doc=documents)
def test_create_is_the_librarys_create(client: Any, doc: dict[str, Any]) -> None:
    ch = _channel(client)
    [expected] = _helpers.pbs_for_create(f"{ch.prefix}{PATH}", doc)
    assert rawfs.create_write(ch, PATH, doc) == type(expected).pb(expected)


@given(doc=documents)
def test_the_create_request_is_the_librarys_commit_of_its_create(client: Any, doc: dict[str, Any]) -> None:
    """Built in place (no copies): the same request the library would send for ``create``."""
    ch = _channel(client)
    [expected] = _helpers.pbs_for_create(f"{ch.prefix}{PATH}", doc)
    request = rawfs._pb().CommitRequest(database=client._database_string, writes=[type(expected).pb(expected)])
    assert rawfs.create_request(ch, PATH, doc) == request


@given(doc=documents)
def test_update_is_the_librarys_update_without_option(client: Any, doc: dict[str, Any]) -> None:
    ch = _channel(client)
    [expected] = _helpers.pbs_for_update(f"{ch.prefix}{PATH}", doc, None)
    assert rawfs.update_write(ch, PATH, doc) == type(expected).pb(expected)


@given(docs=st.lists(documents, min_size=1, max_size=3))
def test_a_batch_request_is_the_librarys_updates_in_order(client: Any, docs: list[dict[str, Any]]) -> None:
    """The batch adds each write to its request in place: the same writes, in order, as the library's."""
    ch = _channel(client)
    batch = rawfs.RawBatch(client)
    expected = []
    for i, doc in enumerate(docs):
        ref = client.collection("webhook_events").document(f"d{i}")
        batch.update(ref, doc)
        [write] = _helpers.pbs_for_update(f"{ch.prefix}{ref.path}", doc, None)
        expected.append(type(write).pb(write))
    assert batch._request == rawfs._pb().CommitRequest(database=client._database_string, writes=expected)


def test_the_webhook_record_takes_the_raw_path(client: Any) -> None:
    now = dt.datetime.now(dt.UTC)
    record = {
        "psp": "stripe",
        "received_at": now,
        "raw_zlib": b"\x78\x9c",
        "state": "received",
        "lease_until": now,
        "attempts": 1,
        "backfilled": True,
    }
    assert rawfs.create_write(_channel(client), PATH, record).current_document.exists is False


@pytest.mark.parametrize(
    "doc",
    [
        {"amount": 1.5},
        {"nested": {"a": 1}},
        {"items": [1]},
        {"a.b": "dotted"},
        {"n": firestore.Increment(1)},
        {"gone": firestore.DELETE_FIELD},
        {"t": firestore.SERVER_TIMESTAMP},
        {},
    ],
)
def test_what_the_raw_encoder_does_not_handle_is_left_to_the_library(client: Any, doc: dict[str, Any]) -> None:
    ch = _channel(client)
    for build in (rawfs.create_write, rawfs.create_request, rawfs.update_write):
        with pytest.raises(rawfs.Unsupported):
            build(ch, PATH, doc)


def test_requests_carry_the_librarys_metadata(client: Any) -> None:
    ch = _channel(client)
    assert set(client._rpc_metadata) <= set(ch.metadata)
    routing = dict(ch.metadata)["x-goog-request-params"]
    assert routing.startswith("database=projects/demo-unit/databases/")


def test_a_client_that_is_not_the_librarys_gets_the_plain_reference() -> None:
    class Double:
        def collection(self, name: str) -> Any:
            return self

        def document(self, doc_id: str) -> str:
            return f"ref:{doc_id}"

    assert rawfs.document(Double(), "c", "d") == "ref:d"
