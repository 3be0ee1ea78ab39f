"""Subscriptions: the private HTTP API to create, cancel and re-plan subscriptions (IAM-only)."""

import functions_framework
from flask import Request, Response

from shared.prefork import freeze
from shared.subscriptions.api import handle
from shared.usage import metered


@functions_framework.http
@metered("subscriptions")
def subscriptions(request: Request) -> Response:
    return handle(request)


freeze()  # last: what this module imported is shared with gunicorn's worker, not copied
