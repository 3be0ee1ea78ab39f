"""Usage aggregator: push consumer of ``usage-events``; dedups and folds each batch (shared.metering)."""

from typing import Any

import functions_framework

from shared.metering.aggregator import handle_push
from shared.prefork import freeze
from shared.usage import metered


@functions_framework.cloud_event
@metered("usage_aggregator")
def usage_aggregator(cloud_event: Any) -> None:
    handle_push(cloud_event)


freeze()  # last: what this module imported is shared with gunicorn's worker, not copied
