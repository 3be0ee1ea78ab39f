"""Stripe's settlement API on loopback, for the demo and the e2e test: the tick's pull runs the official SDK.

Stripe's itemised payout report carries no payout amount, so Stripe payouts reach reconciliation only
through the API pull (``GET /v1/payouts``, then ``GET /v1/balance_transactions?payout=`` for each
automatic payout). This stand-in answers exactly those two calls from what :meth:`SettlementStub.publish`
was given (written by :mod:`shared.settlement.writers`), filters payouts by ``arrival_date`` like Stripe,
and refuses a request without a test-mode bearer key. Never deployed.

The reconciliation function reads ``STRIPE_SETTLEMENT_API_BASE`` (the renewals act's PaymentIntents stub
owns ``STRIPE_API_BASE``), so the stub starts when the functions' environment is built.
"""

from __future__ import annotations

import datetime as dt
import functools
import threading
import urllib.parse
from collections.abc import Iterable
from typing import Any

from infra.local.jsonstub import serve_json
from shared.settlement.lines import Payout, SettlementLine
from shared.settlement.writers import stripe_balance_transaction, stripe_payout


class SettlementStub:
    """Stripe-shaped ``/v1/payouts`` and ``/v1/balance_transactions`` on 127.0.0.1 (one page each)."""

    def __init__(self) -> None:
        self._payouts: dict[str, dict[str, Any]] = {}
        self._txns: dict[str, list[dict[str, Any]]] = {}
        self.requests: list[str] = []
        self._lock = threading.Lock()
        self.server = serve_json(
            lambda _method, path, headers, _body: self.answer(path, headers.get("Authorization") or ""),
            "settlement-stub",
            "GET",
        )

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    def publish(
        self, payouts: Iterable[Payout], lines: Iterable[SettlementLine], arrival_at: dt.datetime | None = None
    ) -> None:
        """Make payouts and their lines (the payout's own balance transaction included) visible to the API."""
        with self._lock:
            for p in payouts:
                self._payouts[p.payout_id] = stripe_payout(p, arrival_at)
            for ln in lines:
                if ln.payout_id:
                    self._txns.setdefault(ln.payout_id, []).append(stripe_balance_transaction(ln))

    def answer(self, path: str, auth: str) -> tuple[int, dict[str, Any]]:
        url = urllib.parse.urlsplit(path)
        q = dict(urllib.parse.parse_qsl(url.query))
        with self._lock:
            self.requests.append(path)
            if not auth.startswith(("Bearer sk_test_", "Bearer rk_test_")):
                return 401, {"error": {"type": "invalid_request_error", "message": "test-mode key required"}}
            if url.path == "/v1/payouts":
                lo, hi = int(q.get("arrival_date[gte]", 0)), int(q.get("arrival_date[lt]", 2**62))
                data = [p for p in self._payouts.values() if lo <= p["arrival_date"] < hi and p["status"] == "paid"]
                return 200, {"object": "list", "url": "/v1/payouts", "has_more": False, "data": data}
            if url.path == "/v1/balance_transactions" and q.get("payout"):
                data = list(self._txns.get(q["payout"], []))
                return 200, {"object": "list", "url": "/v1/balance_transactions", "has_more": False, "data": data}
        return 404, {"error": {"type": "invalid_request_error", "message": f"no stub for {url.path}"}}


@functools.cache
def stub() -> SettlementStub:
    """The one settlement stub of this process, started on first use."""
    return SettlementStub()
