"""Group commit for the aggregator: concurrent push deliveries on one instance share one write per document.

Why: each delivery folded on its own writes every document it touches (a customer's id and totals documents)
once per delivery; a gen2 instance serves many deliveries at once, and a customer appears in many of them. Here
the deliveries that arrive together join one *window*: the first one leads, waits up to ``coalesce_s`` (less once
``cap`` items are queued; nothing more arrives while it commits either: those wait for the next window), then runs
``run`` ONCE over all the parts taken and hands each waiter its own result. The next window is led by one of the
deliveries still queued (the leader never works for deliveries that come after its own window). With
``eager_when_idle`` (the aggregator's), a delivery reaching an idle instance (none arrived within a window's length
before it) runs at once: at a trickle nothing would join it, and it saves the window's wait (also on a cold start).

Never acknowledged before commit: a waiter returns only after ``run`` returned for its window, and if ``run``
raises, every waiter of that window raises the same exception (all nacked; Pub/Sub redelivers them, and the
store's exact dedup makes the redelivery count once). Only in-process coordination: correctness across instances
rests on the store's compare-and-set writes, as without the window.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Generic, TypeVar

P = TypeVar("P")  # one delivery's part
R = TypeVar("R")  # what its waiter gets back


@dataclass(eq=False)
class _Slot(Generic[P, R]):
    part: P
    size: int
    busy: bool = True  # another delivery arrived within the window's length before this one
    done: bool = False
    result: R | None = None
    error: BaseException | None = None


@dataclass
class WindowStats:
    """Counts of this process (tests and the benchmark read them)."""

    windows: int = 0
    parts: int = 0
    failed: int = 0


@dataclass(eq=False)
class Window(Generic[P, R]):
    """``submit(part)`` blocks until the window holding ``part`` ran; ``run(parts)`` answers one result per part,
    in order (the leader's own part first)."""

    run: Callable[[Sequence[P]], Sequence[R]]
    size: Callable[[P], int]
    coalesce_s: Callable[[], float] = lambda: 0.05
    cap: Callable[[], int] = lambda: 10_000
    eager_when_idle: bool = False  # a delivery to an idle instance runs at once (see submit)
    stats: WindowStats = field(default_factory=WindowStats)
    _last_arrival: float = field(default=float("-inf"), repr=False)
    _cond: threading.Condition = field(default_factory=threading.Condition, repr=False)
    _queue: list[_Slot[P, R]] = field(default_factory=list, repr=False)
    _leading: bool = field(default=False, repr=False)

    def submit(self, part: P) -> R:
        slot: _Slot[P, R] = _Slot(part, self.size(part))
        with self._cond:
            now = time.monotonic()
            slot.busy = bool(self._queue) or self._leading or now - self._last_arrival < self.coalesce_s()
            self._last_arrival = now
            self._queue.append(slot)
            self._cond.notify_all()  # a leader waiting for the cap counts this part
            while not slot.done and self._leading:
                self._cond.wait()
            if not slot.done:
                self._leading = True
        if not slot.done:
            self._lead(slot)
        if slot.error is not None:
            raise slot.error
        return slot.result  # type: ignore[return-value]  # done without error: run answered it

    def _lead(self, own: _Slot[P, R]) -> None:
        taken: list[_Slot[P, R]] = []
        failed = False
        try:
            with self._cond:
                # Idle (nothing arrived within a window's length before it, nothing queued): waiting would only
                # add latency, as no other delivery is likely to join; under load every delivery is busy.
                idle = self.eager_when_idle and not own.busy and self._queue == [own]
                deadline, cap = time.monotonic() + (0.0 if idle else max(0.0, self.coalesce_s())), self.cap()
                while sum(s.size for s in self._queue) < cap and (left := deadline - time.monotonic()) > 0:
                    self._cond.wait(left)
                taken, n = [own], own.size
                for s in list(self._queue):
                    if s is not own and n + s.size <= cap:
                        taken.append(s)
                        n += s.size
                self._queue = [s for s in self._queue if s not in taken]
            results = list(self.run([s.part for s in taken]))
            if len(results) != len(taken):
                raise RuntimeError(f"window run answered {len(results)} results for {len(taken)} parts")
            for s, r in zip(taken, results, strict=True):
                s.result = r
        except BaseException as exc:  # every waiter of the window fails with it: all nacked, all redelivered
            for s in taken or [own]:
                s.error = exc
            failed = True
        finally:
            with self._cond:
                if own in self._queue:  # failed before taking the queue: own still queued
                    self._queue.remove(own)
                for s in taken or [own]:
                    s.done = True
                self.stats.windows += 1
                self.stats.failed += failed
                self.stats.parts += len(taken)
                self._leading = False
                self._cond.notify_all()  # the waiters of this window return; a queued one leads the next
