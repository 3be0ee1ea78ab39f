"""Flask glue of the webhooks function: request -> :class:`WebhookService` -> response.

The :func:`shared.edge.http_entry` wrapper guarantees the rule of every HTTP function: a 2xx or a
precise 4xx for any input, 503 (generic body, detail in the log) only when Firestore or Pub/Sub fail,
a generic 500 for a bug.
"""

from __future__ import annotations

import functools
from typing import Any

from flask import Response

from shared.edge import http_entry, read_stream, unavailable
from shared.http import JsonResponse, error
from shared.log import bind, get_logger
from shared.webhooks.service import Answer, Outage, WebhookService
from shared.webhooks.store import DeferredFinishes

log = get_logger(__name__)

_read = read_stream  # the body reader (kept under its old name for callers)


@functools.cache
def default_service() -> WebhookService:
    from shared import clients
    from shared.psp.registry import ADAPTERS

    # Final states after the response, batched (why that is safe: shared.webhooks.store).
    return WebhookService(adapters=ADAPTERS, db=clients.firestore, finishes=DeferredFinishes(clients.firestore))


@http_entry("webhooks")
def handle_request(request: Any, service: WebhookService | None = None) -> Response:
    svc = service or default_service()
    psp = (request.path or "/").strip("/").split("/", 1)[0][:32]
    with bind(psp=psp):
        try:
            answer = svc.handle(
                method=request.method,
                path=request.path,
                headers=request.headers,
                mimetype=request.mimetype,
                content_length=request.content_length,
                read_body=lambda limit: read_stream(request.stream, limit),
            )
        except Outage:
            extra = {"http_status": 503, "error_code": "temporarily_unavailable"}
            log.exception("storage or messaging unavailable; the PSP will retry", extra=extra)
            return unavailable()
        return _response(answer)


def _response(answer: Answer) -> Response:
    if answer.log is not None:
        resp: Response = error(answer.status, answer.log["error_code"], answer.log["detail"])
        if answer.status == 409:  # another request holds this notification's lease for a few seconds
            resp.headers["Retry-After"] = "5"
        return resp
    if isinstance(answer.body, str):
        return Response(answer.body, status=answer.status, mimetype=answer.mimetype)
    return JsonResponse(answer.body, answer.status)
