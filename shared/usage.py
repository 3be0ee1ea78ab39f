"""Billable usage counted at the ports: Firestore reads/writes, Pub/Sub publishes, Cloud Storage operations.

Why at the ports: the cost of a delivery is the sum of the operations its clients send, whatever code path
sends them. ``shared.clients`` installs the counters on the clients it builds when ``USAGE_METERING`` is on
(a gRPC interceptor on Firestore, a counting ``publish`` on the Publisher, a counting HTTP session on
Storage); when it is off the clients are the plain library clients and nothing here runs.

Each delivery (an entry point wrapped by :func:`metered`) counts into its own :class:`Usage` (a context
variable, so concurrent requests of one instance do not mix; the planner's claim threads copy the
context) and logs one ``usage`` line. Operations of threads started without the context (e.g. a group
commit running for several requests) count into a process-wide background account, drained into the next
line, so the per-line sums over a run stay complete.

Counting rules (Firestore / Pub/Sub / Cloud Storage billing):

* Commit: one write per element of ``writes`` (a transform or precondition on it is not extra), only when
  the commit succeeds. BatchWrite: one per write.
* BatchGetDocuments, RunQuery, ListDocuments: one read per document returned, at least one per request
  (a query that returns nothing is billed one read); RunAggregationQuery: one read per 1,000 index entries
  counted, at least one.
* Publish: one message and its bytes (data + attribute keys and values); billed at >= 1 KB each.
* Storage: Class A = object writes (POST/PUT/PATCH) and listings; Class B = other GETs; deletes are free.
"""

from __future__ import annotations

import atexit
import contextlib
import contextvars
import functools
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any, TypeVar

F = TypeVar("F", bound=Callable[..., Any])

_COUNTERS = ("reads", "writes", "published", "published_bytes", "storage_class_a", "storage_class_b")


@dataclass
class Usage:
    reads: int = 0
    writes: int = 0
    published: int = 0
    published_bytes: int = 0
    storage_class_a: int = 0
    storage_class_b: int = 0
    topics: dict[str, int] = field(default_factory=dict)  # messages per topic (as named in the topic path)
    lock: threading.Lock = field(default_factory=threading.Lock, repr=False, compare=False)

    def add(self, **counts: int) -> None:
        with self.lock:
            for k, n in counts.items():
                setattr(self, k, getattr(self, k) + n)

    def add_published(self, size: int, topic: str) -> None:
        with self.lock:
            self.published += 1
            self.published_bytes += size
            self.topics[topic] = self.topics.get(topic, 0) + 1

    def as_dict(self) -> dict[str, Any]:
        with self.lock:
            out: dict[str, Any] = {k: getattr(self, k) for k in _COUNTERS}
            out["topics"] = dict(self.topics)
            return out

    def drain(self) -> dict[str, Any]:
        """The counts so far, and reset (the background account is logged piecewise)."""
        with self.lock:
            out: dict[str, Any] = {k: getattr(self, k) for k in _COUNTERS}
            out["topics"] = dict(self.topics)
            for k in _COUNTERS:
                setattr(self, k, 0)
            self.topics.clear()
            return out


_current: contextvars.ContextVar[Usage | None] = contextvars.ContextVar("usage", default=None)
_background = Usage()


def current() -> Usage:
    """The account of the running delivery, or the process-wide background account outside any."""
    u = _current.get()
    return u if u is not None else _background


@contextlib.contextmanager
def track() -> Iterator[Usage]:
    """Count this block's operations into a fresh account (nested blocks count into the outer one)."""
    outer = _current.get()
    if outer is not None:
        yield outer
        return
    u = Usage()
    tok = _current.set(u)
    try:
        yield u
    finally:
        _current.reset(tok)


def enabled() -> bool:
    from shared.config import ConfigError, get_settings

    try:
        return get_settings().usage_metering
    except ConfigError:
        return False


def _event_type(args: tuple[Any, ...]) -> str:
    """What the delivery was: a Pub/Sub message's ``event_type`` (a tick has none) or the HTTP path."""
    arg = args[0] if args else None
    data = getattr(arg, "data", None)
    if isinstance(data, dict) and isinstance(data.get("message"), dict):
        attrs = data["message"].get("attributes") or {}
        return str(attrs.get("event_type") or "billing.tick") if isinstance(attrs, dict) else "?"
    path = getattr(arg, "path", None)
    return f"http {path}" if isinstance(path, str) else "?"


def metered(function: str) -> Callable[[F], F]:
    """Wrap an entry point: with metering on, count its delivery and log one ``usage`` line after it.

    The line carries the counts, the event type, the handling thread's CPU time and the outcome, so the
    cost benchmark sums the functions' logs. With metering off the wrapper only checks the cached setting.
    """

    def deco(fn: F) -> F:
        @functools.wraps(fn)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            if not enabled() or _current.get() is not None:
                return fn(*args, **kwargs)
            u = Usage()
            tok = _current.set(u)
            cpu0 = time.thread_time()
            ok = False
            try:
                result = fn(*args, **kwargs)
                ok = True
                return result
            finally:
                _current.reset(tok)
                _log_line(function, _event_type(args), u, time.thread_time() - cpu0, ok)

        return wrapper  # type: ignore[return-value]

    return deco


