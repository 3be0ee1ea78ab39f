"""The backfill demo act's core on the emulators: of the PSP's four events one webhook is lost; the first
backfill run recovers exactly that one, the second recovers nothing, and every fact is published once."""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping

import pytest

from infra.local.acts import backfill as act
from tests.conftest import Gcp
from tests.integration.webhooks.support import STRIPE_SECRET, harness


def test_the_act_recovers_the_lost_webhook_once_and_the_second_run_nothing(
    gcp: Gcp, monkeypatch: pytest.MonkeyPatch
) -> None:
    h = harness(gcp, monkeypatch)

    def deliver(body: bytes, headers: Mapping[str, str]) -> int:
        return int(h.post("/stripe", body, dict(headers)).status_code)

    r = act.recover("it", deliver, STRIPE_SECRET, h.service)

    ids = [e["id"] for e in r.events]
    assert r.dropped == [ids[2]]
    assert set(r.statuses.values()) == {200}
    assert set(r.archived_before) == set(ids) - {ids[2]}
    assert (r.first["listed"], r.first["pages"]) == (4, 2)
    assert (r.first["archived"], r.first["gaps"], r.first["published"]) == (3, 1, 1)
    assert (r.second["listed"], r.second["archived"], r.second.get("gaps", 0)) == (4, 4, 0)
    assert r.records[ids[2]]["state"] == "published"
    assert r.records[ids[2]]["backfilled"] is True
    for eid in set(ids) - {ids[2]}:
        assert "backfilled" not in r.records[eid]
    canonical = h.drain()
    assert Counter(m.event.psp_event_id for m in canonical) == Counter(ids)  # exactly one per fact

    said = act.describe(r, canonical)
    assert f"  recovered {ids[2]}: state published, backfilled True" in said
    assert "  canonical events on payment-events: 4 for 4 facts" in said
    assert "  published more than once: none" in said
    assert any(line.startswith("  backfill run (second): listed 4") and line.endswith("recovered 0") for line in said)
