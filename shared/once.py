"""One value per instance (per arguments), built once even when concurrent first calls race for it.

``functools.cache`` does not stop two threads that miss together from each building a value: both run
the function and each caller keeps its own. For a pure value that only wastes a little CPU; for an
instance's service it splits what the instance exists to share. A renewal run reaches a cold invoices
instance as a burst of concurrent pushes, and each of its first 80 requests built its own allocator and
archive writer (batches of one, commits lost on the series lease, ~10 extra reads per invoice, measured):
a group commit, a usage window, a deferred-finish queue, a client's gRPC channel or a thread pool must be
built once. ``@once`` is ``functools.cache`` with a lock around the build (the lock is taken only on a
miss; a hit is a dict lookup) and the same ``cache_clear`` for tests.
"""

from __future__ import annotations

import functools
import threading
from collections.abc import Callable, Hashable
from typing import Generic, ParamSpec, TypeVar

P = ParamSpec("P")
T = TypeVar("T")


class Once(Generic[P, T]):
    """The wrapper :func:`once` returns."""

    def __init__(self, fn: Callable[P, T]) -> None:
        self._fn = fn
        self._lock = threading.Lock()
        self._values: dict[Hashable, T] = {}
        functools.update_wrapper(self, fn)

    def __call__(self, *args: P.args, **kwargs: P.kwargs) -> T:
        key: Hashable = (args, tuple(sorted(kwargs.items()))) if kwargs else args
        try:
            return self._values[key]
        except KeyError:
            pass
        with self._lock:  # a miss: build under the lock, so concurrent first calls get the same value
            if key not in self._values:
                self._values[key] = self._fn(*args, **kwargs)
            return self._values[key]

    def cache_clear(self) -> None:
        """Forget every value (tests that change the environment)."""
        with self._lock:
            self._values.clear()


def once(fn: Callable[P, T]) -> Once[P, T]:
    """Decorate an instance-scoped builder: see the module docstring."""
    return Once(fn)


__all__ = ["Once", "once"]
