"""Backfill: push consumer of ``backfill-ticks``; recovers missed PSP webhooks (logic in shared.backfill)."""

from typing import Any

import functions_framework

from shared.backfill.entry import handle_push
from shared.prefork import freeze
from shared.usage import metered


@functions_framework.cloud_event
@metered("backfill")
def backfill(cloud_event: Any) -> None:
    handle_push(cloud_event)


freeze()  # last: what this module imported is shared with gunicorn's worker, not copied
