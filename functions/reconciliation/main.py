"""Reconciliation: Pub/Sub push consumer and bucket-event target; logic in shared.reconciliation.

payment-events, invoice-events -> payment facts (matching) and ledger entries
reconciliation-ticks            -> pull API settlement sources, report facts never settled
object finalized (Eventarc)     -> take a settlement report file in
"""

from typing import Any

import functions_framework

from shared.prefork import freeze
from shared.reconciliation.entry import handle


@functions_framework.cloud_event
def reconciliation(cloud_event: Any) -> None:
    handle(cloud_event)


freeze()  # last: what this module imported is shared with gunicorn's worker, not copied