def _log_line(function: str, event_type: str, u: Usage, cpu_s: float, ok: bool) -> None:
    from shared.log import get_logger

    get_logger(__name__).info(
        "usage",
        extra={
            "function": function,
            "event_type": event_type,
            "ok": ok,
            "thread_cpu_ms": round(cpu_s * 1000, 3),
            "usage": u.as_dict(),
            "background": _background.drain(),
        },
    )


@atexit.register
def _flush_background() -> None:
    """Log what background threads counted after the last delivery (a stopped instance)."""
    if not any(getattr(_background, k) for k in _COUNTERS):
        return
    with contextlib.suppress(Exception):
        from shared.log import get_logger

        get_logger(__name__).info("usage", extra={"function": "", "event_type": "", "background": _background.drain()})


# -- Firestore: a gRPC client interceptor ---------------------------------------------------------------
_FS = "/google.firestore.v1.Firestore/"


class _CountingStream:
    """A server-streaming call counted as it is consumed (at least one read); cancel, code, callbacks
    and the rest are the wrapped call's."""

    def __init__(self, call: Any, u: Usage, per_item: Callable[[Any], int]) -> None:
        self._call, self._u, self._per_item = call, u, per_item
        self._seen = 0
        self._floor_counted = False

    def __iter__(self) -> _CountingStream:
        return self

    def __next__(self) -> Any:
        try:
            item = next(self._call)
        except StopIteration:
            if self._seen == 0 and not self._floor_counted:  # an empty answer is still billed one read
                self._floor_counted = True
                self._u.add(reads=1)
            raise
        n = self._per_item(item)
        if n:
            self._seen += n
            self._u.add(reads=n)
        return item

    def __getattr__(self, name: str) -> Any:
        return getattr(self._call, name)


def _pb(msg: Any) -> Any:
    return getattr(msg, "_pb", msg)  # proto-plus wraps the protobuf message


def _docs_in_batch_get(resp: Any) -> int:
    return 1 if _pb(resp).WhichOneof("result") else 0  # found or missing


def _docs_in_query(resp: Any) -> int:
    return 1 if _pb(resp).HasField("document") else 0


def _reads_in_aggregation(resp: Any) -> int:
    pb = _pb(resp)
    if not pb.HasField("result"):
        return 0
    counted = max((v.integer_value for v in pb.result.aggregate_fields.values()), default=0)
    return max(1, -(-counted // 1000))


_STREAMS: dict[str, Callable[[Any], int]] = {
    _FS + "BatchGetDocuments": _docs_in_batch_get,
    _FS + "RunQuery": _docs_in_query,
    _FS + "RunAggregationQuery": _reads_in_aggregation,
}


def firestore_interceptor() -> Any:
    """A gRPC client interceptor counting Firestore's billable operations into :func:`current`."""
    import grpc  # type: ignore[import-untyped]

    class Interceptor(grpc.UnaryUnaryClientInterceptor, grpc.UnaryStreamClientInterceptor):  # type: ignore[misc]
        def intercept_unary_unary(self, continuation: Any, details: Any, request: Any) -> Any:
            u = current()
            method = details.method
            outcome = continuation(details, request)
            if method in (_FS + "Commit", _FS + "BatchWrite"):
                n = len(request.writes)

                def done(f: Any) -> None:
                    if n and f.exception() is None:
                        u.add(writes=n)

                outcome.add_done_callback(done)
            elif method == _FS + "ListDocuments":

                def listed(f: Any) -> None:
                    if f.exception() is None:
                        u.add(reads=max(1, len(f.result().documents)))

                outcome.add_done_callback(listed)
            return outcome

        def intercept_unary_stream(self, continuation: Any, details: Any, request: Any) -> Any:
            u = current()
            call = continuation(details, request)
            per_item = _STREAMS.get(details.method)
            return call if per_item is None else _CountingStream(call, u, per_item)

    return Interceptor()


# -- Pub/Sub and Storage ---------------------------------------------------------------------------------
def message_size(data: bytes, attrs: dict[str, Any]) -> int:
    """Billable bytes of one message: data plus attribute keys and values (billed at >= 1 KB)."""
    return len(data) + sum(len(k) + len(str(v)) for k, v in attrs.items())


def count_publish(topic: str, data: bytes, attrs: dict[str, Any]) -> None:
    current().add_published(message_size(data, attrs), topic.rsplit("/", 1)[-1])


def count_storage_request(method: str, url: str) -> None:
    m = method.upper()
    if m in ("POST", "PUT", "PATCH"):
        current().add(storage_class_a=1)
    elif m == "GET":
        listing = url.split("?", 1)[0].rstrip("/").endswith(("/o", "/b"))
        current().add(**({"storage_class_a": 1} if listing else {"storage_class_b": 1}))


def meter_http(session: Any) -> Any:
    """Count every request of an HTTP session (the Storage client's transport) before sending it."""
    send = session.request

    def request(method: str, url: str, *args: Any, **kwargs: Any) -> Any:
        count_storage_request(method, url)
        return send(method, url, *args, **kwargs)

    session.request = request
    return session
