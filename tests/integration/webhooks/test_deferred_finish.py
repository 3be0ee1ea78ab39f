"""The final state written after the answer (``DeferredFinishes``), on the real emulators.

The delivery guarantee must not depend on that write: when it never lands (the instance is killed right
after answering, or Firestore refuses it), a redelivery publishes the fact again under the SAME event id,
and no fact ever gets a second id.
"""

from __future__ import annotations

import concurrent.futures
import datetime as dt
from typing import Any

import pytest
from google.api_core.exceptions import ServiceUnavailable

from shared import clients
from shared.events.envelope import make_event_id
from shared.psp import signing
from shared.webhooks import store
from shared.webhooks.store import DeferredFinishes
from tests.conftest import Gcp
from tests.integration.webhooks.support import STRIPE_SECRET, harness
from tests.integration.webhooks.test_pipeline import STRIPE_BODY


def _down() -> Any:
    raise ServiceUnavailable("firestore is down")  # type: ignore[no-untyped-call]


def test_lost_final_write_costs_at_most_a_republish_under_the_same_event_id(
    gcp: Gcp, monkeypatch: pytest.MonkeyPatch
) -> None:
    h = harness(gcp, monkeypatch)
    h.service.finishes = DeferredFinishes(_down)  # the write after the answer never lands
    now = [dt.datetime.now(dt.UTC)]
    h.service.clock = lambda: now[0]

    def deliver() -> int:
        headers = {"Stripe-Signature": signing.stripe_header(STRIPE_BODY, STRIPE_SECRET, int(now[0].timestamp()))}
        return int(h.post("/stripe", STRIPE_BODY, headers).status_code)

    assert deliver() == 200  # published and acknowledged before the answer
    [first] = h.drain()
    [rec] = h.records()
    assert (rec["state"], rec["attempts"]) == ("received", 1)
    assert deliver() == 409  # a PSP duplicate within the lease: come back later, nothing published
    assert h.drain() == []
    now[0] += dt.timedelta(seconds=store.LEASE_S + 1)
    assert deliver() == 200  # the lease ran out: taken over and published again
    [second] = h.drain()
    fact = first.event.fact_key()
    assert second.event.fact_key() == fact
    assert first.envelope.event_id == second.envelope.event_id == make_event_id("payment.succeeded", fact)
    assert second.envelope.idempotency_key == first.envelope.idempotency_key == fact
    # Once a final write lands, redeliveries are duplicates again.
    h.service.finishes = DeferredFinishes(clients.firestore)
    now[0] += dt.timedelta(seconds=store.LEASE_S + 1)
    assert deliver() == 200
    assert [m.envelope.event_id for m in h.drain()] == [first.envelope.event_id]
    [rec] = h.records()
    assert (rec["state"], rec["attempts"]) == ("published", 3)
    assert deliver() == 200
    assert h.drain() == []


def _claimed(n: int, prefix: str) -> list[store.Claimed]:
    db, now = clients.firestore(), dt.datetime.now(dt.UTC)
    out = []
    for i in range(n):
        c = store.claim(db, f"{prefix}-{i}", {"psp": "stripe", "psp_event_id": f"evt_{i}"}, now)
        assert c.outcome is store.Claim.OWNED
        out.append(c)
    return out


def test_final_writes_queued_from_many_requests_all_land(gcp: Gcp) -> None:
    claimed = _claimed(60, "many")
    finishes = DeferredFinishes(clients.firestore)

    def answer(c: store.Claimed) -> None:
        finishes.add(c, store.PUBLISHED, message_id=c.ref.id)

    with concurrent.futures.ThreadPoolExecutor(8) as pool:
        list(pool.map(answer, claimed))
    assert finishes.flush(timeout_s=60)  # generous: it returns as soon as they are written
    recs = {d.id: d.to_dict() or {} for d in clients.firestore().collection(store.COLLECTION).stream()}
    assert len(recs) == 60
    assert all((r["state"], r["message_id"]) == ("published", doc_id) for doc_id, r in recs.items())


def test_one_unwritable_record_does_not_cost_the_others_their_final_write(gcp: Gcp) -> None:
    claimed = _claimed(3, "batch")
    claimed[1].ref.delete()  # an update of a missing document fails, and so would the whole batch
    DeferredFinishes(clients.firestore)._write([(c, store.IGNORED, {}) for c in claimed])
    states = {d.id: (d.to_dict() or {}).get("state") for d in clients.firestore().collection(store.COLLECTION).stream()}
    assert states == {"batch-0": "ignored", "batch-2": "ignored"}
