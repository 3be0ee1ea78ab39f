"""The risk step around a scorer: features from one profile read, a strict time budget, decisions recorded once.

The profile: ``risk_profiles/c:<customer>`` keeps at most :data:`MAX_EVENTS` recent entries (the oldest are
dropped by the write that adds one), so features never need a query. An entry per charge attempt of ours
(``kind`` ``attempt``, its ``outcome``, the payment method's key ``m`` and the decision ``d``) and one per
payment fact that is not about an attempt of ours (``kind`` = the fact's outcome). Per-method velocity and
the method's country come from the same document (``m`` on entries, ``methods.<key>.country``): a stored
payment method belongs to one customer at the PSP, so one document per customer holds all of it.

Cost of a renewal charge: ONE document read and ONE document write, neither a round trip of its own on the
charge path. The read is normally made by the invoices function, which carries the profile in compact form on
``invoice.finalized`` (:func:`snapshot_of`; the collector decides from it with :meth:`RiskStep.carried`, pure
CPU, while it is at most ``RISK_CARRIED_MAX_AGE_S`` old). Otherwise :meth:`RiskStep.begin` starts the profile
read before the collector claims the attempt, so it overlaps the claim's own round trip; :meth:`Pending.decide`
then finds it there and only runs the rules (microseconds). The decision, with the features it used, is stored
on the charge attempt by the write that completes it (a field of a write the collector makes anyway); the
profile entry is merged in the same commit (:func:`write_charge`). Facts: a webhook's report of a charge the
collector already recorded finds the entry final and answers the charge's decision (one read, no write); a new
fact is scored, its record created in ``risk_decisions`` and its entry merged in one commit.

Exactly once: the charge's entry is keyed by its attempt and committed atomically with the attempt's
completion, which the attempt's claim makes happen once; a redelivery of a fact finds its entry (or loses
the ``create`` of its record to a concurrent copy and reads the winner's decision). A charge whose attempt is
released after a failure keeps its decision in its entry first (:func:`keep_decision`), so the replay reuses
it instead of deciding again; one taken over after a crash may have reached the PSP already, so a ``block``
then only asks for a review (the replay carries the same PSP idempotency key; blocking it would hide money
that may have moved).

Time budget and fail mode: a remote scorer (the model) runs in a worker thread and is waited for at most
``budget_s``; a scorer that fails or runs out of time gives ``allow`` (fail-open, the default: availability
of renewals beats a missed review) or ``block`` (fail-closed, for accounts where a fraudulent charge costs
more than a late one), with reason ``scorer_unavailable:<why>``. The rules scorer runs inline: pure CPU over
at most 50 entries, bounded by construction, and a thread hand-off would cost more than the rules.
Firestore time is not part of the scorer's budget.
"""

from __future__ import annotations

import concurrent.futures
import datetime as dt
import functools
import hashlib
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any

from shared import clients
from shared.log import get_logger
from shared.risk.base import Decision, Features, Scorer, Subject, Verdict
from shared.risk.config import FailMode, RiskSettings, risk_settings

log = get_logger(__name__)

RECORDS = "risk_decisions"
PROFILES = "risk_profiles"
MAX_EVENTS = 50
FINAL = ("succeeded", "failed", "blocked")
_POOL = concurrent.futures.ThreadPoolExecutor(max_workers=8, thread_name_prefix="risk-scorer")
READ_TIMEOUT_S = 10.0


def decision_id(subject: Subject) -> str:
    return hashlib.sha256(f"{subject.stage}:{subject.key}".encode()).hexdigest()


def entry_key(ref: str) -> str:
    """The profile entry of a charge attempt (or of a fact that is not about one): opaque, field-path safe."""
    return hashlib.sha256(ref.encode()).hexdigest()[:24]


@dataclass(frozen=True, slots=True)
class Assessment:
    subject: Subject
    decision: Decision
    decision_id: str
    duplicate: bool = False  # found recorded (a redelivery): nothing to write
    failure: str | None = None  # why the scorer did not answer (then the fail mode decided)
    record: dict[str, Any] | None = None  # the decision with the features it used (what gets stored)
    profile: dict[str, Any] | None = None  # the profile as read (to keep it bounded when writing)

    @property
    def blocked(self) -> bool:
        return self.decision.verdict == "block"


def _events(doc: dict[str, Any] | None) -> list[dict[str, Any]]:
    return list(((doc or {}).get("events") or {}).values())


def method_view(profile: dict[str, Any] | None, method: str | None) -> dict[str, Any] | None:
    """The part of a customer's profile about one payment method (its entries and country)."""
    if not method or profile is None:
        return None
    events = {k: e for k, e in (profile.get("events") or {}).items() if e.get("m") == method}
    return {"country": ((profile.get("methods") or {}).get(method) or {}).get("country"), "events": events}


