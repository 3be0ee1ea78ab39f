"""The idempotency contract on the in-memory layer (service-level fake, cosmicpython style)."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from shared.events.probe import ProbeRequested
from shared.idempotency import InMemoryPersistenceLayer, PersistenceLayer, payload_hash
from tests.idempotency_contract import SCENARIOS


@pytest.mark.parametrize("scenario", SCENARIOS, ids=lambda s: s.__name__)
def test_contract(scenario: Callable[[PersistenceLayer], None]) -> None:
    scenario(InMemoryPersistenceLayer())


def test_payload_hash_is_stable_across_key_order_and_models() -> None:
    assert payload_hash({"a": 1, "b": 2}) == payload_hash({"b": 2, "a": 1})
    assert payload_hash(ProbeRequested(probe_id="p")) == payload_hash({"probe_id": "p", "note": ""})
    assert payload_hash({"a": 1}) != payload_hash({"a": 2})
