"""Baseline for bench.webhooks_endpoint: the same Firestore create and Pub/Sub publish, nothing else.

A functions-framework HTTP function that stores the body under its hash with ``create()`` and
publishes it to payment-events, answering 200 after the publish is acknowledged. No verification,
no parsing, no normalisation: the floor any webhook endpoint on this stack stands on.
"""

from __future__ import annotations

import hashlib

import functions_framework
from flask import Request, Response

from shared import clients
from shared.config import get_settings


@functions_framework.http
def bare(request: Request) -> Response:
    body = request.get_data()
    key = hashlib.sha256(body).hexdigest()
    clients.firestore().collection("bare_webhooks").document(key).create({"raw": body.decode(errors="replace")})
    topic = get_settings().topic_path("payment-events")
    clients.publisher().publish(topic, body, idempotency_key=key).result(timeout=8)
    return Response('{"received": true}', status=200, mimetype="application/json")
