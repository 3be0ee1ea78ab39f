"""Usage counting rules at the ports (no I/O: the gRPC continuation is a stand-in) and the per-delivery line."""

from __future__ import annotations

import json
import logging
import threading
import types
from collections.abc import Iterator
from typing import Any

import pytest
from google.cloud.firestore_v1.types import firestore as fs
from google.cloud.firestore_v1.types import query as q
from google.cloud.firestore_v1.types import write as w
from hypothesis import given
from hypothesis import strategies as st

from shared import usage
from shared.config import reset_settings
from shared.log import CloudLoggingFormatter


@pytest.fixture(autouse=True)
def _project(env_project: str) -> None:
    return None


class Outcome:
    """What grpc hands an interceptor for a blocking unary call: done, with a result or an exception."""

    def __init__(self, result: Any = None, exc: Exception | None = None) -> None:
        self._result, self._exc = result, exc

    def add_done_callback(self, fn: Any) -> None:
        fn(self)

    def exception(self) -> Exception | None:
        return self._exc

    def result(self) -> Any:
        return self._result


class Stream:
    def __init__(self, items: list[Any]) -> None:
        self._it = iter(items)
        self.cancelled = False

    def __next__(self) -> Any:
        return next(self._it)

    def cancel(self) -> None:
        self.cancelled = True


def details(method: str) -> Any:
    return types.SimpleNamespace(method=f"/google.firestore.v1.Firestore/{method}")


def unary(method: str, request: Any, outcome: Outcome) -> usage.Usage:
    with usage.track() as u:
        usage.firestore_interceptor().intercept_unary_unary(lambda d, r: outcome, details(method), request)
    return u


def streamed(method: str, items: list[Any]) -> tuple[usage.Usage, list[Any]]:
    with usage.track() as u:
        call = usage.firestore_interceptor().intercept_unary_stream(lambda d, r: Stream(items), details(method), None)
        got = list(call)
    return u, got


def commit(n: int) -> fs.CommitRequest:
    writes = [w.Write(update={"name": f"projects/p/databases/(default)/documents/c/d{i}"}) for i in range(n)]
    return fs.CommitRequest(database="projects/p/databases/(default)", writes=writes)


@given(st.integers(min_value=0, max_value=30))
def test_a_commit_counts_one_write_per_element_of_writes(n: int) -> None:
    req = commit(n)
    if n:  # a transform on a write is part of that write, not another one
        req.writes[0].update_transforms.append(w.DocumentTransform.FieldTransform(field_path="x"))
    assert unary("Commit", req, Outcome(fs.CommitResponse())).writes == n


def test_a_failed_commit_counts_nothing() -> None:
    assert unary("Commit", commit(3), Outcome(exc=RuntimeError("precondition failed"))).writes == 0


def test_begin_and_rollback_are_free() -> None:
    u = unary("BeginTransaction", fs.BeginTransactionRequest(), Outcome(fs.BeginTransactionResponse()))
    assert (u.reads, u.writes) == (0, 0)


def test_batch_get_counts_found_and_missing_documents_not_the_transaction_frame() -> None:
    items = [
        fs.BatchGetDocumentsResponse(transaction=b"t"),
        fs.BatchGetDocumentsResponse(found={"name": "projects/p/databases/(default)/documents/c/a"}),
        fs.BatchGetDocumentsResponse(missing="projects/p/databases/(default)/documents/c/b"),
    ]
    u, got = streamed("BatchGetDocuments", items)
    assert u.reads == 2
    assert got == items  # the stream is passed through untouched


@given(st.integers(min_value=0, max_value=40))
def test_a_query_counts_its_documents_and_at_least_one(n: int) -> None:
    items = [fs.RunQueryResponse(read_time={"seconds": 1})]  # progress frames carry no document
    items += [
        fs.RunQueryResponse(document={"name": f"projects/p/databases/(default)/documents/c/{i}"}) for i in range(n)
    ]
    u, _ = streamed("RunQuery", items)
    assert u.reads == max(1, n)


@pytest.mark.parametrize(("counted", "reads"), [(0, 1), (1, 1), (1000, 1), (1001, 2), (25_000, 25)])
def test_a_count_is_one_read_per_thousand_index_entries(counted: int, reads: int) -> None:
    from google.cloud.firestore_v1.types import aggregation_result as ar
    from google.cloud.firestore_v1.types import document as doc

    res = ar.AggregationResult(aggregate_fields={"n": doc.Value(integer_value=counted)})
    u, _ = streamed("RunAggregationQuery", [fs.RunAggregationQueryResponse(result=res)])
    assert u.reads == reads


def test_the_wrapped_stream_keeps_the_call_methods() -> None:
    with usage.track():
        call = usage.firestore_interceptor().intercept_unary_stream(
            lambda d, r: Stream([]), details("RunQuery"), q.StructuredQuery()
        )
    call.cancel()
    assert call._call.cancelled


