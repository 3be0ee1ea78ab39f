"""Disputes, pure: the monotonic state machine, normalised reasons and the deadline alert rule.

Why a fold over observations instead of a transition table: PSPs deliver dispute notifications late,
twice and out of order (a ``won`` may overtake the ``needs_response`` it answers). Each notification is an
:class:`Observation` with an order key (stage, rank of its status, PSP time, status name); the dispute's
state is the observation with the greatest key, and every other field (amount, reason, evidence due time)
comes from the greatest observation that carries it. A maximum over a total order does not depend on the
order it is taken in and never decreases, so no delivery order can regress a dispute.

Stages: a chargeback can be followed by pre-arbitration (the issuer or the merchant escalates after the
first outcome), so ``pre_arbitration`` ranks above every chargeback status, outcomes included. Within a
stage, two outcomes (a ``lost`` after a ``won``: Adyen's debit after a reversal) are ordered by the PSP's
time: the later one is the outcome.
"""

from __future__ import annotations

import datetime as dt
import enum
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace
from typing import Any


class Status(enum.StrEnum):
    OPENED = "opened"  # notified (inquiry / notification of chargeback): nothing to answer yet
    NEEDS_RESPONSE = "needs_response"  # evidence awaited by the due time
    UNDER_REVIEW = "under_review"  # evidence submitted
    PRE_ARBITRATION = "pre_arbitration"  # escalated after the first cycle
    WON = "won"
    LOST = "lost"
    ACCEPTED = "accepted"  # we (or the PSP on our behalf) accepted the loss
    EXPIRED = "expired"  # not answered in time: a loss without a defence


class Stage(enum.StrEnum):
    CHARGEBACK = "chargeback"
    PRE_ARBITRATION = "pre_arbitration"


TERMINAL = frozenset({Status.WON, Status.LOST, Status.ACCEPTED, Status.EXPIRED})
LOSSES = frozenset({Status.LOST, Status.ACCEPTED, Status.EXPIRED})
_RANK = {
    Status.OPENED: 0,
    Status.NEEDS_RESPONSE: 1,
    Status.PRE_ARBITRATION: 1,
    Status.UNDER_REVIEW: 2,
    Status.WON: 3,
    Status.LOST: 3,
    Status.ACCEPTED: 3,
    Status.EXPIRED: 3,
}
_STAGE_RANK = {Stage.CHARGEBACK: 0, Stage.PRE_ARBITRATION: 1}


class Reason(enum.StrEnum):
    """Normalised dispute reasons (Stripe's categories, which the other PSPs' reasons map onto)."""

    FRAUDULENT = "fraudulent"
    PRODUCT_NOT_RECEIVED = "product_not_received"
    DUPLICATE = "duplicate"
    SUBSCRIPTION_CANCELED = "subscription_canceled"
    CREDIT_NOT_PROCESSED = "credit_not_processed"
    PRODUCT_UNACCEPTABLE = "product_unacceptable"
    UNRECOGNIZED = "unrecognized"
    GENERAL = "general"


