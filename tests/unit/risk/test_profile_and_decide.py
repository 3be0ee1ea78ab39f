"""The one-document profile, the charge decision from it, and redelivery of profile entries (no I/O)."""

from __future__ import annotations

import concurrent.futures
import datetime as dt
import threading
from collections.abc import Iterator
from dataclasses import replace
from types import SimpleNamespace
from typing import Any

from google.cloud.firestore import DELETE_FIELD
from hypothesis import given
from hypothesis import strategies as st

from shared.risk.base import Decision, Features, Subject
from shared.risk.rules import RulesScorer
from shared.risk.step import (
    MAX_EVENTS,
    Pending,
    ProfileRead,
    RiskStep,
    _profile_update,
    decision_id,
    entry_key,
    fact_change,
    features_of,
    method_view,
    standing_decision,
)
from tests.helpers import T0

# A budget no scheduling delay reaches: these tests are about what is decided, not about the time limit
# (tests/unit/risk/test_rules_and_budget.py tests that one with a scorer that never answers in time).
BUDGET_S = 30
SUBJECT = Subject("charge", "inv_1:1", "stripe", "default", "cus_1", "m1", 1000, "EUR", T0, ref="inv_1:1")


def ago(hours: float) -> dt.datetime:
    return T0 - dt.timedelta(hours=hours)


def test_one_profile_gives_customer_and_method_features() -> None:
    profile = {
        "methods": {"m1": {"country": "FR"}},
        "events": {
            "a": {"t": ago(1), "kind": "attempt", "outcome": "succeeded", "m": "m1", "amount": 800, "currency": "EUR"},
            "b": {"t": ago(2), "kind": "attempt", "outcome": "failed", "m": "m2"},
            "c": {"t": ago(3), "kind": "attempt", "outcome": "blocked", "m": "m1"},  # ours: not a decline
            "d": {"t": ago(4), "kind": "failed", "m": None},  # a fact that is not about an attempt of ours
            "e": {"t": ago(5), "kind": "attempt", "outcome": None, "m": "m1"},  # kept before a failed try
        },
    }
    f = features_of(SUBJECT, profile, method_view(profile, "m1"))
    assert (f.customer_attempts_24h, f.method_attempts_24h, f.customer_declines_7d) == (4, 3, 2)
    assert (f.customer_paid_count, f.customer_max_paid_minor, f.method_country) == (1, 800, "FR")
    assert method_view(profile, None) is None
    assert method_view(None, "m1") is None


class Counting:
    """A scorer that counts its calls and answers ``verdict`` (on whichever thread ran it)."""

    name = "counting"

    def __init__(self, verdict: str = "allow") -> None:
        self.verdict, self.calls, self.threads = verdict, 0, set[int]()

    def score(self, features: Features) -> Decision:
        self.calls += 1
        self.threads.add(threading.get_ident())
        return Decision(self.verdict, ("model_score",), self.name, 0.95)  # type: ignore[arg-type]


def pending(step: RiskStep, profile: dict[str, Any] | None) -> Pending:
    read: concurrent.futures.Future[dict[str, Any] | None] = concurrent.futures.Future()
    read.set_result(profile)
    return Pending(step, SUBJECT, read)


def test_a_kept_decision_is_reused_by_the_replay_without_scoring_again() -> None:
    scorer = Counting("block")
    kept = {"decision": {"verdict": "review", "reasons": ["model_score"], "scorer": "model", "score": 0.6}}
    profile = {"events": {entry_key("inv_1:1"): {"t": T0, "kind": "attempt", "outcome": None, "rec": kept}}}
    a = pending(RiskStep(scorer, budget_s=BUDGET_S), profile).decide()
    assert (a.decision.verdict, a.duplicate, a.record, scorer.calls) == ("review", True, kept, 0)
    fresh = pending(RiskStep(scorer, budget_s=BUDGET_S), {"events": {}}).decide()
    assert (fresh.decision.verdict, fresh.duplicate, scorer.calls) == ("block", False, 1)
    assert fresh.record is not None
    assert fresh.record["features"]["amount_minor"] == 1000


def test_a_taken_over_charge_is_never_blocked_only_flagged() -> None:
    a = pending(RiskStep(Counting("block"), budget_s=BUDGET_S), None).decide(taken_over=True)
    assert (a.decision.verdict, a.decision.reasons) == ("review", ("model_score", "after_takeover"))
    assert a.record is not None
    assert a.record["decision"]["verdict"] == "review"


def test_the_rules_run_on_the_callers_thread_and_a_model_in_a_worker() -> None:
    step = RiskStep(RulesScorer(), budget_s=BUDGET_S)
    assert step.score(features_of(SUBJECT, None, None))[0].verdict == "allow"
    model = Counting()
    RiskStep(model, budget_s=BUDGET_S).score(features_of(SUBJECT, None, None))
    assert model.threads
    assert threading.get_ident() not in model.threads
    inline = Counting()
    inline.inline = True  # type: ignore[attr-defined]
    RiskStep(inline, budget_s=BUDGET_S).score(features_of(SUBJECT, None, None))
    assert inline.threads == {threading.get_ident()}


