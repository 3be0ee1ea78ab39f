"""The collaborators of the billing services: Firestore and the clock (tests inject a dying Firestore or a clock)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from shared import clients


def utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


@dataclass(frozen=True, slots=True)
class BillingDeps:
    """``db`` is a factory (the shared client is per project and created lazily)."""

    db: Callable[[], Any] = clients.firestore
    clock: Callable[[], dt.datetime] = utcnow


DEFAULT_DEPS = BillingDeps()


class BillingError(Exception):
    """A refusal with its HTTP status and machine-readable code, so the HTTP layer answers without the rules."""

    def __init__(self, status: int, code: str, detail: Any) -> None:
        super().__init__(f"{status} {code}: {detail}")
        self.status, self.code, self.detail = status, code, detail


def iso(v: Any) -> Any:
    """RFC 3339 (UTC, ``Z``) for every timestamp in an answer, recursively."""
    if isinstance(v, dt.datetime):
        return v.astimezone(dt.UTC).isoformat().replace("+00:00", "Z")
    if isinstance(v, dict):
        return {k: iso(x) for k, x in v.items()}
    if isinstance(v, list | tuple):
        return [iso(x) for x in v]
    return v
