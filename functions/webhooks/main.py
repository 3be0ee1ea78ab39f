"""Webhooks: the public HTTP entry point for PSP notifications (``POST /<psp>[/<account>]``).

The two client libraries every published delivery uses (Firestore for the record, Pub/Sub for the publish)
are imported here, before the server starts, not on the first request: functions-framework serves through
gunicorn, which imports this module in its arbiter and forks the worker that answers. An import done before
the fork is paid once; the same import done in the worker costs more CPU (measured: 60-75 ms per cold start,
user and system time: the worker copies each page of the parent's memory it writes to). The clients
themselves are still built in the worker, on first use: a gRPC channel must not cross a fork.
"""

import functions_framework
import google.cloud.firestore  # see the module docstring
import google.cloud.pubsub_v1  # noqa: F401
from flask import Request, Response

from shared.prefork import freeze
from shared.usage import metered
from shared.webhooks.http import handle_request


@functions_framework.http
@metered("webhooks")
def webhooks(request: Request) -> Response:
    return handle_request(request)


freeze()  # last: what this module imported is shared with gunicorn's worker, not copied
