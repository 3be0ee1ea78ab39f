"""Disputes: push consumer of ``payment-events`` dispute.* and of its deadline tick; logic in shared.disputes."""

from typing import Any

import functions_framework
import google.cloud.firestore  # before the fork, as in functions/webhooks/main.py (cold start)
import google.cloud.pubsub_v1  # noqa: F401

from shared.disputes.entry import handle_push
from shared.usage import metered


@functions_framework.cloud_event
@metered("disputes")
def disputes(cloud_event: Any) -> None:
    handle_push(cloud_event)
