"""The invoices function builds ONE service per instance, even when its first requests arrive together.

A renewal run reaches a cold instance as a burst of concurrent pushes; each request that built its own
service would number with its own allocator (one invoice per commit, contending for the series lease) and
archive with its own writer (one object per invoice).
"""

from __future__ import annotations

import threading
from typing import Any

import pytest

from tests.helpers import race
from tests.unit.events.samples import entry_point

THREADS = 16


def test_concurrent_first_requests_share_one_service(monkeypatch: pytest.MonkeyPatch) -> None:
    import shared.invoicing.service as service_mod

    built: list[Any] = []

    class SlowService:
        """Stands in for InvoiceService: its construction lasts long enough for every request to miss."""

        def __init__(self) -> None:
            threading.Event().wait(0.1)
            built.append(self)

    monkeypatch.setattr(service_mod, "InvoiceService", SlowService)
    main = entry_point("invoices")
    got = race(main._service, THREADS)

    assert len(got) == THREADS
    assert len(built) == 1
    assert all(svc is built[0] for svc in got)
