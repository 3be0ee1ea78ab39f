"""Small helpers for HTTP entry points: JSON answers, precise errors, request-scoped log context."""

from __future__ import annotations

import contextlib
import json
from collections.abc import Iterator
from typing import Any, TypeVar

from flask import Response
from pydantic import BaseModel, ValidationError

from shared.log import bind, get_logger, parse_trace

log = get_logger(__name__)

M = TypeVar("M", bound=BaseModel)


class JsonResponse(Response):
    """A Flask response with a JSON body."""

    def __init__(self, body: Any, status: int = 200, headers: dict[str, str] | None = None) -> None:
        super().__init__(json.dumps(body, default=str), status=status, headers=headers, mimetype="application/json")


def error(status: int, code: str, detail: Any, **labels: object) -> JsonResponse:
    """Answer a client error with a machine-readable code and log it as one structured line."""
    severity = log.warning if status < 500 else log.error
    severity("request rejected", extra={"http_status": status, "error_code": code, "detail": detail, **labels})
    return JsonResponse({"error": code, "detail": detail}, status)


@contextlib.contextmanager
def request_context(request: Any, **labels: object) -> Iterator[None]:
    """Bind the request's trace and the given labels to every log line of this request."""
    with bind(parse_trace(request.headers), **labels):
        yield


def json_body(
    request: Any, model: type[M], *, invalid_status: int = 422, invalid_code: str = "invalid_request"
) -> M | JsonResponse:
    """A JSON object body validated into ``model``, or the precise 4xx to answer instead.

    415 for another content type, 400 for a body that is not a JSON object, ``invalid_status`` with
    pydantic's errors (without the offending input, which may be sensitive) for one that breaks ``model``.
    """
    if not (request.mimetype or "").endswith("json"):
        return error(415, "unsupported_media_type", "send application/json")
    raw = request.get_json(silent=True)
    if not isinstance(raw, dict):
        return error(400, "malformed_json", "body must be a JSON object")
    try:
        return model.model_validate(raw)
    except ValidationError as exc:
        detail = exc.errors(include_url=False, include_context=False, include_input=False)
        return error(invalid_status, invalid_code, detail)