def merge(doc: dict[str, Any], update: dict[str, Any]) -> dict[str, Any]:
    """What Firestore's ``set(..., merge=True)`` does to the ``events`` map (one level of entries)."""
    events = dict(doc.get("events") or {})
    for k, v in update["events"].items():
        if v is DELETE_FIELD:
            events.pop(k, None)
        else:
            events[k] = {**events.get(k, {}), **v}
    return {"events": events}


@given(st.lists(st.integers(min_value=0, max_value=80), max_size=200))
def test_redelivered_entries_count_once_and_the_profile_stays_bounded(ids: list[int]) -> None:
    doc: dict[str, Any] = {"events": {}}
    for i in ids:  # entry i happened at minute i; a repeated i is a redelivery of the same charge
        doc = merge(doc, _profile_update(doc, f"e{i}", {"t": T0 + dt.timedelta(minutes=i), "kind": "attempt"}))
        assert len(doc["events"]) <= MAX_EVENTS
    kept = set(doc["events"])
    assert kept <= {f"e{i}" for i in ids}
    if len(set(ids)) <= MAX_EVENTS:
        assert kept == {f"e{i}" for i in ids}  # every charge once, none twice (keys are per charge)


class Ref:
    """A document reference whose library ``get`` answers ``doc``."""

    _document_path = "projects/p/databases/(default)/documents/risk_profiles/c:1"

    def __init__(self, doc: dict[str, Any] | None) -> None:
        self.doc, self.gets = doc, 0

    def get(self) -> Any:
        self.gets += 1
        return SimpleNamespace(exists=self.doc is not None, to_dict=lambda: self.doc)


class BrokenStream:
    """A client whose early read starts but fails when its answer is taken."""

    _database_string = "projects/p/databases/(default)"
    _rpc_metadata: tuple[tuple[str, str], ...] = ()

    def __init__(self) -> None:
        def answers() -> Iterator[Any]:
            raise ConnectionError("stream reset")
            yield  # a generator: the error comes when the answer is taken

        self._firestore_api = SimpleNamespace(transport=SimpleNamespace(batch_get_documents=lambda *a, **kw: answers()))


def test_the_early_read_falls_back_to_the_librarys_get() -> None:
    ref = Ref({"events": {}})
    assert ProfileRead(object(), ref).result() == {"events": {}}  # a client without the internals
    assert ref.gets == 1
    ref = Ref(None)
    early = ProfileRead(BrokenStream(), ref)
    assert early._call is not None  # started early ...
    assert early.result() is None  # ... and failed on the way: read again
    assert ref.gets == 1


FACT = Subject(
    "fact", "stripe:default:pi_1:succeeded", "stripe", "default", "cus_1", None, 1000, "EUR", T0, "succeeded", "inv_1:1"
)
CHARGE_D = {"verdict": "review", "reasons": ["amount_spike"], "scorer": "rules", "score": None}
FACT_D = {"verdict": "block", "reasons": ["decline_burst"], "scorer": "rules", "score": None}


def test_the_report_of_a_recorded_charge_answers_the_charges_decision_under_its_id() -> None:
    for outcome in ("succeeded", "failed", "blocked"):
        entry = {"kind": "attempt", "outcome": outcome, "d": CHARGE_D}
        a = standing_decision(FACT, entry)
        assert a is not None
        assert (a.decision.verdict, a.duplicate, a.subject.stage) == ("review", True, "charge")
        assert a.decision_id == decision_id(replace(FACT, stage="charge", key="inv_1:1"))


def test_a_new_outcome_is_decided_and_its_redelivery_answers_that_decision() -> None:
    pending = {"kind": "attempt", "outcome": "pending", "d": CHARGE_D}
    kept = {"kind": "attempt", "outcome": None, "d": CHARGE_D}  # kept before a failed try
    assert standing_decision(FACT, pending) is None
    assert standing_decision(FACT, kept) is None
    assert standing_decision(FACT, None) is None
    did = decision_id(FACT)
    change = fact_change(FACT, pending, FACT_D, did)
    assert change == {"outcome": "succeeded", "fd": FACT_D, "fk": did}
    a = standing_decision(FACT, pending | change)
    assert a is not None
    assert (a.decision.verdict, a.decision_id, a.subject.stage) == ("block", did, "fact")
    authorized = replace(FACT, key="stripe:default:pi_1:authorized")  # another report of the same outcome
    b = standing_decision(authorized, pending | change)
    assert b is not None
    assert (b.decision.verdict, b.decision_id) == ("block", did)


def test_a_fact_that_is_not_about_a_charge_of_ours_gets_its_own_entry() -> None:
    did = decision_id(FACT)
    new = fact_change(FACT, None, FACT_D, did)
    assert (new["kind"], new["fd"], new["fk"], "d" in new) == ("succeeded", FACT_D, did, False)
    pending_fact = {"kind": "pending", "fd": FACT_D, "fk": "other"}
    assert standing_decision(FACT, pending_fact) is None  # pending -> succeeded: decided again
    assert fact_change(FACT, pending_fact, FACT_D, did) == {"kind": "succeeded", "fd": FACT_D, "fk": did}
