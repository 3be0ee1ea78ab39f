"""Probe sink: push consumer of the ``probes`` topic; records each probe once in Firestore."""

from typing import Any

import functions_framework
import google.cloud.firestore  # before the fork, as in functions/webhooks/main.py (cold start)
import google.cloud.pubsub_v1  # noqa: F401

from shared.events.consumer import dispatch
from shared.probe import record_probe
from shared.usage import metered

HANDLERS = {"probe.requested": record_probe}


@functions_framework.cloud_event
@metered("probe_sink")
def probe_sink(cloud_event: Any) -> None:
    dispatch(cloud_event, HANDLERS)
