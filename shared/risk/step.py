"""The risk step around a scorer: features from cheap reads, a strict time budget, one record per subject.

Cost, bounded: ONE batched read (``get_all``) of three documents (the decision record, the customer's
profile, the payment method's profile) and ONE commit (the record created, both profiles merged). Profiles
(``risk_profiles/c:<customer>``, ``risk_profiles/m:<method key>``) keep at most :data:`MAX_EVENTS` recent
events each (attempts and outcomes; the oldest are dropped in the same commit), so features never need a
query. ``billing_country`` on the customer's profile and ``country`` on the method's are read when someone
set them (the country rule is idle until then).

Exactly once: the record ``risk_decisions/<sha256(stage:key)>`` is created in the same commit as the profile
updates; a redelivery finds it in its read and answers the stored decision (a race loses the ``create`` and
reads the winner's), so a decision and its profile events are recorded once however often the subject comes.
The record keeps the features the decision used: the training data of a future model.

Time budget and fail mode: the scorer runs in a worker thread and is waited for at most ``budget_s``; a
scorer that fails or runs out of time gives ``allow`` (fail-open, the default: availability of renewals
beats a missed review) or ``block`` (fail-closed, for accounts where a fraudulent charge costs more than a
late one), with reason ``scorer_unavailable:<why>``. Firestore time is not part of the scorer's budget.
"""

from __future__ import annotations

import concurrent.futures
import datetime as dt
import functools
import hashlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from shared import clients
from shared.risk.base import Decision, Features, Scorer, Subject, Verdict
from shared.risk.config import FailMode, RiskSettings, risk_settings

RECORDS = "risk_decisions"
PROFILES = "risk_profiles"
MAX_EVENTS = 50
_POOL = concurrent.futures.ThreadPoolExecutor(max_workers=8, thread_name_prefix="risk-scorer")


def decision_id(subject: Subject) -> str:
    return hashlib.sha256(f"{subject.stage}:{subject.key}".encode()).hexdigest()


@dataclass(frozen=True, slots=True)
class Assessment:
    subject: Subject
    decision: Decision
    decision_id: str
    duplicate: bool = False  # found recorded (a redelivery): nothing was written
    failure: str | None = None  # why the scorer did not answer (then the fail mode decided)

    @property
    def blocked(self) -> bool:
        return self.decision.verdict == "block"


def _events(doc: dict[str, Any] | None) -> list[dict[str, Any]]:
    return list(((doc or {}).get("events") or {}).values())


def features_of(subject: Subject, customer: dict[str, Any] | None, method: dict[str, Any] | None) -> Features:
    """What the scorer sees; pure, from the subject and the two profiles."""
    day, week = subject.at - dt.timedelta(days=1), subject.at - dt.timedelta(days=7)
    cust = _events(customer)
    paid = [e for e in cust if e.get("kind") == "succeeded" and e.get("currency") == subject.currency]
    return Features(
        stage=subject.stage,
        amount_minor=subject.amount_minor or 0,
        currency=subject.currency or "",
        customer_attempts_24h=sum(1 for e in cust if e.get("kind") == "attempt" and e["t"] > day),
        method_attempts_24h=sum(1 for e in _events(method) if e.get("kind") == "attempt" and e["t"] > day),
        customer_declines_7d=sum(1 for e in cust if e.get("kind") == "failed" and e["t"] > week),
        customer_paid_count=len(paid),
        customer_max_paid_minor=max((int(e.get("amount") or 0) for e in paid), default=0),
        billing_country=(customer or {}).get("billing_country"),
        method_country=(method or {}).get("country"),
    )


def _profile_update(doc: dict[str, Any] | None, event_id: str, event: dict[str, Any]) -> dict[str, Any]:
    """A merge that adds ``event`` and drops the oldest beyond :data:`MAX_EVENTS`."""
    from google.cloud.firestore import DELETE_FIELD

    events: dict[str, Any] = dict((doc or {}).get("events") or {})
    update: dict[str, Any] = {event_id: event}
    if event_id not in events and len(events) >= MAX_EVENTS:
        oldest = sorted(events, key=lambda k: events[k]["t"])[: len(events) - MAX_EVENTS + 1]
        update |= dict.fromkeys(oldest, DELETE_FIELD)
    return {"events": update}


