"""The one validation layer at the HTTP edge: bounded types, a body limit, a safe JSON loader, a wrapper.

Why one layer: every HTTP function must answer any input with a 2xx or a precise 4xx, and must never hand
on what a consumer or Firestore cannot hold (ids Firestore refuses, ints beyond int64, absurd amounts,
dates whose period arithmetic overflows, unbounded strings). Checking that per endpoint misses cases; a
handful of bounded types and one entry-point wrapper make the safe path the only path:

* bounded pydantic types: :data:`FirestoreId`, :data:`Code`, :data:`Name`, :data:`Text`, :data:`BoundedStr`,
  :data:`Int64`, :data:`Amount` / :data:`SignedAmount` (per-currency bound, see
  :func:`shared.domain.money.max_minor`) and :data:`BoundedDatetime`;
* :func:`read_body` (413 over the limit, also for chunked bodies) and :func:`loads` (400 for JSON nested
  deeper than :data:`MAX_JSON_DEPTH`, found by a scan of the raw bytes *before* any parse, or invalid JSON);
* :func:`json_body`: both, then the pydantic model (415/413/400/422);
* :func:`storable`: whether a model about to be published holds only what consumers can store;
* :func:`http_entry`: the wrapper of every HTTP entry point. :class:`EdgeError` becomes its 4xx; a
  dependency outage (Firestore, Pub/Sub) a 503 and anything else a 500, both with a GENERIC body (no
  exception text, project or path); the detail goes to the log only.
"""

from __future__ import annotations

import datetime as dt
import functools
import json
import re
from collections.abc import Callable, Mapping
from typing import Annotated, Any, Concatenate, ParamSpec, TypeVar

from flask import Response
from pydantic import AfterValidator, BaseModel, Field, StringConstraints, ValidationError

from shared.domain.money import INT64_MAX, CurrencyError, Money, max_minor, within_bounds
from shared.http import JsonResponse, error, request_context
from shared.log import get_logger

log = get_logger(__name__)

M = TypeVar("M", bound=BaseModel)
P = ParamSpec("P")

MAX_JSON_DEPTH = 32  # PSP payloads nest under 10 levels; the JSON parser recurses once per level
DEFAULT_MAX_BODY_BYTES = 128 * 1024  # a maximal subscription (100 plan lines of 500 chars) is ~70 KiB
MAX_STR_BYTES = 1024  # Pub/Sub attribute values (idempotency keys are built from strings) stop at 1024
MAX_ID_CHARS = 128
INT64_MIN = -(2**63)
# Instants the platform accepts: far from year 1 and 9999, so period arithmetic (10-year periods, many
# renewals, time-zone shifts) never overflows ``datetime``; Firestore itself stores 0001..9999.
EARLIEST = dt.datetime(2000, 1, 1, tzinfo=dt.UTC)
LATEST = dt.datetime(2100, 1, 1, tzinfo=dt.UTC)


class EdgeError(Exception):
    """A request refused at the edge: ``status`` and ``code`` are what the client gets."""

    def __init__(self, status: int, code: str, detail: Any) -> None:
        super().__init__(f"{status} {code}")
        self.status, self.code, self.detail = status, code, detail


# -- identifiers -----------------------------------------------------------------------------------

ID_PATTERN = r"^[A-Za-z0-9_.:-]+$"
_ID_RE = re.compile(ID_PATTERN)


def firestore_id_problem(value: object) -> str | None:
    """Why ``value`` cannot be a document id, or None. Stricter than Firestore on purpose: a safe charset."""
    if not isinstance(value, str) or not value:
        return "must be a non-empty string"
    if len(value) > MAX_ID_CHARS:
        return f"must be at most {MAX_ID_CHARS} characters"
    if not _ID_RE.match(value):
        return "may only hold letters, digits, '_', '.', ':' and '-'"
    if value in (".", "..") or (value.startswith("__") and value.endswith("__")):
        return "is reserved by Firestore ('.', '..', '__...__')"
    return None


def _firestore_id(value: str) -> str:
    problem = firestore_id_problem(value)
    if problem:
        raise ValueError(f"id {problem}")
    return value


FirestoreId = Annotated[str, Field(min_length=1, max_length=MAX_ID_CHARS), AfterValidator(_firestore_id)]
"""An id that is safe as a Firestore document id (and in a URL path segment)."""

# -- strings and numbers ---------------------------------------------------------------------------
Code = Annotated[str, StringConstraints(min_length=1, max_length=64)]
Name = Annotated[str, StringConstraints(min_length=1, max_length=200)]
Text = Annotated[str, StringConstraints(max_length=500)]
BoundedStr = Annotated[str, StringConstraints(max_length=MAX_STR_BYTES)]
Int64 = Annotated[int, Field(ge=INT64_MIN, le=INT64_MAX)]


def _amount(value: Money) -> Money:
    if not within_bounds(value):
        raise ValueError(f"amount must be between 0 and {max_minor(value.currency)} minor units of {value.currency}")
    return value


