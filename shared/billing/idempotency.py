"""``Idempotency-Key`` on creates, as Stripe does it, stored with the one claim primitive.

A create carrying the header is run once per key: the first request claims ``billing_idempotency/<hash(key)>``
(:class:`shared.idempotency.Claims`, with the request's fingerprint as the payload hash) and completes it with the
response it gave. Then:

* same key, same method, path and body (as JSON: key order and spacing do not matter) -> the stored response,
  status included, with ``Idempotent-Replayed: true``;
* same key, anything else different -> 422 ``idempotency_key_reused`` (nothing is run);
* same key while the first request still runs -> 409 ``idempotency_key_in_use`` (retry later);
* the first request failed (a 4xx of the rules, an outage) -> the claim is released and nothing is stored, so a
  retry with the same key runs again (Stripe stores nothing either when a request did not execute).

The id of the created resource is derived from the key (:func:`derived_id`), so even a request whose process died
after the write but before completing the claim is, on retry, the same resource and not a second one.
Records expire after :data:`TTL_S` (Firestore TTL on ``expire_at``), like Stripe's 24 hours.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from shared.idempotency import Claims, IdempotencyPayloadMismatchError, Outcome, Schema, hash_key, payload_hash

COLLECTION = "billing_idempotency"
HEADER = "Idempotency-Key"
MAX_KEY_CHARS = 255
TTL_S = 24 * 3600
LEASE_S = 60  # longer than a create takes; a crashed request's key is usable again after it
SCHEMA = Schema(expiry_attr="expire_at", hash_attr="payload_hash")
CLAIMS = Claims(SCHEMA, lease_s=LEASE_S, ttl_s=TTL_S)


def key_problem(key: str) -> str | None:
    if not 1 <= len(key) <= MAX_KEY_CHARS:
        return f"{HEADER} must be 1 to {MAX_KEY_CHARS} characters"
    if not all(" " <= c <= "~" for c in key):
        return f"{HEADER} must be printable ASCII"
    return None


def derived_id(prefix: str, key: str) -> str:
    """The id a create under ``key`` gives its resource: the same on every retry."""
    return f"{prefix}_{hash_key('billing-id', key)[:24]}"


def fingerprint(method: str, path: str, body: Any) -> str:
    return payload_hash({"method": method, "path": path, "body": body})


@dataclass(frozen=True, slots=True)
class Replay:
    status: int
    body: Any
    replayed: bool


class KeyReused(Exception):
    """The key was used for another request."""


class KeyInUse(Exception):
    """The first request with this key is still running."""


@dataclass(frozen=True, slots=True)
class IdempotencyKeys:
    db: Callable[[], Any]
    clock: Callable[[], dt.datetime]
    claims: Claims = CLAIMS

    def run(self, key: str, print_: str, work: Callable[[], tuple[int, Any]]) -> Replay:
        """``work()`` once per ``key``; see the module doc for every other case."""
        ref = self.db().collection(COLLECTION).document(hash_key("billing", key))
        try:
            claimed = self.claims.claim(ref, self.clock(), payload_hash=print_)
        except IdempotencyPayloadMismatchError:
            raise KeyReused(key) from None
        if claimed.outcome is Outcome.DONE:
            stored = json.loads(claimed.result)
            return Replay(int(stored["status"]), stored["body"], True)
        if claimed.outcome is Outcome.BUSY:
            raise KeyInUse(key)
        try:
            status, body = work()
        except BaseException:
            self.claims.release(claimed)
            raise
        self.claims.complete(claimed, result=json.dumps({"status": status, "body": body}))
        return Replay(status, body, False)
