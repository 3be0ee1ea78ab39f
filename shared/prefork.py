"""What an entry module does last: hand what it imported to gunicorn's worker without a copy.

functions-framework serves through gunicorn: the arbiter imports ``main.py`` and forks the worker that
answers. The worker shares the arbiter's memory until it writes to a page. Python's cyclic garbage
collector writes to every object it examines (its bookkeeping lives in each object's header), and the
first request allocates enough (lazy imports, the clients, the RPCs) to start a full collection in the
worker: it then walks every object the arbiter imported, the client libraries and ours, and the kernel
copies each page it touches (measured on the subscriptions function: about 5,000 minor page faults and
50 ms of CPU of its cold start). ``gc.freeze()`` moves every object alive at that moment into a
permanent generation the collector never examines, as the ``gc`` documentation advises before a fork
without exec. Reference counting still frees what dies; only reference cycles among the frozen objects
(the import's own garbage) are never collected: a bounded, one-time amount.
"""

from __future__ import annotations

import gc


def freeze() -> None:
    """Exempt everything alive now from the garbage collector (call it as an entry module's last statement)."""
    gc.freeze()
