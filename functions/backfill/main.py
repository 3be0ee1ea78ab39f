"""Backfill: push consumer of ``backfill-ticks``; recovers missed PSP webhooks (logic in shared.backfill)."""

from typing import Any

import functions_framework
import google.cloud.firestore  # before the fork, as in functions/webhooks/main.py (cold start)
import google.cloud.pubsub_v1  # noqa: F401

from shared.backfill.entry import handle_push
from shared.usage import metered


@functions_framework.cloud_event
@metered("backfill")
def backfill(cloud_event: Any) -> None:
    handle_push(cloud_event)
