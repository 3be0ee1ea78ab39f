"""Renewals: Pub/Sub push consumer of billing ticks, invoice events and payment facts.

billing-ticks    -> planner (one RenewalDue per due subscription period) and dunning retries
invoice-events   -> collector (charge a finalized auto-collect invoice through the PSP)
payment-events   -> outcomes (advance the period, dun, or give up)
"""

from typing import Any

import functions_framework

from shared.prefork import freeze
from shared.renewals.entry import handle_push
from shared.usage import metered


@functions_framework.cloud_event
@metered("renewals")
def renewals(cloud_event: Any) -> None:
    handle_push(cloud_event)


freeze()  # last: what this module imported is shared with gunicorn's worker, not copied
