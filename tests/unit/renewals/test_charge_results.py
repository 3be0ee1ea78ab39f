"""The subscription's ``charges`` map holds each attempt's only copy of its result: nothing may be lost."""

from __future__ import annotations

import datetime as dt
from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from shared.renewals.outcomes import ARCHIVE_BATCH, MAX_CHARGES_KEPT, archive_id, merge_charge

T = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
STATUSES = st.sampled_from(["pending", "succeeded", "failed"])


def result(status: str, n: int) -> dict[str, Any]:
    return {"status": status, "psp_payment_id": f"pi_{n}", "psp_created_at": T + dt.timedelta(hours=n)}


@given(st.lists(st.tuples(st.integers(0, 60), STATUSES), max_size=120))
def test_every_result_stays_on_the_map_or_in_exactly_one_archive_batch(facts: list[tuple[int, str]]) -> None:
    charges: dict[str, Any] = {}
    archive: dict[str, dict[str, Any]] = {}
    final: dict[str, str] = {}
    for n, status in facts:
        key = f"inv_{n}:1"
        got = merge_charge(charges, key, result(status, n))
        if got is None:
            continue
        charges, moved = got
        assert len(charges) <= MAX_CHARGES_KEPT + ARCHIVE_BATCH
        if moved:
            assert len(moved) == ARCHIVE_BATCH + 1
            assert len(charges) == MAX_CHARGES_KEPT
            assert archive_id(moved) not in archive
            archive[archive_id(moved)] = moved
            oldest_kept = min(c["psp_created_at"] for c in charges.values())
            assert all(m["psp_created_at"] <= oldest_kept for m in moved.values())  # the oldest move
        if status != "pending" and key not in final:
            final[key] = status
    for key, status in final.items():  # a final result is never lost, nor replaced by a pending one
        on_map = charges.get(key)
        stored = [b[key] for b in archive.values() if key in b] + ([on_map] if on_map else [])
        assert any(s["status"] == status for s in stored), key


def test_a_final_fact_keeps_the_risk_decision_stored_with_the_pending_answer() -> None:
    pending = {**result("pending", 1), "risk": {"decision": {"verdict": "review"}}}
    first = merge_charge({}, "inv_1:1", pending)
    assert first is not None
    got = merge_charge(first[0], "inv_1:1", result("succeeded", 1))
    assert got is not None
    charges, moved = got
    assert (charges["inv_1:1"]["status"], charges["inv_1:1"]["risk"], moved) == (
        "succeeded",
        {"decision": {"verdict": "review"}},
        {},
    )
    assert merge_charge(charges, "inv_1:1", result("pending", 1)) is None  # final beats pending
