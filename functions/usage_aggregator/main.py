"""Usage aggregator: push consumer of ``usage-events``; dedups and folds each batch (shared.metering)."""

from typing import Any

import functions_framework
import google.cloud.firestore  # before the fork, as in functions/webhooks/main.py (cold start)
import google.cloud.pubsub_v1  # noqa: F401

from shared.metering.aggregator import handle_push
from shared.usage import metered


@functions_framework.cloud_event
@metered("usage_aggregator")
def usage_aggregator(cloud_event: Any) -> None:
    handle_push(cloud_event)
