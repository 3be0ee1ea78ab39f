"""The claim contract on the real Firestore emulator (atomic create, preconditions, leases, CAS)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from shared import clients
from tests.conftest import Gcp
from tests.idempotency_contract import SCENARIOS


@pytest.mark.parametrize("scenario", SCENARIOS, ids=lambda s: s.__name__)
def test_contract(gcp: Gcp, scenario: Callable[[Any], None]) -> None:
    scenario(clients.firestore())


def test_record_carries_ttl_field_and_result(gcp: Gcp) -> None:
    from shared.idempotency import idempotent

    @idempotent(key=lambda k: k, namespace="ttl-check")
    def h(k: str) -> dict[str, str]:
        return {"k": k}

    h("x")
    docs = [d.to_dict() or {} for d in clients.firestore().collection("idempotency").stream()]
    assert len(docs) == 1
    assert docs[0]["status"] == "COMPLETED"
    assert docs[0]["result"] == {"k": "x"}
    assert docs[0]["expire_at"] > docs[0]["lease_until"]
