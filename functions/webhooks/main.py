"""Webhooks: the public HTTP entry point for PSP notifications (``POST /<psp>[/<account>]``)."""

import functions_framework
from flask import Request, Response

from shared.usage import metered
from shared.webhooks.http import handle_request


@functions_framework.http
@metered("webhooks")
def webhooks(request: Request) -> Response:
    return handle_request(request)
