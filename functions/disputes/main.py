"""Disputes: push consumer of ``payment-events`` dispute.* and of its deadline tick; logic in shared.disputes."""

from typing import Any

import functions_framework

from shared.disputes.entry import handle_push
from shared.prefork import freeze
from shared.usage import metered


@functions_framework.cloud_event
@metered("disputes")
def disputes(cloud_event: Any) -> None:
    handle_push(cloud_event)


freeze()  # last: what this module imported is shared with gunicorn's worker, not copied
