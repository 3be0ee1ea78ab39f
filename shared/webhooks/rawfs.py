"""The webhook's two Firestore writes (the record's ``create()``, the batched final state) as raw protobuf.

Why: the client library builds every write through proto-plus wrappers, which cost more CPU than the
RPC itself for a record of a dozen fields (measured on the webhook path: about 0.55 ms per create, of
which 0.3 ms marshalling; the same write built from the generated protobuf classes costs 0.23 ms).
CPU per delivery is what bounds the webhook function's throughput on an instance, so the hot path
builds the same ``Write`` messages itself and sends them over the library's own channel:

* same channel, so the emulator settings, credentials and the usage-metering interceptor apply;
* same request metadata as the library (resource prefix, routing header, the emulator's token);
* same messages: ``tests/unit/webhooks/test_rawfs.py`` checks each against the library's own
  ``pbs_for_create`` / ``pbs_for_update`` output, and the integration tests read the documents back;
* same errors: a gRPC error becomes the ``google.api_core`` exception the library would raise
  (``AlreadyExists`` for a create that finds the document, ``ServiceUnavailable``, ...).

Anything the fast encoder does not handle (a sentinel, a nested map, a preconditioned update, a field
name needing quoting) goes through the library unchanged. This depends on two private attributes of
``google.cloud.firestore.Client`` (``_firestore_api._transport``, ``_rpc_metadata``); without them
(a library change) every write takes the library path, and the unit test above fails loudly.
"""

from __future__ import annotations

import datetime as dt
import functools
import re
from collections.abc import Mapping
from typing import Any

_SIMPLE_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")  # a field name that is its own field path
_NAMES_OK: set[str] = set()  # field names already matched by _SIMPLE_NAME (the same dozen on every write)
_EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)
_RETRYABLE = ("UNAVAILABLE", "RESOURCE_EXHAUSTED")  # the library's commit retries these too


class Unsupported(Exception):
    """A value or option the raw encoder leaves to the library."""


@functools.cache
def _pb() -> Any:
    """The generated protobuf classes (behind the proto-plus wrappers), loaded once."""
    from google.cloud.firestore_v1.types import common, document, firestore, write

    class Pb:
        CommitRequest = firestore.CommitRequest.pb()
        CommitResponse = firestore.CommitResponse.pb()
        Write = write.Write.pb()
        Document = document.Document.pb()
        DocumentMask = common.DocumentMask.pb()
        Precondition = common.Precondition.pb()

    return Pb


class _Channel:
    """The raw Commit call of one client: the library's channel, its metadata, our serialisers."""

    def __init__(self, client: Any) -> None:
        from google.api_core import gapic_v1

        pb = _pb()
        channel = client._firestore_api._transport.grpc_channel
        self.database = client._database_string
        self.prefix = f"{self.database}/documents/"
        self.commit = channel.unary_unary(
            "/google.firestore.v1.Firestore/Commit",
            request_serializer=pb.CommitRequest.SerializeToString,
            response_deserializer=pb.CommitResponse.FromString,
        )
        routing = gapic_v1.routing_header.to_grpc_metadata((("database", self.database),))  # type: ignore[no-untyped-call]
        self.metadata = (*client._rpc_metadata, routing)


@functools.lru_cache(maxsize=16)
def _channel(client: Any) -> _Channel | None:
    from google.cloud.firestore_v1.client import Client

    if not isinstance(client, Client):  # a test double: the library's own calls on it
        return None
    try:
        return _Channel(client)
    except AttributeError:  # a changed library: the library path
        return None


def _encode(value: Any, out: Any) -> None:
    """Set the protobuf ``Value`` ``out`` as the library's ``encode_value`` would."""
    if isinstance(value, str):
        out.string_value = value
    elif isinstance(value, bool):  # before int: bool is an int
        out.boolean_value = value
    elif isinstance(value, int):
        out.integer_value = value
    elif type(value) is dt.datetime:  # a DatetimeWithNanoseconds (a subclass) keeps its nanoseconds: library
        if value.tzinfo is None or value.tzinfo is dt.UTC:  # naive is read as UTC, as the library does
            # Set in place, exact integer arithmetic: no Timestamp message built and copied per field.
            delta = value.replace(tzinfo=dt.UTC) - _EPOCH
            stamp = out.timestamp_value
            stamp.seconds = delta.days * 86400 + delta.seconds
            stamp.nanos = delta.microseconds * 1000
        else:
            out.timestamp_value.CopyFrom(_timestamp(value))
    elif value is None:
        out.null_value = 0
    elif type(value) is bytes:
        out.bytes_value = value
    else:
        raise Unsupported(type(value).__name__)


def _timestamp(value: dt.datetime) -> Any:
    from google.cloud._helpers import _datetime_to_pb_timestamp  # the library's own conversion

    return _datetime_to_pb_timestamp(value)  # type: ignore[no-untyped-call]


def _fill(doc: Any, ch: _Channel, path: str, data: Mapping[str, Any]) -> None:
    """Set the ``Document`` message ``doc`` (name and fields) in place."""
    doc.name = ch.prefix + path
    fields = doc.fields
    for name, value in data.items():
        if name not in _NAMES_OK:
            if not _SIMPLE_NAME.match(name):
                raise Unsupported(name)
            if len(_NAMES_OK) < 256:  # a record's dozen names; bounded whatever callers send
                _NAMES_OK.add(name)
        _encode(value, fields[name])