R = Reason
# Card scheme reason codes (Visa, Mastercard, Amex, Discover), as Adyen and Checkout.com pass them on.
SCHEME_CODES: Mapping[str, Reason] = {
    **dict.fromkeys(("10.1", "10.2", "10.3", "10.4", "10.5", "4837", "4840", "4849", "4870", "4871"), R.FRAUDULENT),
    **dict.fromkeys(("F24", "F29", "UA01", "UA02", "UA05", "UA06", "7030"), R.FRAUDULENT),
    **dict.fromkeys(("13.1", "4855", "C08", "4755"), R.PRODUCT_NOT_RECEIVED),
    **dict.fromkeys(("12.6.1", "12.6.2", "4834", "P08", "4534"), R.DUPLICATE),
    **dict.fromkeys(("13.2", "4841", "C28", "4541"), R.SUBSCRIPTION_CANCELED),
    **dict.fromkeys(("13.6", "13.7", "4860", "C02", "4514"), R.CREDIT_NOT_PROCESSED),
    **dict.fromkeys(("13.3", "13.4", "13.5", "4853", "C31", "C32", "4553"), R.PRODUCT_UNACCEPTABLE),
    **dict.fromkeys(("4863", "F22", "4586"), R.UNRECOGNIZED),
}
PSP_REASONS: Mapping[str, Mapping[str, Reason]] = {
    "stripe": {
        **{r.value: r for r in Reason},
        "debit_not_authorized": R.FRAUDULENT,
    },
    "paypal": {
        "MERCHANDISE_OR_SERVICE_NOT_RECEIVED": R.PRODUCT_NOT_RECEIVED,
        "MERCHANDISE_OR_SERVICE_NOT_AS_DESCRIBED": R.PRODUCT_UNACCEPTABLE,
        "UNAUTHORISED": R.FRAUDULENT,
        "CREDIT_NOT_PROCESSED": R.CREDIT_NOT_PROCESSED,
        "DUPLICATE_TRANSACTION": R.DUPLICATE,
        "PAYMENT_BY_OTHER_MEANS": R.DUPLICATE,
        "CANCELED_RECURRING_BILLING": R.SUBSCRIPTION_CANCELED,
    },
    "braintree": {
        "cancelled_recurring_transaction": R.SUBSCRIPTION_CANCELED,
        "credit_not_processed": R.CREDIT_NOT_PROCESSED,
        "duplicate": R.DUPLICATE,
        "fraud": R.FRAUDULENT,
        "not_recognized": R.UNRECOGNIZED,
        "product_not_received": R.PRODUCT_NOT_RECEIVED,
        "product_unsatisfactory": R.PRODUCT_UNACCEPTABLE,
    },
    "gocardless": {
        "authorisation_disputed": R.UNRECOGNIZED,
        "AM04": R.GENERAL,
        "MD01": R.UNRECOGNIZED,  # SEPA: no mandate
        "MD06": R.GENERAL,  # SEPA: refund requested by the debtor (no reason needed)
        "ADDACS-1": R.UNRECOGNIZED,
        "ARUDD-0": R.GENERAL,
    },
}
# Free-text reasons (Adyen's ``reason``, Checkout.com's category) by keyword, after the codes.
_KEYWORDS: tuple[tuple[str, Reason], ...] = (
    ("fraud", R.FRAUDULENT),
    ("unauthori", R.FRAUDULENT),
    ("not received", R.PRODUCT_NOT_RECEIVED),
    ("not_received", R.PRODUCT_NOT_RECEIVED),
    ("duplicate", R.DUPLICATE),
    ("recurring", R.SUBSCRIPTION_CANCELED),
    ("cancel", R.SUBSCRIPTION_CANCELED),
    ("credit", R.CREDIT_NOT_PROCESSED),
    ("not as described", R.PRODUCT_UNACCEPTABLE),
    ("not_as_described", R.PRODUCT_UNACCEPTABLE),
    ("no_authori", R.FRAUDULENT),
    ("defective", R.PRODUCT_UNACCEPTABLE),
    ("unsatisf", R.PRODUCT_UNACCEPTABLE),
    ("unrecogni", R.UNRECOGNIZED),
)


def normalise_reason(psp: str, *candidates: str | None) -> Reason:
    """The normalised reason of the first candidate that means something (codes, then words); else general.

    Candidates are the PSP's own fields, most specific first (e.g. Adyen: scheme code, then reason text).
    """
    table = PSP_REASONS.get(psp, {})
    for c in candidates:
        if not c:
            continue
        code = c.strip()
        if code in table:
            return table[code]
        if code in SCHEME_CODES:
            return SCHEME_CODES[code]
        low = code.lower()
        if low in table:
            return table[low]
        for word, reason in _KEYWORDS:
            if word in low:
                return reason
    return R.GENERAL


# -- the state machine -----------------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class Observation:
    """What one notification (or an operator action) says about a dispute at the PSP's time ``at``."""

    status: Status
    at: dt.datetime
    stage: Stage = Stage.CHARGEBACK
    amount: int | None = None
    currency: str | None = None
    reason_code: str | None = None
    reason: Reason | None = None
    due_by: dt.datetime | None = None

    def __post_init__(self) -> None:
        if self.at.tzinfo is None or (self.due_by is not None and self.due_by.tzinfo is None):
            raise ValueError("dispute times must be timezone-aware")
        if self.status is Status.PRE_ARBITRATION and self.stage is not Stage.PRE_ARBITRATION:
            object.__setattr__(self, "stage", Stage.PRE_ARBITRATION)

    def key(self) -> tuple[int, int, dt.datetime, str]:
        """The total order of observations: stage, status rank, PSP time, status name (tie-break)."""
        return (_STAGE_RANK[self.stage], _RANK[self.status], self.at, self.status.value)


Key = tuple[int, int, dt.datetime, str]
_FIELDS = ("amount", "reason_code", "reason", "due_by")


