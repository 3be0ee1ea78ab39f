"""The rules scorer, the features, the model's answer parsing and the scorer's time budget (no I/O)."""

from __future__ import annotations

import datetime as dt
import threading
from dataclasses import replace

import pytest

from shared.risk.base import Decision, Features, Subject
from shared.risk.model import ModelError, _probability
from shared.risk.rules import RulesScorer
from shared.risk.step import MAX_EVENTS, RiskStep, _profile_update, features_of
from tests.helpers import T0

BASE = Features(
    stage="charge",
    amount_minor=1000,
    currency="EUR",
    customer_attempts_24h=0,
    method_attempts_24h=0,
    customer_declines_7d=0,
    customer_paid_count=0,
    customer_max_paid_minor=0,
    billing_country=None,
    method_country=None,
)
RULES = RulesScorer()


def test_a_quiet_customer_is_allowed() -> None:
    assert RULES.score(BASE) == Decision("allow", (), "rules")


@pytest.mark.parametrize(
    ("change", "verdict", "reason"),
    [
        ({"customer_attempts_24h": 6}, "review", "customer_velocity"),
        ({"customer_attempts_24h": 21}, "block", "customer_velocity"),
        ({"method_attempts_24h": 6}, "review", "method_velocity"),
        ({"method_attempts_24h": 21}, "block", "method_velocity"),
        ({"customer_declines_7d": 3}, "review", "decline_burst"),
        ({"customer_declines_7d": 6}, "block", "decline_burst"),
        ({"billing_country": "DE", "method_country": "BR"}, "review", "country_mismatch"),
        ({"customer_paid_count": 4, "customer_max_paid_minor": 300}, "review", "amount_spike"),
        ({"customer_paid_count": 4, "customer_max_paid_minor": 90}, "block", "amount_spike"),
    ],
)
def test_each_rule(change: dict[str, object], verdict: str, reason: str) -> None:
    d = RULES.score(replace(BASE, **change))  # type: ignore[arg-type]
    assert (d.verdict, d.reasons) == (verdict, (reason,))


def test_rules_below_their_thresholds_allow() -> None:
    quiet = replace(
        BASE,
        customer_attempts_24h=5,
        method_attempts_24h=5,
        customer_declines_7d=2,
        billing_country="DE",
        method_country="DE",
        customer_paid_count=1,
        customer_max_paid_minor=334,
    )
    assert RULES.score(quiet).verdict == "allow"


def test_the_worst_rule_decides_and_every_reason_is_kept() -> None:
    d = RULES.score(replace(BASE, customer_attempts_24h=25, billing_country="DE", method_country="FR"))
    assert (d.verdict, d.reasons) == ("block", ("customer_velocity", "country_mismatch"))


def test_features_come_from_the_profiles_within_their_windows() -> None:
    def ev(kind: str, hours: float, amount: int = 1000, currency: str = "EUR") -> dict[str, object]:
        return {"t": T0 - dt.timedelta(hours=hours), "kind": kind, "amount": amount, "currency": currency}

    customer = {
        "billing_country": "DE",
        "events": {
            "a": ev("attempt", 1),
            "b": ev("attempt", 30),  # outside 24 h
            "c": ev("failed", 48),
            "d": ev("failed", 24 * 8),  # outside 7 days
            "e": ev("succeeded", 24 * 40, 2500),
            "f": ev("succeeded", 24 * 70, 9000, "USD"),  # another currency
        },
    }
    method = {"country": "FR", "events": {"x": ev("attempt", 2), "y": ev("attempt", 3)}}
    subject = Subject("charge", "inv_1:1", "stripe", "default", "cus_1", "m1", 7000, "EUR", T0)
    f = features_of(subject, customer, method)
    assert (f.customer_attempts_24h, f.method_attempts_24h, f.customer_declines_7d) == (1, 2, 1)
    assert (f.customer_paid_count, f.customer_max_paid_minor) == (1, 2500)
    assert (f.billing_country, f.method_country) == ("DE", "FR")
    assert features_of(subject, None, None) == replace(BASE, amount_minor=7000)


def test_profiles_stay_bounded() -> None:
    from google.cloud.firestore import DELETE_FIELD

    events = {f"e{i:02d}": {"t": T0 + dt.timedelta(minutes=i)} for i in range(MAX_EVENTS)}
    update = _profile_update({"events": events}, "new", {"t": T0 + dt.timedelta(days=1)})
    assert update["events"]["new"] == {"t": T0 + dt.timedelta(days=1)}
    assert update["events"]["e00"] is DELETE_FIELD
    assert len(update["events"]) == 2
    assert _profile_update({"events": events}, "e05", {"t": T0})["events"] == {"e05": {"t": T0}}  # a redelivery


@pytest.mark.parametrize(
    ("body", "p"),
    [
        ({"predictions": [0.7]}, 0.7),
        ({"predictions": [{"score": 0.2}]}, 0.2),
        ({"predictions": [{"probability": 1}]}, 1.0),
        ({"predictions": [{"scores": [0.9, 0.1]}]}, 0.1),
    ],
)
def test_the_model_answer_is_read_in_vertex_shape(body: object, p: float) -> None:
    assert _probability(body) == p


@pytest.mark.parametrize("body", [{}, {"predictions": []}, {"predictions": ["x"]}, {"predictions": [1.5]}, []])
def test_a_model_answer_that_is_not_a_prediction_is_an_error(body: object) -> None:
    with pytest.raises(ModelError):
        _probability(body)


class Stuck:
    """A scorer that answers only when released (or after 5 s): the budget must not wait for it."""

    name = "stuck"

    def __init__(self) -> None:
        self.release = threading.Event()

    def score(self, features: Features) -> Decision:
        self.release.wait(5)
        return Decision("allow", (), self.name)


class Broken:
    name = "broken"

    def score(self, features: Features) -> Decision:
        raise ConnectionError("model down")


@pytest.mark.parametrize(("mode", "verdict"), [("open", "allow"), ("closed", "block")])
def test_the_time_budget_is_honoured_with_the_accounts_fail_mode(mode: str, verdict: str) -> None:
    stuck = Stuck()
    step = RiskStep(stuck, budget_s=0.05, fail_mode=mode)  # type: ignore[arg-type]
    try:
        decision, failure = step.score(BASE)
        assert failure == "timeout"
        assert not stuck.release.is_set()  # it gave up while the scorer was still working
        assert decision == Decision(verdict, ("scorer_unavailable:timeout",), f"stuck:fail_{mode}")  # type: ignore[arg-type]
    finally:
        stuck.release.set()


@pytest.mark.parametrize(("mode", "verdict"), [("open", "allow"), ("closed", "block")])
def test_a_failing_scorer_takes_the_fail_mode(mode: str, verdict: str) -> None:
    decision, failure = RiskStep(Broken(), budget_s=1, fail_mode=mode).score(BASE)  # type: ignore[arg-type]
    assert (decision.verdict, decision.reasons, failure) == (
        verdict,
        ("scorer_unavailable:ConnectionError",),
        "ConnectionError",
    )
