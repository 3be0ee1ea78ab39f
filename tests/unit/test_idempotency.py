"""The claim rules and the retry policy, without I/O (the contract on Firestore: tests/integration)."""

from __future__ import annotations

import datetime as dt

import pytest
from google.api_core.exceptions import FailedPrecondition
from hypothesis import given
from hypothesis import strategies as st

from shared.events.probe import ProbeRequested
from shared.idempotency import (
    ContentionError,
    Decision,
    RetryPolicy,
    Schema,
    Stale,
    decide,
    payload_hash,
    retry_on_contention,
)

NOW = dt.datetime(2026, 11, 21, tzinfo=dt.UTC)
SCHEMA = Schema(expiry_attr="expire_at", hash_attr="payload_hash")
offsets = st.one_of(st.none(), st.integers(-10_000, 10_000).map(lambda s: NOW + dt.timedelta(seconds=s)))


def test_payload_hash_is_stable_across_key_order_and_models() -> None:
    assert payload_hash({"a": 1, "b": 2}) == payload_hash({"b": 2, "a": 1})
    assert payload_hash(ProbeRequested(probe_id="p")) == payload_hash({"probe_id": "p", "note": ""})
    assert payload_hash({"a": 1}) != payload_hash({"a": 2})


@given(
    status=st.sampled_from(["IN_PROGRESS", "COMPLETED", None]),
    lease=offsets,
    expire=offsets,
    stored=st.sampled_from(["", "h1", "h2"]),
    given_hash=st.sampled_from(["", "h1", "h2"]),
)
def test_decide_follows_the_rules_in_order(
    status: str | None, lease: dt.datetime | None, expire: dt.datetime | None, stored: str, given_hash: str
) -> None:
    doc = {k: v for k, v in {"status": status, "lease_until": lease, "expire_at": expire}.items() if v is not None}
    doc["payload_hash"] = stored
    got = decide(SCHEMA, doc, NOW, given_hash)
    if expire is not None and expire <= NOW:
        assert got is Decision.TAKE_OVER  # an expired record counts as absent, whatever it holds
    elif stored and given_hash and stored != given_hash:
        assert got is Decision.MISMATCH
    elif status == "COMPLETED":
        assert got is Decision.DONE  # a completed record is never taken over, however old its lease
    elif lease is not None and lease > NOW:
        assert got is Decision.BUSY
    else:
        assert got is Decision.TAKE_OVER


@given(lease=offsets, state=st.sampled_from(["received", "published", "ignored"]))
def test_a_lease_without_completion_is_only_ever_busy_or_free(lease: dt.datetime | None, state: str) -> None:
    mutex = Schema(state_attr=None)
    got = decide(mutex, {"lease_until": lease, "status": state}, NOW)
    assert got is (Decision.BUSY if lease is not None and lease > NOW else Decision.TAKE_OVER)


def test_retry_gives_up_after_the_policy_with_a_clear_error() -> None:
    calls: list[int] = []
    pauses: list[float] = []

    def step() -> None:
        calls.append(1)
        raise FailedPrecondition("update_time changed")  # type: ignore[no-untyped-call]

    with pytest.raises(ContentionError, match=r"invoices/in_1 kept changing \(5 tries\)"):
        retry_on_contention(step, what="invoices/in_1", policy=RetryPolicy(tries=5), sleep=pauses.append)
    assert len(calls) == 5
    assert len(pauses) == 3  # the first retry is immediate


def test_retry_returns_the_first_uncontended_answer_and_lets_other_errors_through() -> None:
    left = [2]

    def step() -> str:
        if left[0]:
            left[0] -= 1
            raise Stale
        return "done"

    assert retry_on_contention(step, what="x", sleep=lambda _: None) == "done"

    def broken() -> None:
        raise LookupError("gone")

    with pytest.raises(LookupError):
        retry_on_contention(broken, what="x")


@given(st.integers(1, 50))
def test_pauses_are_jittered_and_capped(retry: int) -> None:
    p = RetryPolicy()
    assert 0 <= p.pause_s(retry) <= p.cap_s * 1.5
