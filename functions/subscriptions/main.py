"""Subscriptions: the private HTTP API to create, cancel and re-plan subscriptions (IAM-only)."""

import functions_framework
import google.cloud.firestore  # before the fork, as in functions/webhooks/main.py (cold start)
import google.cloud.pubsub_v1  # noqa: F401
from flask import Request, Response

from shared.subscriptions.api import handle
from shared.usage import metered


@functions_framework.http
@metered("subscriptions")
def subscriptions(request: Request) -> Response:
    return handle(request)
