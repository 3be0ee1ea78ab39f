"""The invoices function builds ONE service per instance, even when its first requests arrive together.

A renewal run reaches a cold instance as a burst of concurrent pushes; each request that built its own
service would number with its own allocator (one invoice per commit, contending for the series lease) and
archive with its own writer (one object per invoice).
"""

from __future__ import annotations

import threading
from typing import Any

import pytest

from tests.unit.events.samples import entry_point

THREADS = 16


def test_concurrent_first_requests_share_one_service(monkeypatch: pytest.MonkeyPatch) -> None:
    import shared.invoicing.service as service_mod

    arrived = 0
    lock = threading.Lock()
    everyone = threading.Event()
    built: list[Any] = []

    class SlowService:
        """Stands in for InvoiceService: its construction lasts until every request has asked for it."""

        def __init__(self) -> None:
            everyone.wait(timeout=10)
            built.append(self)

    monkeypatch.setattr(service_mod, "InvoiceService", SlowService)
    main = entry_point("invoices")
    got: list[Any] = []

    def request() -> None:
        nonlocal arrived
        with lock:
            arrived += 1
            if arrived == THREADS:
                everyone.set()
        svc = main._service()
        with lock:
            got.append(svc)

    threads = [threading.Thread(target=request) for _ in range(THREADS)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=30)

    assert len(got) == THREADS
    assert len(built) == 1
    assert all(svc is built[0] for svc in got)
