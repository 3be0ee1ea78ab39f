"""Console: the private operator web app (IAP in front; server-rendered HTML from this folder's templates)."""

from pathlib import Path

import functions_framework
from flask import Request, Response

from shared.console.app import Console
from shared.prefork import freeze
from shared.usage import metered

CONSOLE = Console(root=Path(__file__).resolve().parent)


@functions_framework.http
@metered("console")
def console(request: Request) -> Response:
    return CONSOLE.handle(request)


freeze()  # last: what this module imported is shared with gunicorn's worker, not copied