def _outcome(e: dict[str, Any]) -> Any:
    """A fact entry's kind is its outcome; an attempt entry carries its outcome."""
    return e.get("outcome") if e.get("kind") == "attempt" else e.get("kind")


def features_of(subject: Subject, customer: dict[str, Any] | None, method: dict[str, Any] | None) -> Features:
    """What the scorer sees; pure, from the subject, the customer's profile and its view of the method."""
    day, week = subject.at - dt.timedelta(days=1), subject.at - dt.timedelta(days=7)
    cust = _events(customer)
    paid = [e for e in cust if _outcome(e) == "succeeded" and e.get("currency") == subject.currency]
    return Features(
        stage=subject.stage,
        amount_minor=subject.amount_minor or 0,
        currency=subject.currency or "",
        customer_attempts_24h=sum(1 for e in cust if e.get("kind") == "attempt" and e["t"] > day),
        method_attempts_24h=sum(1 for e in _events(method) if e.get("kind") == "attempt" and e["t"] > day),
        customer_declines_7d=sum(1 for e in cust if _outcome(e) == "failed" and e["t"] > week),
        customer_paid_count=len(paid),
        customer_max_paid_minor=max((int(e.get("amount") or 0) for e in paid), default=0),
        billing_country=(customer or {}).get("billing_country"),
        method_country=(method or {}).get("country"),
    )


def _profile_update(doc: dict[str, Any] | None, event_id: str, event: dict[str, Any]) -> dict[str, Any]:
    """A merge that adds (or completes) entry ``event_id`` and drops the oldest beyond :data:`MAX_EVENTS`."""
    from google.cloud.firestore import DELETE_FIELD

    events: dict[str, Any] = dict((doc or {}).get("events") or {})
    update: dict[str, Any] = {event_id: event}
    if event_id not in events and len(events) >= MAX_EVENTS:
        oldest = sorted(events, key=lambda k: events[k]["t"])[: len(events) - MAX_EVENTS + 1]
        update |= dict.fromkeys(oldest, DELETE_FIELD)
    return {"events": update}


class ProfileRead:
    """The profile read in flight: sent at once on the client's gRPC channel, its answer taken later.

    Why not a worker thread: the request leaves when the step starts (before the claim's own request) and
    gRPC's core receives the answer meanwhile, so no Python thread has to be scheduled on a busy instance.
    It uses the client's internals (the same request the library's ``get`` sends); anything unexpected (a
    library without them, an error on the way) falls back to the library's own ``get`` with its retries, so
    the fast path never costs correctness.
    The read is billed to the delivery that started it (the usage interceptor sees it on the same channel).
    """

    def __init__(self, db: Any, ref: Any) -> None:
        self.db, self.ref, self._call = db, ref, None
        try:
            from google.cloud.firestore_v1.types import BatchGetDocumentsRequest

            req = BatchGetDocumentsRequest(database=db._database_string, documents=[ref._document_path])
            batch_get = db._firestore_api.transport.batch_get_documents
            self._call = batch_get(req, metadata=db._rpc_metadata, timeout=READ_TIMEOUT_S)
        except Exception as exc:  # the fallback reads it when asked
            log.info("risk profile read not started early", extra={"error": type(exc).__name__})

    def result(self) -> dict[str, Any] | None:
        if self._call is not None:
            try:
                from google.cloud.firestore_v1._helpers import decode_dict

                for resp in self._call:
                    which = resp._pb.WhichOneof("result")
                    if which == "found":
                        doc: dict[str, Any] = dict(decode_dict(resp.found.fields, self.db))  # type: ignore[arg-type]
                        return doc
                    if which == "missing":
                        return None
            except Exception as exc:
                log.info("risk profile read failed early; read again", extra={"error": type(exc).__name__})
        snap = self.ref.get()
        return snap.to_dict() if snap.exists else None


_ENTRY_FIELDS = ("t", "kind", "outcome", "amount", "currency", "m")


def snapshot_of(profile: dict[str, Any] | None, method: str | None, read_at: dt.datetime) -> dict[str, Any]:
    """The compact profile a message carries (``shared.events.billing.RiskSnapshot``): what the features and
    the bounded profile write need, without decisions or records."""
    p = profile or {}
    return {
        "read_at": read_at,
        "billing_country": p.get("billing_country"),
        "method_country": (method_view(p, method) or {}).get("country"),
        "events": {k: {f: e.get(f) for f in _ENTRY_FIELDS} for k, e in (p.get("events") or {}).items()},
    }


