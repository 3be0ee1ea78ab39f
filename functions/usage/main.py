"""Usage: the private HTTP API taking usage event batches, meters and current usage (IAM-only)."""

import functions_framework
from flask import Request, Response

from shared.metering.api import handle
from shared.prefork import freeze
from shared.usage import metered


@functions_framework.http
@metered("usage")
def usage(request: Request) -> Response:
    return handle(request)


freeze()  # last: what this module imported is shared with gunicorn's worker, not copied
