"""Flask glue of the webhooks function: request -> :class:`WebhookService` -> response.

The :func:`shared.edge.http_entry` wrapper guarantees the rule of every HTTP function: a 2xx or a
precise 4xx for any input, 503 (generic body, detail in the log) only when Firestore or Pub/Sub fail,
a generic 500 for a bug.

Log contract (the log-based metrics of ``infra/modules/monitoring`` count these): every request writes
exactly ONE answer line carrying ``http_status`` (2xx: "webhook answered"; 4xx: "request rejected" with
``error_code``; 5xx: the outage or unexpected-error line), and every line of the request carries the
label ``psp``: the PSP of the path, or ``unknown`` for any other path (bounded metric cardinality:
a scanner's random paths never become label values).
"""

from __future__ import annotations

from typing import Any

from flask import Response

from shared.edge import http_entry, read_stream, unavailable
from shared.http import JsonResponse, error
from shared.log import bind, get_logger
from shared.once import once
from shared.webhooks.service import Answer, Outage, WebhookService
from shared.webhooks.store import DeferredFinishes

log = get_logger(__name__)

_read = read_stream  # the body reader (kept under its old name for callers)


@once
def default_service() -> WebhookService:
    from shared import clients
    from shared.psp.registry import ADAPTERS

    # Final states after the response, batched (why that is safe: shared.webhooks.store).
    return WebhookService(adapters=ADAPTERS, db=clients.firestore, finishes=DeferredFinishes(clients.firestore))


def psp_label(path: str | None, known: Any) -> str:
    """The ``psp`` log label of a request path: a known PSP's name, else ``unknown``."""
    segment = (path or "/").strip("/").split("/", 1)[0]
    return segment if segment in known else "unknown"


def handle_request(request: Any, service: WebhookService | None = None) -> Response:
    svc = service or default_service()
    # Bound outside the edge wrapper, so its 500 line carries the label too.
    with bind(psp=psp_label(request.path, svc.adapters)):
        return _handle(request, svc)


@http_entry("webhooks")
def _handle(request: Any, svc: WebhookService) -> Response:
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
    resp = _response(answer)
    if answer.log is None:
        log.info("webhook answered", extra={"http_status": resp.status_code})
    return resp


def _response(answer: Answer) -> Response:
    if answer.log is not None:
        resp: Response = error(answer.status, answer.log["error_code"], answer.log["detail"])
        if answer.status == 409:  # another request holds this notification's lease for a few seconds
            resp.headers["Retry-After"] = "5"
        return resp
    if isinstance(answer.body, str):
        return Response(answer.body, status=answer.status, mimetype=answer.mimetype)
    return JsonResponse(answer.body, answer.status)
