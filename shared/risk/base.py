"""What the risk step decides about, what a scorer sees, and what it answers."""

from __future__ import annotations

import datetime as dt
import hashlib
from dataclasses import asdict, dataclass
from typing import Any, Literal, Protocol

Verdict = Literal["allow", "review", "block"]
Stage = Literal["charge", "fact"]
SEVERITY: dict[Verdict, int] = {"allow": 0, "review": 1, "block": 2}


def method_key(psp: str, account: str, method_ref: str) -> str:
    """A stable, opaque key of a stored payment method (its PSP token is never stored in risk data)."""
    return hashlib.sha256(f"{psp}:{account}:{method_ref}".encode()).hexdigest()[:32]


@dataclass(frozen=True, slots=True)
class Subject:
    """One charge about to be made (``charge``) or one payment fact received (``fact``).

    ``key`` identifies it for good (the attempt id, the fact key): the decision record's id derives from it,
    so a redelivery finds the first decision instead of recording a second one.
    """

    stage: Stage
    key: str
    psp: str
    account: str
    customer_id: str | None
    method: str | None  # method_key(...), None when the fact does not say
    amount_minor: int | None
    currency: str | None
    at: dt.datetime
    outcome: Literal["attempt", "succeeded", "failed", "pending"] = "attempt"
    ref: str | None = None  # the charge attempt it concerns (its profile entry), when known; else ``key``


@dataclass(frozen=True, slots=True)
class Features:
    """What a scorer may use; all of it from the customer's bounded risk profile (see :mod:`shared.risk.step`)."""

    stage: str
    amount_minor: int
    currency: str
    customer_attempts_24h: int
    method_attempts_24h: int
    customer_declines_7d: int
    customer_paid_count: int  # successful payments in this currency in the profile
    customer_max_paid_minor: int  # the largest of them (0 when none)
    billing_country: str | None
    method_country: str | None

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True, slots=True)
class Decision:
    verdict: Verdict
    reasons: tuple[str, ...] = ()
    scorer: str = "rules"
    score: float | None = None  # a model's probability, when a model decided

    def as_dict(self) -> dict[str, Any]:
        return {"verdict": self.verdict, "reasons": list(self.reasons), "scorer": self.scorer, "score": self.score}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Decision:
        return cls(d["verdict"], tuple(d.get("reasons") or ()), d.get("scorer") or "rules", d.get("score"))


class Scorer(Protocol):
    @property
    def name(self) -> str: ...

    def score(self, features: Features) -> Decision: ...
