"""The profile carried by ``invoice.finalized``: same features as the read, no I/O when fresh, read when not."""

from __future__ import annotations

import datetime as dt
from typing import Any, NoReturn

import pytest
from hypothesis import given
from hypothesis import strategies as st

from shared.events.billing import RiskSnapshot
from shared.risk.base import Subject
from shared.risk.rules import RulesScorer
from shared.risk.step import Carried, ProfileRead, RiskStep, features_of, method_view, profile_of, snapshot_of
from tests.helpers import T0

SUBJECT = Subject("charge", "inv_1:1", "stripe", "default", "cus_1", "m1", 1000, "EUR", T0, ref="inv_1:1")

entries = st.fixed_dictionaries(
    {
        "t": st.integers(0, 24 * 10).map(lambda h: T0 - dt.timedelta(hours=h)),
        "kind": st.sampled_from(["attempt", "succeeded", "failed", "pending"]),
        "outcome": st.sampled_from([None, "succeeded", "failed", "blocked"]),
        "amount": st.none() | st.integers(0, 10**6),
        "currency": st.sampled_from([None, "EUR", "USD"]),
        "m": st.sampled_from([None, "m1", "m2"]),
    },
    optional={"d": st.just({"verdict": "allow"}), "rec": st.just({"x": 1})},
)
profiles = st.fixed_dictionaries(
    {
        "events": st.dictionaries(st.text("abcdef", min_size=1, max_size=4), entries, max_size=12),
        "billing_country": st.sampled_from([None, "DE", "FR"]),
        "methods": st.dictionaries(st.sampled_from(["m1", "m2"]), st.fixed_dictionaries({"country": st.just("FR")})),
    }
)


@given(profiles, st.integers(0, 3 * 24 * 3600))
def test_the_carried_profile_gives_the_features_the_read_gives(profile: dict[str, Any], age_s: int) -> None:
    """Through the contract (JSON and back) and at any later time the collector decides."""
    snap = snapshot_of(profile, "m1", T0)
    wire = RiskSnapshot.model_validate_json(RiskSnapshot.model_validate(snap).model_dump_json()).model_dump()
    carried = profile_of(wire, "m1")
    later = Subject(**{**{f: getattr(SUBJECT, f) for f in SUBJECT.__slots__}, "at": T0 + dt.timedelta(seconds=age_s)})
    assert features_of(later, carried, method_view(carried, "m1")) == features_of(
        later, profile, method_view(profile, "m1")
    )
    assert set(carried["events"]) == set(profile["events"])  # the bounded write drops the same oldest entries


def no_db() -> NoReturn:
    raise AssertionError("no Firestore on the charge path")


def snapshot(read_at: dt.datetime) -> dict[str, Any]:
    return snapshot_of({"events": {"a": {"t": T0, "kind": "attempt", "outcome": "failed", "m": "m1"}}}, "m1", read_at)


def test_a_fresh_carried_profile_is_decided_without_any_io() -> None:
    step = RiskStep(RulesScorer(), budget_s=0.1, db=no_db)
    pending = step.carried(SUBJECT, snapshot(T0 - dt.timedelta(seconds=600)), max_age_s=600)
    assert isinstance(pending.read, Carried)
    a = pending.decide()
    assert a.decision.verdict == "allow"
    assert a.record is not None
    assert a.record["features"]["customer_attempts_24h"] == 1


class FakeDb:
    """Only what :class:`ProfileRead` touches; its early call fails, so its fallback ``get`` answers."""

    def __init__(self) -> None:
        self.gets = 0

    def collection(self, _: str) -> FakeDb:
        return self

    def document(self, _: str) -> FakeDb:
        return self

    def get(self) -> Any:
        self.gets += 1
        return type("Snap", (), {"exists": False})()


@pytest.mark.parametrize(
    ("snap", "scorer", "taken_over"),
    [
        (None, "rules", False),  # an older message: today's read
        (snapshot(T0 - dt.timedelta(seconds=601)), "rules", False),  # a late redelivery: read again
        (snapshot(T0), "model", False),  # a remote model: the replay must find the kept decision
        (snapshot(T0), "rules", True),  # a takeover after a crash: what stands now
    ],
)
def test_the_profile_is_read_when_the_carried_one_cannot_be_used(
    snap: dict[str, Any] | None, scorer: str, taken_over: bool
) -> None:
    db = FakeDb()
    rules = RulesScorer()
    s: Any = rules if scorer == "rules" else type("Model", (), {"name": "model", "score": rules.score})()
    pending = RiskStep(s, budget_s=30, db=lambda: db).carried(SUBJECT, snap, max_age_s=600)
    assert isinstance(pending.read, Carried) == taken_over  # a takeover learns it only after the claim
    pending.decide(taken_over=taken_over)
    assert isinstance(pending.read, ProfileRead)
    assert db.gets == 1