@dataclass(frozen=True, slots=True)
class Dispute:
    """A dispute's state: the greatest observation, and each field from the greatest one carrying it."""

    status: Status
    stage: Stage
    key: Key
    amount: int | None = None
    currency: str | None = None
    reason_code: str | None = None
    reason: Reason | None = None
    due_by: dt.datetime | None = None
    field_keys: tuple[tuple[str, Key], ...] = ()

    @property
    def open(self) -> bool:
        return self.status not in TERMINAL

    @property
    def outcome(self) -> str | None:
        """``won`` / ``lost`` once decided (accepted and expired are losses), else None."""
        if self.status is Status.WON:
            return "won"
        return "lost" if self.status in LOSSES else None

    def apply(self, obs: Observation) -> Dispute:
        """This dispute after ``obs`` (commutative and idempotent: see the module docstring)."""
        k = obs.key()
        keys = dict(self.field_keys)
        out = self if k <= self.key else replace(self, status=obs.status, stage=obs.stage, key=k)
        changes: dict[str, Any] = {}
        for name in _FIELDS:
            value = getattr(obs, name)
            if value is None:
                continue
            held = keys.get(name)
            # Equal keys (two notifications of one status at one instant): the greater value, so the
            # choice does not depend on which arrived first.
            if held is None or k > held or (k == held and _tie(obs, name) > _tie(self, name)):
                keys[name] = k
                changes[name] = value
                if name == "amount":
                    changes["currency"] = obs.currency
        if not changes:
            return out
        return replace(out, **changes, field_keys=tuple(sorted(keys.items())))


def _tie(x: Observation | Dispute, name: str) -> str:
    v = getattr(x, name)
    if name == "amount":
        return f"{v:020d}{x.currency}" if v is not None else ""
    return v.isoformat() if isinstance(v, dt.datetime) else str(v or "")


def start(obs: Observation) -> Dispute:
    return Dispute(status=obs.status, stage=obs.stage, key=obs.key()).apply(obs)


def fold(observations: Iterable[Observation]) -> Dispute:
    """The dispute the observations describe, whatever their order (at least one is needed)."""
    it = iter(observations)
    d = start(next(it))
    for o in it:
        d = d.apply(o)
    return d


# -- persistence shape (pure) ---------------------------------------------------------------------------
def _key_out(k: Key) -> list[Any]:
    return [k[0], k[1], k[2].isoformat(), k[3]]


def _key_in(v: Any) -> Key:
    return (int(v[0]), int(v[1]), dt.datetime.fromisoformat(str(v[2])), str(v[3]))


def to_doc(d: Dispute) -> dict[str, Any]:
    """The fields a dispute document stores (times as datetimes, the order keys as lists)."""
    return {
        "status": d.status.value,
        "stage": d.stage.value,
        "open": d.open,
        "outcome": d.outcome,
        "amount": d.amount,
        "currency": d.currency,
        "reason_code": d.reason_code,
        "reason": d.reason.value if d.reason else None,
        "due_by": d.due_by,
        "order": {"state": _key_out(d.key), **{n: _key_out(k) for n, k in d.field_keys}},
    }


def from_doc(doc: Mapping[str, Any]) -> Dispute:
    order = dict(doc["order"])
    state = _key_in(order.pop("state"))
    due = doc.get("due_by")
    return Dispute(
        status=Status(doc["status"]),
        stage=Stage(doc["stage"]),
        key=state,
        amount=doc.get("amount"),
        currency=doc.get("currency"),
        reason_code=doc.get("reason_code"),
        reason=Reason(doc["reason"]) if doc.get("reason") else None,
        due_by=due.astimezone(dt.UTC) if isinstance(due, dt.datetime) else None,
        field_keys=tuple(sorted((n, _key_in(v)) for n, v in order.items())),
    )


# -- deadlines ------------------------------------------------------------------------------------------
ALERT_HOURS = (72, 24)  # alerts before the evidence due time, loosest first


def alert_due(due_by: dt.datetime | None, now: dt.datetime) -> int | None:
    """The alert threshold (hours) to raise at ``now``: the tightest one crossed before the due time.

    Only the tightest: a dispute first seen with 30 h left gets the 72 h alert at once and the 24 h one
    later; one first seen with 10 h left gets the 24 h alert only, not a stale 72 h one as well. None once
    the due time has passed (nothing left to warn about).
    """
    if due_by is None or now >= due_by:
        return None
    crossed = [h for h in ALERT_HOURS if now >= due_by - dt.timedelta(hours=h)]
    return min(crossed) if crossed else None


def event_fields(
    psp: str,
    *reasons: str | None,
    reason_code: str | None = None,
    due_by: dt.datetime | None = None,
    psp_status: str | None = None,
) -> dict[str, Any]:
    """The dispute fields every PSP adapter adds to a canonical dispute event (one rule for six mappings).

    ``reasons``: the PSP's reason fields, most meaningful first; ``reason_code`` is tried after them.
    """
    code = reason_code.strip() if reason_code and reason_code.strip() else None
    return {
        "reason_code": code,
        "normalised_reason": normalise_reason(psp, *reasons, code).value,
        "evidence_due_by": due_by,
        "psp_status": psp_status[:64] if psp_status else None,
    }