def test_list_documents_counts_documents_returned_at_least_one() -> None:
    empty = unary("ListDocuments", fs.ListDocumentsRequest(), Outcome(fs.ListDocumentsResponse()))
    two = fs.ListDocumentsResponse(documents=[{"name": "a"}, {"name": "b"}])
    assert (empty.reads, unary("ListDocuments", fs.ListDocumentsRequest(), Outcome(two)).reads) == (1, 2)


def test_storage_classes() -> None:
    with usage.track() as u:
        usage.count_storage_request("POST", "http://h/upload/storage/v1/b/bk/o?uploadType=multipart")  # insert: A
        usage.count_storage_request("GET", "http://h/storage/v1/b/bk/o/inv.pdf")  # get: B
        usage.count_storage_request("GET", "http://h/storage/v1/b/bk/o?prefix=x")  # list: A
        usage.count_storage_request("DELETE", "http://h/storage/v1/b/bk/o/inv.pdf")  # free
    assert (u.storage_class_a, u.storage_class_b) == (2, 1)


def test_publish_counts_data_and_attributes_by_topic() -> None:
    with usage.track() as u:
        usage.count_publish("projects/p/topics/renewals-due", b"x" * 100, {"event_type": "renewal.due"})
    assert (u.published, u.published_bytes, u.topics) == (
        1,
        100 + len("event_type") + len("renewal.due"),
        {"renewals-due": 1},
    )


def test_nested_tracking_counts_into_the_outer_account() -> None:
    with usage.track() as outer, usage.track() as inner:
        usage.current().add(writes=1)
    assert inner is outer
    assert outer.writes == 1


def test_outside_a_delivery_counts_go_to_the_background_account() -> None:
    usage._background.drain()

    def work() -> None:
        usage.current().add(reads=2)

    with usage.track() as u:
        t = threading.Thread(target=work)  # a thread started without the context
        t.start()
        t.join()
    assert u.reads == 0
    assert usage._background.drain()["reads"] == 2


def push(event_type: str | None) -> Any:
    attrs = {"event_type": event_type} if event_type else {}
    return types.SimpleNamespace(data={"message": {"data": "", "attributes": attrs}})


@pytest.fixture
def metering(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.setenv("USAGE_METERING", "1")
    reset_settings()
    yield
    reset_settings()


class Lines(logging.Handler):
    """The JSON lines the function would print (what Cloud Logging and the benchmark read)."""

    def __init__(self) -> None:
        super().__init__()
        self.setFormatter(CloudLoggingFormatter())
        self.lines: list[dict[str, Any]] = []

    def emit(self, record: logging.LogRecord) -> None:
        rec = json.loads(self.format(record))
        if rec.get("message") == "usage":
            self.lines.append(rec)


@pytest.fixture
def logged() -> Iterator[Lines]:
    h = Lines()
    logger = logging.getLogger("shared.usage")
    logger.addHandler(h)
    logger.setLevel(logging.INFO)
    yield h
    logger.removeHandler(h)


def test_a_metered_delivery_logs_one_line_with_its_counts_and_the_background(metering: None, logged: Lines) -> None:
    usage._background.drain()
    usage._background.add(writes=3)  # e.g. a group commit that ran for earlier requests

    @usage.metered("invoices")
    def handler(cloud_event: Any) -> str:
        usage.current().add(reads=2, writes=1)
        return "ok"

    assert handler(push("renewal.due")) == "ok"
    handler(push(None))  # a scheduler tick carries no event type
    rec, later = logged.lines
    assert (rec["function"], rec["event_type"], rec["ok"]) == ("invoices", "renewal.due", True)
    assert (rec["usage"]["reads"], rec["usage"]["writes"]) == (2, 1)
    assert rec["background"]["writes"] == 3
    assert rec["thread_cpu_ms"] >= 0
    assert later["event_type"] == "billing.tick"
    assert later["background"]["writes"] == 0  # drained once


def test_a_failed_delivery_is_logged_too(metering: None, logged: Lines) -> None:
    @usage.metered("renewals")
    def handler(cloud_event: Any) -> None:
        usage.current().add(reads=1)
        raise RuntimeError("nack")

    with pytest.raises(RuntimeError):
        handler(push("invoice.finalized"))
    (rec,) = logged.lines
    assert (rec["ok"], rec["usage"]["reads"]) == (False, 1)


def test_metering_off_runs_the_handler_without_an_account_or_a_line(logged: Lines) -> None:
    seen = []

    @usage.metered("invoices")
    def handler(cloud_event: Any) -> None:
        seen.append(usage._current.get())

    handler(push("renewal.due"))
    assert seen == [None]
    assert logged.lines == []