class RiskStep:
    def __init__(
        self,
        scorer: Scorer,
        *,
        budget_s: float,
        fail_mode: FailMode = "open",
        db: Callable[[], Any] = clients.firestore,
    ) -> None:
        self.scorer, self.budget_s, self.fail_mode, self.db = scorer, budget_s, fail_mode, db

    def score(self, features: Features) -> tuple[Decision, str | None]:
        """The scorer's answer within the budget, else the fail mode's (with the reason it applied)."""
        future = _POOL.submit(self.scorer.score, features)
        try:
            return future.result(timeout=self.budget_s), None
        except TimeoutError:
            why = "timeout"
        except Exception as exc:
            why = type(exc).__name__
        verdict: Verdict = "allow" if self.fail_mode == "open" else "block"
        return Decision(verdict, (f"scorer_unavailable:{why}",), f"{self.scorer.name}:fail_{self.fail_mode}"), why

    def assess(self, subject: Subject) -> Assessment:
        from google.api_core.exceptions import AlreadyExists, Conflict

        db = self.db()
        did = decision_id(subject)
        rec_ref = db.collection(RECORDS).document(did)
        refs = {"record": rec_ref}
        if subject.customer_id:
            refs["customer"] = db.collection(PROFILES).document(f"c:{subject.customer_id}")
        if subject.method:
            refs["method"] = db.collection(PROFILES).document(f"m:{subject.method}")
        by_path = {s.reference.path: s for s in db.get_all(list(refs.values()))}
        docs = {k: by_path[r.path].to_dict() if by_path[r.path].exists else None for k, r in refs.items()}
        if docs["record"] is not None:
            return Assessment(subject, Decision.from_dict(docs["record"]["decision"]), did, duplicate=True)
        features = features_of(subject, docs.get("customer"), docs.get("method"))
        decision, failure = self.score(features)
        record = {
            "stage": subject.stage,
            "key": subject.key,
            "psp": subject.psp,
            "account": subject.account,
            "customer_id": subject.customer_id,
            "method": subject.method,
            "outcome": subject.outcome,
            "at": subject.at,
            "features": features.as_dict(),
            "decision": decision.as_dict(),
            "failure": failure,
            "fail_mode": self.fail_mode,
        }
        event = {"t": subject.at, "kind": subject.outcome, "amount": subject.amount_minor, "currency": subject.currency}
        batch = db.batch()
        batch.create(rec_ref, record)
        for name in ("customer", "method"):
            if name in refs:
                batch.set(refs[name], _profile_update(docs.get(name), did[:24], event), merge=True)
        try:
            batch.commit()
        except (AlreadyExists, Conflict):  # a concurrent delivery recorded it first: its decision stands
            stored = rec_ref.get().to_dict() or {}
            return Assessment(subject, Decision.from_dict(stored["decision"]), did, duplicate=True)
        return Assessment(subject, decision, did, failure=failure)


def build(settings: RiskSettings) -> RiskStep | None:
    if settings.scorer == "off":
        return None
    scorer: Scorer
    if settings.scorer == "model":
        from shared.risk.model import HttpModelScorer

        assert settings.model_url is not None
        scorer = HttpModelScorer(
            settings.model_url, settings.timeout_s, settings.review_at, settings.block_at, settings.model_token
        )
    else:
        from shared.risk.rules import RulesScorer

        scorer = RulesScorer()
    return RiskStep(scorer, budget_s=settings.timeout_s, fail_mode=settings.fail_mode)


@functools.lru_cache(maxsize=32)
def _cached(settings: RiskSettings) -> RiskStep | None:
    return build(settings)


def risk_step(account: str = "default") -> RiskStep | None:
    """The account's risk step (None when ``RISK_SCORER=off``); reused while its settings are unchanged."""
    return _cached(risk_settings(account))
