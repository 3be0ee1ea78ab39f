"""One compare-and-set helper with one retry policy for every optimistic read-modify-write on Firestore.

Why optimistic: a Firestore transaction locks what it reads, which a hot document and the emulator both
punish; a write conditioned on the ``update_time`` that was read costs nothing extra and fails only when
somebody else wrote in between. The loser re-reads and decides again, a bounded number of times: past the
policy it raises :class:`ContentionError`, and a Pub/Sub consumer lets that propagate (redelivery later).
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

from shared.idempotency.exceptions import ContentionError

T = TypeVar("T")


class Stale(Exception):
    """Raised by a compare-and-set step whose read went out of date in a way Firestore does not report
    as a failed precondition (e.g. the document vanished): the helper runs the step again."""


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """How often a compare-and-set step is retried, and the jittered pause between tries.

    The first retry is immediate (the common case is one concurrent writer); later ones back off so a
    crowd of writers on one document spreads out instead of colliding again.
    """

    tries: int = 20
    base_s: float = 0.005
    cap_s: float = 0.1

    def pause_s(self, retry: int) -> float:
        if retry <= 1:
            return 0.0
        return float(min(self.cap_s, self.base_s * 2 ** (retry - 2)) * (0.5 + random.random()))  # noqa: S311


CAS_POLICY = RetryPolicy()


def precondition(update_time: Any) -> Any:
    """The write option "only if the document's update_time is still ``update_time``"."""
    from google.cloud.firestore import Client

    return Client.write_option(last_update_time=update_time)


def retry_on_contention(
    step: Callable[[], T],
    *,
    what: str,
    policy: RetryPolicy = CAS_POLICY,
    sleep: Callable[[float], None] = time.sleep,
) -> T:
    """Run ``step`` (read, decide, conditional write) until it does not hit contention.

    Contention is a failed precondition from Firestore or :class:`Stale` from the step; anything else
    propagates at once. After ``policy.tries`` contended tries: :class:`ContentionError` naming ``what``.
    """
    from google.api_core.exceptions import FailedPrecondition

    for n in range(policy.tries):
        if n:
            pause = policy.pause_s(n)
            if pause:
                sleep(pause)
        try:
            return step()
        except (FailedPrecondition, Stale):
            continue
    raise ContentionError(f"{what} kept changing ({policy.tries} tries)")


def update_if_unchanged(
    ref: Any,
    change: Callable[[dict[str, Any] | None], dict[str, Any] | None],
    *,
    policy: RetryPolicy = CAS_POLICY,
    timeout_s: float | None = None,
) -> Any:
    """Read-modify-write of one document with an ``update_time`` precondition.

    ``change`` gets the current document (None if absent) and returns the fields to update, or None for
    nothing to do (an absent document is never written). Returns the snapshot the decision was made on.
    """
    from google.api_core.exceptions import NotFound

    kw: dict[str, Any] = {} if timeout_s is None else {"timeout": timeout_s}

    def step() -> Any:
        snap = ref.get(**kw)
        fields = change(snap.to_dict() if snap.exists else None)
        if fields is None or not snap.exists:
            return snap
        try:
            ref.update(fields, option=precondition(snap.update_time), **kw)
        except NotFound:
            raise Stale from None  # deleted since the read: decide again on its absence
        return snap

    return retry_on_contention(step, what=ref.path, policy=policy)
