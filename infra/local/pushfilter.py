"""Subscription filters on the local stack: the Pub/Sub emulator stores a filter but delivers every message.

A push subscription with a filter is pointed at this small proxy instead of its function: the proxy
evaluates the filter (:func:`infra.local.topology.compile_filter`) on the pushed message's attributes and
answers 204 for a message that does not match, as Pub/Sub would acknowledge it without a push; a matching
message is forwarded unchanged to the function and the function's answer is returned. So the functions
(and the cost benchmark, which counts their deliveries) see what they would see in the cloud.
"""

from __future__ import annotations

import json
import threading
import urllib.error
import urllib.request
from collections.abc import Mapping
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from infra.local.topology import Matcher, Subscription, compile_filter


class PushFilter:
    """One HTTP server for every filtered subscription of a stack; ``/<subscription>/<path>`` routes."""

    def __init__(self) -> None:
        self._routes: dict[str, tuple[Matcher, str]] = {}
        self.filtered = 0  # messages acknowledged without a push (tests read it)
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                sub, _, rest = self.path.lstrip("/").partition("/")
                body = self.rfile.read(int(self.headers.get("content-length") or 0))
                status, answer = proxy.handle(sub, "/" + rest, body, dict(self.headers))
                self.send_response(status)
                self.send_header("content-length", str(len(answer)))
                self.end_headers()
                self.wfile.write(answer)

            def log_message(self, *args: Any) -> None:  # quiet: the functions log the deliveries
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, name="push-filter", daemon=True)
        self._thread.start()

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    def route(self, sub: Subscription, function_base: str) -> str:
        """Register ``sub``; the push endpoint to give the emulator (the path after it is kept)."""
        self._routes[sub.name] = (compile_filter(sub.filter), function_base)
        return f"{self.base_url}/{sub.name}"

    def handle(self, sub: str, path: str, body: bytes, headers: dict[str, str]) -> tuple[int, bytes]:
        if sub not in self._routes:
            return 404, b"unknown subscription"
        matches, target = self._routes[sub]
        try:
            attrs = (json.loads(body).get("message") or {}).get("attributes") or {}
        except (ValueError, AttributeError):
            attrs = {}
        if not matches(attrs):
            self.filtered += 1
            return 204, b""
        kept = ("content-type", "ce-id", "ce-source", "ce-type", "ce-specversion")
        return post(target + path, body, {k: v for k, v in headers.items() if k.lower() in kept}, timeout=600)

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()


def post(url: str, body: bytes, headers: Mapping[str, str], *, timeout: float) -> tuple[int, bytes]:
    """POST a push body to a local function: its status and answer; 503 when it is unreachable or silent
    past ``timeout`` (the push proxy and the concurrent delivery bridge both deliver through this)."""
    req = urllib.request.Request(url, data=body, method="POST", headers=dict(headers))  # noqa: S310 (local URL)
    try:
        with urllib.request.urlopen(req, timeout=timeout) as resp:  # noqa: S310
            return int(resp.status), resp.read()
    except urllib.error.HTTPError as exc:
        return int(exc.code), exc.read()
    except OSError:
        return 503, b"function unreachable"
