"""Invoices on the real Firestore, Pub/Sub and Storage emulators, one fresh project per test."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest

from shared import clients, usage
from shared.config import get_settings, reset_settings
from shared.invoicing.allocator import NumberAllocator
from shared.invoicing.service import InvoiceService
from tests.conftest import Gcp
from tests.helpers import T0, drain


@dataclass
class Env:
    gcp: Gcp
    svc: InvoiceService
    sub: str

    def service(self, **allocator_kw: Any) -> InvoiceService:
        """Another instance (its own allocator), as a second function instance would be."""
        db = clients.firestore()
        return InvoiceService(db=db, allocator=NumberAllocator(db, **allocator_kw), clock=lambda: T0)

    def events(self) -> list[tuple[dict[str, str], dict[str, Any]]]:
        """Everything published on invoice-events so far (attributes, body), acknowledged."""
        return drain(self.sub, wait=False)

    def doc(self, coll: str, doc_id: str) -> dict[str, Any]:
        snap = clients.firestore().collection(coll).document(doc_id).get()
        assert snap.exists, f"{coll}/{doc_id} missing"
        return snap.to_dict() or {}


@pytest.fixture
def env(gcp: Gcp) -> Env:
    gcp.topic("invoice-events")
    sub = gcp.pull_subscription("invoice-events")
    db = clients.firestore()
    # The tests' clock: issue dates inside 2026, so series ids and numbers are known whatever today's date.
    return Env(gcp, InvoiceService(db=db, allocator=NumberAllocator(db), clock=lambda: T0), sub)


@pytest.fixture
def metered(env: Env, monkeypatch: pytest.MonkeyPatch) -> Iterator[Env]:
    """``env`` with the usage counters on (``shared.usage``): what a delivery costs at the ports."""
    monkeypatch.setenv("USAGE_METERING", "1")
    reset_settings()
    db = clients.firestore()
    cfg = get_settings()
    clients.emulator_bucket(cfg.project_id, cfg.invoice_bucket)  # local-only bucket creation: not counted
    env.svc = InvoiceService(db=db, allocator=NumberAllocator(db), clock=lambda: T0)
    yield env
    reset_settings()
    usage._background.drain()