def profile_of(snapshot: dict[str, Any], method: str | None) -> dict[str, Any]:
    """The profile a carried snapshot stands for (the shape :func:`features_of` and the write read)."""
    methods = {method: {"country": snapshot.get("method_country")}} if method else {}
    return {"billing_country": snapshot.get("billing_country"), "methods": methods, "events": snapshot["events"]}


@dataclass(frozen=True, slots=True)
class Carried:
    """A profile that arrived with the message: nothing to wait for (pure CPU on the charge path)."""

    profile: dict[str, Any]

    def result(self) -> dict[str, Any]:
        return self.profile


@dataclass
class Pending:
    """A charge's decision under way: the profile read started; :meth:`decide` waits for it and scores."""

    step: RiskStep
    subject: Subject
    read: Any  # has ``result()``: a ProfileRead (or None without a customer)

    def decide(self, *, taken_over: bool = False) -> Assessment:
        if taken_over and isinstance(self.read, Carried) and self.subject.customer_id:  # rare: read what stands now
            self.read = ProfileRead(self.step.db(), self.step.profile_ref(self.subject.customer_id))
        profile = self.read.result() if self.read is not None else None
        entry = ((profile or {}).get("events") or {}).get(entry_key(self.subject.ref or self.subject.key)) or {}
        did = decision_id(self.subject)
        if entry.get("kind") == "attempt" and entry.get("rec"):  # kept by a failed try: its replay reuses it
            rec = entry["rec"]
            return Assessment(self.subject, Decision.from_dict(rec["decision"]), did, True, rec.get("failure"), rec)
        a = self.step.decide(self.subject, profile)
        if taken_over and a.blocked:  # the crashed owner may have charged: flag, do not hide it
            d = Decision("review", (*a.decision.reasons, "after_takeover"), a.decision.scorer, a.decision.score)
            a = replace(a, decision=d, record={**(a.record or {}), "decision": d.as_dict()})
        return a


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
        if getattr(self.scorer, "inline", False):
            try:
                return self.scorer.score(features), None
            except Exception as exc:
                return self._failed(type(exc).__name__)
        future = _POOL.submit(self.scorer.score, features)
        try:
            return future.result(timeout=self.budget_s), None
        except TimeoutError:
            return self._failed("timeout")
        except Exception as exc:
            return self._failed(type(exc).__name__)

    def _failed(self, why: str) -> tuple[Decision, str]:
        verdict: Verdict = "allow" if self.fail_mode == "open" else "block"
        return Decision(verdict, (f"scorer_unavailable:{why}",), f"{self.scorer.name}:fail_{self.fail_mode}"), why

    def profile_ref(self, customer_id: str) -> Any:
        return self.db().collection(PROFILES).document(f"c:{customer_id}")

    def _read(self, customer_id: str | None) -> dict[str, Any] | None:
        if not customer_id:
            return None
        snap = self.profile_ref(customer_id).get()
        return snap.to_dict() if snap.exists else None

    def begin(self, subject: Subject) -> Pending:
        """Start reading the subject's profile in the background (the charge path overlaps it with its claim)."""
        if not subject.customer_id:
            return Pending(self, subject, None)
        return Pending(self, subject, ProfileRead(self.db(), self.profile_ref(subject.customer_id)))

    def carried(self, subject: Subject, snapshot: dict[str, Any] | None, max_age_s: float) -> Pending:
        """Decide from the profile carried by the message when it is fresh enough and the scorer is the inline
        rules (a remote model keeps the read: see :func:`shared.risk.gate.start_charge`); else :meth:`begin`."""
        fresh = snapshot is not None and (subject.at - snapshot["read_at"]).total_seconds() <= max_age_s
        if not (fresh and subject.customer_id and getattr(self.scorer, "inline", False)):
            return self.begin(subject)
        assert snapshot is not None
        return Pending(self, subject, Carried(profile_of(snapshot, subject.method)))

    def snapshot(self, customer_id: str, method: str | None, now: dt.datetime) -> dict[str, Any]:
        """Read the customer's profile (one read) into the compact form a message carries."""
        return snapshot_of(self._read(customer_id), method, now)

    def decide(self, subject: Subject, profile: dict[str, Any] | None) -> Assessment:
        """Score ``subject`` against ``profile``: pure CPU for the rules, the budget for a remote scorer."""
        features = features_of(subject, profile, method_view(profile, subject.method))
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
        return Assessment(subject, decision, decision_id(subject), failure=failure, record=record, profile=profile)

    def assess(self, subject: Subject) -> Assessment:
        """A payment fact: decided once (one read; a new fact adds its record and its entry in one commit)."""
        from google.api_core.exceptions import AlreadyExists, Conflict

        profile = self._read(subject.customer_id)
        key = entry_key(subject.ref or subject.key)
        entry = ((profile or {}).get("events") or {}).get(key)
        if (known := standing_decision(subject, entry)) is not None:
            return known
        a = self.decide(subject, profile)
        did = a.decision_id
        db = self.db()
        rec_ref = db.collection(RECORDS).document(did)
        change = fact_change(subject, entry, a.decision.as_dict(), did)
        batch = db.batch()
        batch.create(rec_ref, a.record)
        if subject.customer_id:
            batch.set(self.profile_ref(subject.customer_id), _profile_update(profile, key, change), merge=True)
        try:
            batch.commit()
        except (AlreadyExists, Conflict):  # a concurrent delivery recorded it first: its decision stands
            stored = rec_ref.get().to_dict() or {}
            return Assessment(subject, Decision.from_dict(stored["decision"]), did, duplicate=True)
        return a