def _signed_amount(value: Money) -> Money:
    if not within_bounds(value, allow_negative=True):
        raise ValueError(f"amount must be within ±{max_minor(value.currency)} minor units of {value.currency}")
    return value


Amount = Annotated[Money, AfterValidator(_amount)]
"""Non-negative money within the per-currency bound."""
SignedAmount = Annotated[Money, AfterValidator(_signed_amount)]


def datetime_problem(value: dt.datetime) -> str | None:
    if value.tzinfo is None or value.utcoffset() is None:
        return "needs a time zone"
    try:
        utc = value.astimezone(dt.UTC)
    except (OverflowError, ValueError):
        return f"must be between {EARLIEST.date()} and {LATEST.date()}"
    if not EARLIEST <= utc < LATEST:
        return f"must be between {EARLIEST.date()} and {LATEST.date()}"
    return None


def _bounded_datetime(value: dt.datetime) -> dt.datetime:
    problem = datetime_problem(value)
    if problem:
        raise ValueError(f"time {problem}")
    return value


BoundedDatetime = Annotated[dt.datetime, AfterValidator(_bounded_datetime)]
"""An aware instant in [EARLIEST, LATEST)."""


def storable(value: Any, *, where: str = "event") -> str | None:
    """The first thing in ``value`` a consumer could not store or compute with, or None.

    Walks models, mappings and sequences: every Money within its currency's bound (not negative), every
    int within int64, every datetime within bounds, every string at most :data:`MAX_STR_BYTES` bytes.
    The path of the offending value is built only when there is one: this runs on every published
    webhook event, where formatting a path per value cost more than the checks.
    """
    found = _first_problem(value)
    if found is None:
        return None
    keys, problem = found
    return where + "".join(f".{k}" for k in reversed(keys)) + ": " + problem


_SCALARS = frozenset({str, bool, type(None)})


def _first_problem(value: Any) -> tuple[list[Any], str] | None:
    """``(keys from the value up, problem)`` of the first unstorable value, or None (see :func:`storable`)."""
    t = type(value)
    # The common exact types first (a string of at most 256 characters has at most 1,024 UTF-8 bytes);
    # subclasses, longer strings and containers take the full chain below.
    if t in _SCALARS and (t is not str or len(value) * 4 <= MAX_STR_BYTES):
        return None
    if isinstance(value, BaseModel):  # before Money etc.: a model is none of them (Money is a dataclass)
        for k in type(value).model_fields:
            found = _first_problem(getattr(value, k))
            if found is not None:
                found[0].append(k)
                return found
        return None
    if isinstance(value, Money):
        try:
            ok = within_bounds(value)
        except CurrencyError:
            ok = False
        return None if ok else ([], f"amount {value.amount} {value.currency} is out of bounds")
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, int):
        return None if INT64_MIN <= value <= INT64_MAX else ([], "integer beyond int64")
    if isinstance(value, dt.datetime):
        problem = datetime_problem(value)
        return ([], f"time {problem}") if problem else None
    if isinstance(value, str):
        return None if len(value.encode("utf-8", "surrogatepass")) <= MAX_STR_BYTES else ([], "string too long")
    if isinstance(value, Mapping):
        items: Any = value.items()
    elif isinstance(value, list | tuple):
        items = enumerate(value)
    else:
        return None
    for k, v in items:
        found = _first_problem(v)
        if found is not None:
            found[0].append(k)
            return found
    return None


# -- raw bodies ------------------------------------------------------------------------------------
_JSON_STRING = re.compile(rb'"(?:[^"\\]++|\\.)*+"', re.DOTALL)
_NOT_BRACKETS = bytes(b for b in range(256) if b not in b"[]{}")
_SQUARE = bytes.maketrans(b"{}", b"[]")


def json_too_deep(raw: bytes, max_depth: int = MAX_JSON_DEPTH) -> bool:
    """True when ``raw`` opens more than ``max_depth`` nested arrays/objects (brackets inside strings do
    not count). Cheap for any 1 MiB body: strings are cut by one regex, then each pass of a C-speed
    ``replace`` removes every innermost ``[]`` pair, i.e. one level; valid JSON is exactly as deep as the
    number of passes. What cannot be reduced (unbalanced brackets, invalid JSON anyway) counts as depth.

    Every level needs an opening bracket, so a body with at most ``max_depth`` of them (any webhook:
    PSP payloads nest under 10 levels) is answered by two counts, without the scan."""
    if raw.count(b"[") + raw.count(b"{") <= max_depth:
        return False
    return _deeper_than(raw, max_depth)


def _deeper_than(raw: bytes, max_depth: int) -> bool:
    """The scan of :func:`json_too_deep`."""
    brackets = _JSON_STRING.sub(b"", raw).translate(_SQUARE, _NOT_BRACKETS)
    for passes in range(max_depth + 1):
        reduced = brackets.replace(b"[]", b"")
        if len(reduced) == len(brackets):  # nothing nested is left: the rest is "]...][...["
            return passes + brackets.count(b"[") > max_depth
        brackets = reduced
    return True


