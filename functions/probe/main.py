"""Probe: HTTP entry point of the end-to-end smoke check (walking skeleton)."""

import functions_framework
from flask import Request, Response

from shared.prefork import freeze
from shared.probe import http_probe
from shared.usage import metered


@functions_framework.http
@metered("probe")
def probe(request: Request) -> Response:
    return http_probe(request)


freeze()  # last: what this module imported is shared with gunicorn's worker, not copied