def standing_decision(subject: Subject, entry: dict[str, Any] | None) -> Assessment | None:
    """The decision that already stands for a payment fact, from its profile entry (None: decide it).

    It stands when this very fact was decided (``fk``, redelivery) or when the entry already holds this
    outcome or a final one (the PSP's report of what the collector recorded; ``authorized`` then
    ``succeeded``). Then the fact's decision (``fd``, under its id ``fk``) or else the charge's (``d``, under
    the charge's id) is answered again, so ``risk.review_requested`` keeps its event id.
    """
    if entry is None:
        return None
    did = decision_id(subject)
    if entry.get("fk") != did and _outcome(entry) not in (*FINAL, subject.outcome):
        return None
    if entry.get("fk") and entry.get("fd"):
        return Assessment(subject, Decision.from_dict(entry["fd"]), entry["fk"], duplicate=True)
    if entry.get("d"):
        charge = replace(subject, stage="charge", key=subject.ref or subject.key)
        return Assessment(charge, Decision.from_dict(entry["d"]), decision_id(charge), duplicate=True)
    return None


def fact_change(subject: Subject, entry: dict[str, Any] | None, decision: dict[str, Any], did: str) -> dict[str, Any]:
    """What a newly decided fact merges into its profile entry: a new entry, or the outcome of an existing
    one (a pending charge of ours, or a pending fact) with the fact's decision beside the charge's."""
    if entry is None:
        return _entry(subject, "fact", decision) | {"fk": did}
    return {"outcome" if entry.get("kind") == "attempt" else "kind": subject.outcome, "fd": decision, "fk": did}


def _entry(subject: Subject, kind: str, decision: dict[str, Any], outcome: str | None = None) -> dict[str, Any]:
    """A new profile entry: a charge attempt of ours (its decision ``d``) or a fact (its decision ``fd``)."""
    e = {
        "t": subject.at,
        "kind": subject.outcome if kind == "fact" else "attempt",
        "amount": subject.amount_minor,
        "currency": subject.currency,
        "m": subject.method,
    }
    return e | {"outcome": outcome, "d": decision} if kind == "attempt" else e | {"fd": decision}


def write_charge(step: RiskStep, a: Assessment, outcome: str, writer: Any = None) -> None:
    """Merge the charge's profile entry (``outcome``: the PSP's answer, or ``blocked``) into ``writer``, the
    commit that completes the attempt; without a writer, on its own."""
    if not a.subject.customer_id:
        return
    entry = _entry(a.subject, "attempt", a.decision.as_dict(), outcome)
    update = _profile_update(a.profile, entry_key(a.subject.ref or a.subject.key), entry)
    ref = step.profile_ref(a.subject.customer_id)
    if writer is not None:
        writer.set(ref, update, merge=True)
    else:
        ref.set(update, merge=True)


def keep_decision(step: RiskStep, a: Assessment) -> bool:
    """Store a charge's decision before its attempt is released after a failure (the replay reuses it);
    False when that write failed (the caller then keeps the attempt claimed until its lease runs out)."""
    if a.duplicate or not a.subject.customer_id:
        return True
    entry = _entry(a.subject, "attempt", a.decision.as_dict(), None) | {"rec": a.record}
    try:
        step.profile_ref(a.subject.customer_id).set(
            _profile_update(a.profile, entry_key(a.subject.ref or a.subject.key), entry), merge=True
        )
    except Exception as exc:
        log.warning("risk decision not kept; the attempt stays claimed", extra={"error": type(exc).__name__})
        return False
    return True


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