def read_stream(stream: Any, limit: int) -> bytes:
    """Read up to ``limit`` bytes; loops because a socket-backed stream may return short reads."""
    chunks: list[bytes] = []
    size = 0
    while size < limit:
        chunk = stream.read(min(65536, limit - size))
        if not chunk:
            break
        chunks.append(chunk)
        size += len(chunk)
    return b"".join(chunks)


def read_body(request: Any, limit: int = DEFAULT_MAX_BODY_BYTES) -> bytes:
    """The whole body, or 413 when it is over ``limit`` (by Content-Length or while reading it)."""
    length = request.content_length
    if length is not None and length > limit:
        raise EdgeError(413, "payload_too_large", f"body over {limit} bytes")
    body = read_stream(request.stream, limit + 1)
    if len(body) > limit:
        raise EdgeError(413, "payload_too_large", f"body over {limit} bytes")
    return body


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def loads(raw: bytes, *, max_depth: int = MAX_JSON_DEPTH) -> Any:
    """JSON that cannot blow the stack: 400 ``json_too_deep`` before parsing, 400 ``malformed_json`` after."""
    if json_too_deep(raw, max_depth):
        raise EdgeError(400, "json_too_deep", f"JSON nested deeper than {max_depth} levels")
    try:
        return json.loads(raw, parse_constant=_no_constant)
    except (ValueError, RecursionError) as exc:  # UnicodeDecodeError and JSONDecodeError are ValueErrors
        raise EdgeError(400, "malformed_json", "body is not valid JSON") from exc


def json_body(
    request: Any,
    model: type[M],
    *,
    max_bytes: int = DEFAULT_MAX_BODY_BYTES,
    invalid_status: int = 422,
    invalid_code: str = "invalid_request",
) -> M:
    """A JSON object body validated into ``model``; raises :class:`EdgeError` with the precise 4xx.

    415 another content type, 413 too large, 400 not a JSON object (or too deep), ``invalid_status`` with
    pydantic's errors (without the offending input, which may be sensitive or huge) when it breaks ``model``.
    """
    if not (request.mimetype or "").endswith("json"):
        raise EdgeError(415, "unsupported_media_type", "send application/json")
    raw = loads(read_body(request, max_bytes))
    if not isinstance(raw, dict):
        raise EdgeError(400, "malformed_json", "body must be a JSON object")
    try:
        return model.model_validate(raw)
    except ValidationError as exc:
        detail = exc.errors(include_url=False, include_context=False, include_input=False)
        raise EdgeError(invalid_status, invalid_code, detail) from exc
    except RecursionError as exc:  # unreachable within MAX_JSON_DEPTH; kept so it can never be a 500
        raise EdgeError(400, "json_too_deep", "body nested too deeply") from exc


# -- the entry-point wrapper -----------------------------------------------------------------------


def is_outage(exc: BaseException) -> bool:
    """True when ``exc`` (or what it wraps) says a dependency is down or overloaded, not that we erred."""
    from google.api_core import exceptions as gexc
    from google.auth import exceptions as auth_exc

    seen: BaseException | None = exc
    for _ in range(5):
        if seen is None:
            return False
        if isinstance(
            seen,
            gexc.ServerError
            | gexc.TooManyRequests
            | gexc.RetryError
            | auth_exc.TransportError
            | TimeoutError
            | ConnectionError,
        ):
            return True
        seen = seen.__cause__ or seen.__context__
    return False


def unavailable(retry_after_s: int = 30) -> JsonResponse:
    """503 with a generic body; the caller has logged the detail."""
    body = {"error": "temporarily_unavailable", "detail": "a dependency is unavailable; retry later"}
    return JsonResponse(body, 503, headers={"Retry-After": str(retry_after_s)})


def internal_error() -> JsonResponse:
    """500 with a generic body; the caller has logged the detail."""
    return JsonResponse({"error": "internal_error", "detail": "unexpected error; it was logged"}, 500)


def http_entry(
    fn: str,
) -> Callable[[Callable[Concatenate[Any, P], Response]], Callable[Concatenate[Any, P], Response]]:
    """Wrap an HTTP entry point: EdgeError -> its 4xx, outage -> 503, anything else -> 500 (generic bodies)."""

    def wrap(handler: Callable[Concatenate[Any, P], Response]) -> Callable[Concatenate[Any, P], Response]:
        @functools.wraps(handler)
        def entry(request: Any, /, *args: P.args, **kwargs: P.kwargs) -> Response:
            with request_context(request, fn=fn):
                try:
                    return handler(request, *args, **kwargs)
                except EdgeError as exc:
                    return error(exc.status, exc.code, exc.detail)
                except Exception as exc:
                    if is_outage(exc):
                        extra = {"http_status": 503, "error_code": "temporarily_unavailable"}
                        log.exception("dependency unavailable", extra=extra)
                        return unavailable()
                    log.exception("unexpected error", extra={"http_status": 500, "error_code": "internal_error"})
                    return internal_error()

        return entry

    return wrap
