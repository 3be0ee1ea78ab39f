"""Small helpers for HTTP entry points: JSON answers, precise errors, request-scoped log context.

Validation of what arrives (bodies, JSON, bounded types, the entry-point wrapper) is :mod:`shared.edge`.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Iterator
from typing import Any

from flask import Response

from shared.log import bind, get_logger, parse_trace
from shared.scrub import scrub_value

log = get_logger(__name__)


class JsonResponse(Response):
    """A Flask response with a JSON body."""

    def __init__(self, body: Any, status: int = 200, headers: dict[str, str] | None = None) -> None:
        super().__init__(_ENCODER.encode(body), status=status, headers=headers, mimetype="application/json")


# ``json.dumps`` with any option builds a new encoder per call; this one is what it builds, made once.
_ENCODER = json.JSONEncoder(default=str)


def error(status: int, code: str, detail: Any, **labels: object) -> JsonResponse:
    """Answer a client error with a machine-readable code and log it as one structured line.

    The detail can quote what the sender wrote (a field value in a validation message): it is scrubbed of
    card data before it is answered or logged, like every archive and event.
    """
    detail = scrub_value(detail)
    severity = log.warning if status < 500 else log.error
    severity("request rejected", extra={"http_status": status, "error_code": code, "detail": detail, **labels})
    return JsonResponse({"error": code, "detail": detail}, status)


@contextlib.contextmanager
def request_context(request: Any, **labels: object) -> Iterator[None]:
    """Bind the request's trace and the given labels to every log line of this request."""
    with bind(parse_trace(request.headers), **labels):
        yield
