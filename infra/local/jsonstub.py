"""A JSON HTTP server on 127.0.0.1 for the local PSP and model stubs (demo, e2e and benches; never deployed).

Each stub keeps its own answers; this is the plumbing they share: a threading server on a free port, the
request read whole, the answer written as JSON with its length, request logging off.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable
from email.message import Message
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

# (method, path with query, headers, body) -> (status, JSON body)
Answer = Callable[[str, str, Message, bytes], tuple[int, Any]]  # headers: case-insensitive get


def serve_json(answer: Answer, name: str, method: str) -> ThreadingHTTPServer:
    """Serve ``answer`` for ``method`` (GET or POST; the other is 501, as the stub API has none) on a free loopback
    port in a daemon thread; returns the server (its port: ``server_address[1]``)."""

    class Handler(BaseHTTPRequestHandler):
        def _reply(self) -> None:
            if self.command != method:
                self.send_error(501)
                return
            body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            status, out = answer(self.command, self.path, self.headers, body)
            raw = json.dumps(out).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(raw)))
            self.end_headers()
            self.wfile.write(raw)

        do_GET = do_POST = _reply

        def log_message(self, format: str, *args: Any) -> None:
            return

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, name=name, daemon=True).start()
    return server
