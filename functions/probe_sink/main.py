"""Probe sink: push consumer of the ``probes`` topic; records each probe once in Firestore."""

from typing import Any

import functions_framework

from shared.events.consumer import dispatch
from shared.prefork import freeze
from shared.probe import record_probe
from shared.usage import metered

HANDLERS = {"probe.requested": record_probe}


@functions_framework.cloud_event
@metered("probe_sink")
def probe_sink(cloud_event: Any) -> None:
    dispatch(cloud_event, HANDLERS)


freeze()  # last: what this module imported is shared with gunicorn's worker, not copied
