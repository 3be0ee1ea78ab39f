"""Webhooks: the public HTTP entry point for PSP notifications (``POST /<psp>[/<account>]``)."""

import functions_framework
from flask import Request, Response

from shared.webhooks.http import handle_request


@functions_framework.http
def webhooks(request: Request) -> Response:
    return handle_request(request)