def create_request(ch: _Channel, path: str, data: Mapping[str, Any]) -> Any:
    """The ``CommitRequest`` of ``DocumentReference.create``: the whole document, only if it does not exist.

    Built in place: a ``Write`` built apart is copied whole into its request, and its ``Document`` into it
    before that (two copies of the archived payload per delivery; 40% of the encoding's CPU, measured)."""
    pb = _pb()
    if not data:
        raise Unsupported("empty document")
    request = pb.CommitRequest(database=ch.database)
    write = request.writes.add()
    _fill(write.update, ch, path, data)
    write.current_document.exists = False
    return request


def create_write(ch: _Channel, path: str, data: Mapping[str, Any]) -> Any:
    """``Write`` of ``DocumentReference.create`` (the one write of :func:`create_request`)."""
    return create_request(ch, path, data).writes[0]


def update_write(ch: _Channel, path: str, data: Mapping[str, Any]) -> Any:
    """``Write`` of ``DocumentReference.update`` without a write option: these top-level fields, if it exists."""
    write = _pb().Write()
    _fill_update(write, ch, path, data)
    return write


def _fill_update(write: Any, ch: _Channel, path: str, data: Mapping[str, Any]) -> None:
    """Set the ``Write`` message ``write`` to :func:`update_write`'s, in place (a batch's own request)."""
    if not data:
        raise Unsupported("empty update")
    _fill(write.update, ch, path, data)
    write.update_mask.field_paths.extend(sorted(data))  # sorted, as the library sends them
    write.current_document.exists = True


def send(ch: _Channel, request: Any, timeout: float | None) -> Any:
    """Send a built ``CommitRequest``; raises the ``google.api_core`` exception the library would.

    One quick retry of UNAVAILABLE / RESOURCE_EXHAUSTED (a gRPC connection reset after an idle spell is
    common on serverless): the library retries these too. A retried create that had in fact landed then
    finds its own record, which the claim answers as BUSY: the PSP retries, nothing is lost.
    """
    import time

    import grpc  # type: ignore[import-untyped]
    from google.api_core import exceptions

    for attempt in (1, 2):
        try:
            return ch.commit(request, timeout=timeout, metadata=ch.metadata)
        except grpc.RpcError as exc:
            if attempt == 1 and exc.code().name in _RETRYABLE:
                time.sleep(0.1)
                continue
            raise exceptions.from_grpc_error(exc) from exc  # type: ignore[no-untyped-call]
    raise AssertionError("unreachable")


class _WriteResult:
    """What ``DocumentReference.create`` answers: the write's ``update_time`` (the claim's version)."""

    __slots__ = ("update_time",)

    def __init__(self, update_time: Any) -> None:
        self.update_time = update_time


@functools.cache
def _ref_class() -> type[Any]:
    """A ``DocumentReference`` whose ``create`` is the raw write (built on first use: lazy imports)."""
    from google.api_core.datetime_helpers import DatetimeWithNanoseconds
    from google.cloud.firestore_v1.document import DocumentReference

    class RawCreateRef(DocumentReference):
        def create(self, document_data: dict[str, Any], retry: Any = None, timeout: float | None = None) -> Any:
            ch = _channel(self._client)
            if ch is None or retry is not None:
                return super().create(document_data, timeout=timeout)
            try:
                request = create_request(ch, self.path, document_data)
            except Unsupported:
                return super().create(document_data, timeout=timeout)
            response = send(ch, request, timeout)
            result = response.write_results[0]
            stamp = result.update_time if result.HasField("update_time") else response.commit_time
            return _WriteResult(DatetimeWithNanoseconds.from_timestamp_pb(stamp))  # type: ignore[no-untyped-call]

    return RawCreateRef


def document(client: Any, collection: str, doc_id: str) -> Any:
    """A reference to ``collection/doc_id`` whose ``create`` is the raw write (the library's own
    reference for a client that is not the library's, e.g. a test double)."""
    if _channel(client) is None:
        return client.collection(collection).document(doc_id)
    return _ref_class()(collection, doc_id, client=client)


class RawBatch:
    """The subset of ``WriteBatch`` the deferred final writes use: ``update`` (no option) and ``commit``.

    Writes the raw encoder cannot build make the whole batch go through a library batch instead.
    """

    def __init__(self, client: Any) -> None:
        self._client = client
        self._ch = _channel(client)
        self._ops: list[tuple[Any, dict[str, Any], Any]] = []
        # The request itself, its writes added in place (no Write copied into it at commit).
        self._request: Any = _pb().CommitRequest(database=self._ch.database) if self._ch is not None else None

    def update(self, reference: Any, field_updates: dict[str, Any], option: Any = None) -> None:
        self._ops.append((reference, field_updates, option))
        if self._request is None or self._ch is None:
            return
        try:
            if option is not None:
                raise Unsupported("write option")
            _fill_update(self._request.writes.add(), self._ch, reference.path, field_updates)
        except Unsupported:  # the whole batch goes through the library (a half-built write is dropped with it)
            self._request = None

    def __len__(self) -> int:
        return len(self._ops)

    def commit(self, timeout: float | None = None) -> None:
        if not self._ops:
            return
        if self._request is not None and self._ch is not None:
            send(self._ch, self._request, timeout)
            return
        batch = self._client.batch()
        for reference, field_updates, option in self._ops:
            batch.update(reference, field_updates, option=option)
        batch.commit(timeout=timeout)
