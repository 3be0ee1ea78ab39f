"""Baseline for bench.webhooks_endpoint: the same Firestore create and Pub/Sub publish, nothing else.

A functions-framework HTTP function that stores the body under its hash with ``create()`` and
publishes it, answering 200 after the publish is acknowledged. No verification, no parsing, no
normalisation: the floor any webhook endpoint on this stack stands on.

Its messages carry the same envelope attributes as a canonical event (same names, same sizes), so the
publish costs what ours costs, but go to a topic of their own (``bench-bare-events``) under the type
``bench.bare``: the body is not a canonical event, and on ``payment-events`` consumers would
dead-letter it.

Its ``create()`` goes through the client library, as a function written without our raw encoder would;
``BENCH_BARE_RAW=1`` sends it through the webhook's own raw encoder (``shared.webhooks.rawfs``) instead,
to see how much of the ratio that encoder accounts for (a stricter floor: the cheapest create we know).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import os

import functions_framework
from flask import Request, Response

from shared import clients
from shared.config import get_settings
from shared.events.envelope import make_event_id
from shared.webhooks import rawfs

TOPIC = "bench-bare-events"
EVENT_TYPE = "bench.bare"
RAW_CREATE = os.environ.get("BENCH_BARE_RAW") == "1"


@functions_framework.http
def bare(request: Request) -> Response:
    body = request.get_data()
    key = hashlib.sha256(body).hexdigest()
    db = clients.firestore()
    ref = rawfs.document(db, "bare_webhooks", key) if RAW_CREATE else db.collection("bare_webhooks").document(key)
    ref.create({"raw": body.decode(errors="replace")})
    settings = get_settings()
    attrs = {
        "event_type": EVENT_TYPE,
        "event_id": make_event_id(EVENT_TYPE, key),
        "schema_version": "1",
        "occurred_at": dt.datetime.now(dt.UTC).isoformat().replace("+00:00", "Z"),
        "idempotency_key": key,
        "producer": settings.function_name,
    }
    clients.publisher().publish(settings.topic_path(TOPIC), body, **attrs).result(timeout=8)
    return Response('{"received": true}', status=200, mimetype="application/json")
