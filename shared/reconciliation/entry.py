"""Routing of the reconciliation function's CloudEvents: bucket object events, lenient ticks, typed events.

Cloud Storage's object-finalize event (delivered by Eventarc, or by the local stack, which posts the same
CloudEvent because the storage emulator cannot) names the bucket, object and generation. A scheduler tick
carries fixed attributes and no envelope, so it is parsed leniently, as the renewals tick is. Everything
else goes through the typed envelope dispatcher (acknowledge what is not ours, raise to be redelivered).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from shared.events.consumer import Handler, dispatch
from shared.events.envelope import Received
from shared.events.ticks import tick_time
from shared.log import get_logger
from shared.once import once
from shared.reconciliation.config import recon_settings
from shared.reconciliation.service import Reconciler, UnknownObject

log = get_logger(__name__)

OBJECT_FINALIZED = "google.cloud.storage.object.v1.finalized"
TICK = "reconciliation.tick"


@once
def _service() -> Reconciler:
    return Reconciler()


def _fact(msg: Received[Any]) -> object:
    ev = _service().record_fact(msg.event)
    return None if ev is None else ev.state


def _invoice(msg: Received[Any]) -> object:
    return _service().record_invoice_event(msg.event, msg.envelope.occurred_at)


HANDLERS: dict[str, Handler] = {
    "payment.succeeded": _fact,
    "payment.refunded": _fact,
    "dispute.opened": _fact,
    "dispute.won": _fact,
    "invoice.finalized": _invoice,
    "invoice.voided": _invoice,
    "credit_note.issued": _invoice,
}


def _attr(cloud_event: Any, name: str) -> Any:
    try:
        return cloud_event[name]
    except (KeyError, TypeError):
        return None


def handle(cloud_event: Any) -> object:
    if _attr(cloud_event, "type") == OBJECT_FINALIZED:
        data = getattr(cloud_event, "data", None) or {}
        try:
            result = _service().intake_object(str(data["bucket"]), str(data["name"]), str(data.get("generation") or ""))
        except UnknownObject as exc:
            log.warning("object is no settlement report; acknowledged", extra={"error": str(exc)})
            return None
        log.info("settlement report taken in", extra={"object": data.get("name"), "result": result})
        return result
    data = getattr(cloud_event, "data", None)
    msg = data.get("message") if isinstance(data, Mapping) else None
    if isinstance(msg, Mapping) and (msg.get("attributes") or {}).get("event_type") == TICK:
        now = tick_time(msg, allow_test_clock=recon_settings().allow_test_clock)
        result = _service().tick(now)
        log.info("reconciliation tick", extra={"result": result})
        return result
    return dispatch(cloud_event, HANDLERS)
