"""Flask glue of the webhooks function: request -> :class:`WebhookService` -> response."""

from __future__ import annotations

import functools
from typing import Any

from flask import Response

from shared.http import JsonResponse, error, request_context
from shared.log import get_logger
from shared.webhooks.service import Answer, Outage, WebhookService

log = get_logger(__name__)


@functools.cache
def default_service() -> WebhookService:
    from shared import clients
    from shared.psp.registry import ADAPTERS

    return WebhookService(adapters=ADAPTERS, db=clients.firestore)


def handle_request(request: Any, service: WebhookService | None = None) -> Response:
    svc = service or default_service()
    psp = (request.path or "/").strip("/").split("/", 1)[0][:32]
    with request_context(request, fn="webhooks", psp=psp):
        try:
            answer = svc.handle(
                method=request.method,
                path=request.path,
                headers=request.headers,
                mimetype=request.mimetype,
                content_length=request.content_length,
                read_body=lambda limit: _read(request.stream, limit),
            )
        except Outage as exc:
            log.exception("storage or messaging unavailable; the PSP will retry")
            resp: Response = error(503, "temporarily_unavailable", str(exc)[:300])
            resp.headers["Retry-After"] = "30"
            return resp
        return _response(answer)


def _read(stream: Any, limit: int) -> bytes:
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


def _response(answer: Answer) -> Response:
    if answer.log is not None:
        resp: Response = error(answer.status, answer.log["error_code"], answer.log["detail"])
        if answer.status == 409:  # another request holds this notification's lease for a few seconds
            resp.headers["Retry-After"] = "5"
        return resp
    if isinstance(answer.body, str):
        return Response(answer.body, status=answer.status, mimetype=answer.mimetype)
    return JsonResponse(answer.body, answer.status)
