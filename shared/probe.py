"""The walking skeleton as a permanent smoke probe: HTTP in -> Pub/Sub -> push consumer -> Firestore.

After a deploy, ``POST /`` on the probe function with ``{"probe_id": "..."}`` must show up in
``probes/<probe_id>`` within seconds. The sink also bumps a counter that is NOT idempotent by itself,
so a counter of 1 after duplicate deliveries proves the idempotency guard, not luck.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from pydantic import BaseModel, ConfigDict

from shared import clients
from shared.edge import EdgeError, FirestoreId, Text, http_entry, json_body
from shared.events import Received, publish
from shared.events.probe import ProbeRequested
from shared.http import JsonResponse
from shared.idempotency import idempotent
from shared.log import get_logger

log = get_logger(__name__)

PROBES = "probes"
STATS = "probe_stats"


MAX_BODY_BYTES = 4 * 1024  # a probe id (128) and a note (500) with room to spare


class ProbeIn(BaseModel):
    """The request: the probe id becomes a document id in the sink, so it must be a safe Firestore id."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    probe_id: FirestoreId
    note: Text = ""


@http_entry("probe")
def http_probe(request: Any) -> JsonResponse:
    """Validate the request, publish ``probe.requested`` and answer 202 with the message id."""
    if request.method != "POST":
        raise EdgeError(405, "method_not_allowed", "use POST")
    body = json_body(request, ProbeIn, max_bytes=MAX_BODY_BYTES, invalid_status=400, invalid_code="invalid_probe")
    event = ProbeRequested(probe_id=body.probe_id, note=body.note)
    message_id = publish(event, idempotency_key=event.probe_id, occurred_at=dt.datetime.now(dt.UTC))
    log.info("probe published", extra={"probe_id": event.probe_id, "message_id": message_id})
    return JsonResponse({"probe_id": event.probe_id, "message_id": message_id}, 202)


@idempotent(key=lambda msg: msg.envelope.idempotency_key, payload=lambda msg: msg.event, namespace="probe_sink")
def record_probe(msg: Received[ProbeRequested]) -> dict[str, str]:
    """Store the probe and count it once (the increment alone would double-count duplicates)."""
    from google.cloud import firestore as fs

    db = clients.firestore()
    batch = db.batch()
    batch.set(
        db.collection(PROBES).document(msg.event.probe_id),
        {
            "note": msg.event.note,
            "event_id": msg.envelope.event_id,
            "message_id": msg.message_id,
            "occurred_at": msg.envelope.occurred_at,
            "recorded_at": fs.SERVER_TIMESTAMP,
        },
    )
    batch.set(db.collection(STATS).document(msg.event.probe_id), {"handled": fs.Increment(1)}, merge=True)
    batch.commit()
    return {"probe_id": msg.event.probe_id, "message_id": msg.message_id}
