"""Console actions: one guard for all of them, and the operator services behind each.

Why one guard: an action taken from a browser can be double-clicked, replayed by the back button, forged
by another site or typed with a mistake. Every action therefore (1) is a form POST whose CSRF token is
checked (:mod:`shared.console.auth`), (2) is validated as strictly as the APIs (bounded :mod:`shared.edge`
types, ``extra="forbid"``, an explicit confirmation), (3) runs at most once per idempotency key: the key
(a random value put in the confirmation form) is a claim of the one claim primitive
(:mod:`shared.idempotency.claims`, payload hash checked, so the same key cannot carry another action),
and (4) leaves ONE audit entry ``console_audit/<claim id>`` (who, what, when, before, after, outcome),
written with ``create()`` in the same commit that completes the claim. Nothing in the console updates or
deletes an audit entry: the log is append-only.

The actions call the services the operator commands use (invoices: :class:`InvoiceService`; dead
letters: :class:`shared.events.deadletters.DeadLetters`; reconciliation: :class:`Reconciler`; disputes:
:class:`DisputeService`); a refusal of the service (a transition the invoice does not allow, an unknown
id) is an outcome that is audited too, not an error.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Annotated, Any, Literal
from urllib.parse import parse_qsl

from pydantic import BaseModel, ConfigDict, StringConstraints, ValidationError

from shared.edge import EdgeError, FirestoreId, read_body
from shared.idempotency.claims import Claims, Outcome, Schema
from shared.idempotency.exceptions import IdempotencyPayloadMismatchError
from shared.log import get_logger
from shared.scrub import scrub_value

log = get_logger(__name__)

ACTIONS = "console_actions"
AUDIT = "console_audit"
MAX_FORM_BYTES = 16 * 1024
CLAIMS = Claims(Schema(hash_attr="payload_hash"), lease_s=120)

Reason = Annotated[str, StringConstraints(strip_whitespace=True, min_length=3, max_length=500)]
IdempotencyKey = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9_-]{16,64}$")]
SubscriptionName = Annotated[str, StringConstraints(pattern=r"^[a-z][a-z0-9-]{2,200}$")]
DisputeKey = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9_.:~-]{1,256}$")]


class _Form(BaseModel):
    # defer_build: validators are built by the first action, not at import (a cold console's first page is a read).
    model_config = ConfigDict(extra="forbid", frozen=True, defer_build=True)


class InvoiceAction(_Form):
    invoice_id: FirestoreId
    reason: Reason


class ReplayDeadLetters(_Form):
    subscription: SubscriptionName
    message_id: Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9_-]{1,100}$")] | None = None  # None: all


class ResolveException(_Form):
    exception_id: FirestoreId
    reason: Reason


class AcceptDispute(_Form):
    key: DisputeKey


class Envelope(_Form):
    """What every action form carries besides its fields."""

    csrf_token: Annotated[str, StringConstraints(max_length=100)]
    idempotency_key: IdempotencyKey
    confirm: Literal["yes"]


MODELS: dict[str, type[_Form]] = {
    "invoice.void": InvoiceAction,
    "invoice.uncollectible": InvoiceAction,
    "invoice.mark_paid": InvoiceAction,
    "deadletters.replay": ReplayDeadLetters,
    "reconciliation.resolve": ResolveException,
    "dispute.accept": AcceptDispute,
}
_ENVELOPE = set(Envelope.model_fields)


class Refused(Exception):
    """The service said no (a transition not allowed, an unknown id): audited as ``refused``."""


def read_form(request: Any) -> dict[str, str]:
    """The urlencoded body as single-valued fields: 415 another type, 413 too large, 422 a repeated field."""
    if request.mimetype != "application/x-www-form-urlencoded":
        raise EdgeError(415, "unsupported_media_type", "send a form (application/x-www-form-urlencoded)")
    raw = read_body(request, MAX_FORM_BYTES)
    try:
        pairs = parse_qsl(raw.decode("utf-8"), keep_blank_values=True, strict_parsing=False, max_num_fields=20)
    except (UnicodeDecodeError, ValueError) as exc:
        raise EdgeError(400, "malformed_form", "the form could not be read") from exc
    form: dict[str, str] = {}
    for k, v in pairs:
        if k in form:
            raise EdgeError(422, "invalid_request", f"field {k!r} given more than once")
        form[k] = v
    return form


def validate(kind: str, form: dict[str, str]) -> tuple[Envelope, _Form]:
    """The envelope and the action's fields, each validated strictly (422 with pydantic's errors, no input)."""
    model = MODELS.get(kind)
    if model is None:
        raise EdgeError(404, "unknown_action", "no such action")
    fields = {k: v for k, v in form.items() if k not in _ENVELOPE}
    if isinstance(fields.get("message_id"), str) and not fields["message_id"]:
        fields.pop("message_id")  # "replay all" posts an empty message id
    try:
        envelope = Envelope.model_validate({k: form.get(k) for k in _ENVELOPE if k in form})
        action = model.model_validate(fields)
    except ValidationError as exc:
        detail = exc.errors(include_url=False, include_context=False, include_input=False)
        raise EdgeError(422, "invalid_request", detail) from exc
    return envelope, action


# -- the services ---------------------------------------------------------------------------------


@dataclass
class Services:
    """The operator services the actions call, built lazily (tests hand in their own)."""

    db: Any
    project: str
    deadletters: Any = None
    invoices: Any = None
    reconciler: Any = None
    disputes: Any = None
    now: Callable[[], dt.datetime] = field(default=lambda: dt.datetime.now(dt.UTC))

    def invoice_service(self) -> Any:
        if self.invoices is None:
            from shared.invoicing.service import InvoiceService

            self.invoices = InvoiceService(db=self.db)
        return self.invoices

    def dead_letters(self) -> Any:
        if self.deadletters is None:
            from shared.events.deadletters import DeadLetters

            self.deadletters = DeadLetters(self.project, pull_timeout_s=5.0)
        return self.deadletters

    def reconciliation(self) -> Any:
        if self.reconciler is None:
            from shared.reconciliation.service import Reconciler

            self.reconciler = Reconciler(db=self.db)
        return self.reconciler

    def dispute_service(self) -> Any:
        if self.disputes is None:
            from shared.disputes.service import DisputeService

            self.disputes = DisputeService()
        return self.disputes


_INVOICE_KEYS: tuple[str, ...] = ("status", "amount_due", "total", "credited", "paid_at", "paid_by", "paid_reason")
_INVOICE_KEYS += ("void_at", "void_reason", "uncollectible_at", "uncollectible_reason", "number")


def _pick(doc: dict[str, Any] | None, keys: tuple[str, ...]) -> dict[str, Any] | None:
    return None if doc is None else {k: doc[k] for k in keys if k in doc}


def snapshot(svc: Services, kind: str, action: _Form) -> Any:
    """The target as the audit entry records it before and after the action."""
    if isinstance(action, InvoiceAction):
        snap = svc.db.collection("invoices").document(action.invoice_id).get()
        return _pick(snap.to_dict() if snap.exists else None, _INVOICE_KEYS)
    if isinstance(action, ReplayDeadLetters):
        from google.api_core.exceptions import NotFound

        try:
            letters = svc.dead_letters().list(action.subscription, 100)
        except NotFound:
            return None
        return {"dead_letters": sorted(d.message_id for d in letters)}
    if isinstance(action, ResolveException):
        snap = svc.db.collection("recon_exceptions").document(action.exception_id).get()
        return _pick(snap.to_dict() if snap.exists else None, ("status", "kind", "impact", "resolution"))
    if isinstance(action, AcceptDispute):
        return _pick(svc.dispute_service().get(action.key), ("status", "stage", "due_by", "amount", "currency"))
    return None


def run(svc: Services, kind: str, action: _Form, who: str) -> dict[str, Any]:
    """Call the service behind ``kind``; :class:`Refused` when it declines."""
    from google.api_core.exceptions import NotFound

    from shared.domain.disputes import Status
    from shared.domain.invoices import InvoiceError

    try:
        if isinstance(action, InvoiceAction):
            reason = f"{action.reason} (console: {who})"
            inv = svc.invoice_service()
            call = {"invoice.void": inv.void, "invoice.uncollectible": inv.mark_uncollectible}.get(kind, inv.mark_paid)
            done = call(action.invoice_id, reason)
            return {"status": done.get("status")}
        if isinstance(action, ReplayDeadLetters):
            mid = action.message_id
            report = svc.dead_letters().replay(
                action.subscription, select=None if mid is None else (lambda d: d.message_id == mid)
            )
            if mid is not None and not report.replayed and not report.failed:
                raise Refused(f"no dead letter {mid} in {action.subscription}-dlq (replayed already?)")
            return {"replayed": report.replayed, "failed": report.failed, "topic": report.topic}
        if isinstance(action, ResolveException):
            res = svc.reconciliation().resolve(action.exception_id, action.reason, svc.now(), by=who)
            return {"resolution": {k: str(v) for k, v in res.items()}}
        if isinstance(action, AcceptDispute):
            doc = svc.dispute_service().record_operator(action.key, Status.ACCEPTED, "accept")
            return {"status": doc.get("status")}
    except (InvoiceError, LookupError, ValueError, NotFound) as exc:
        raise Refused(str(exc)) from exc
    raise EdgeError(404, "unknown_action", "no such action")


@dataclass(frozen=True)
class Done:
    audit_id: str
    entry: dict[str, Any]
    replayed: bool  # the same idempotency key was answered before: nothing was done again


def perform(svc: Services, kind: str, envelope: Envelope, action: _Form, who: str) -> Done:
    """Run one validated action at most once for its idempotency key and audit it (see the module doc)."""
    what = {"action": kind, **action.model_dump(mode="json")}
    payload_hash = hashlib.sha256(json.dumps({**what, "by": who}, sort_keys=True).encode()).hexdigest()
    audit_id = hashlib.sha256(envelope.idempotency_key.encode()).hexdigest()[:40]
    ref = svc.db.collection(ACTIONS).document(audit_id)
    now = svc.now()
    try:
        claimed = CLAIMS.claim(ref, now, fields={"action": kind, "by": who}, payload_hash=payload_hash)
    except IdempotencyPayloadMismatchError as exc:
        raise EdgeError(422, "idempotency_key_reused", "this form was already used for another action") from exc
    if claimed.outcome is Outcome.DONE:
        snap = svc.db.collection(AUDIT).document(audit_id).get()
        return Done(audit_id, snap.to_dict() or {}, replayed=True)
    if claimed.outcome is Outcome.BUSY:
        raise EdgeError(409, "action_in_progress", "this action is running; reload in a few seconds")
    try:
        before = snapshot(svc, kind, action)
        try:
            result, outcome = run(svc, kind, action, who), "done"
        except Refused as exc:
            result, outcome = {"refused": str(exc)}, "refused"
        after = snapshot(svc, kind, action)
        entry = scrub_value(
            {
                "id": audit_id,
                "by": who,
                "at": now,
                "action": kind,
                "target": _target(action),
                "what": what,
                "outcome": outcome,
                "result": result,
                "before": before,
                "after": after,
            }
        )
        batch = svc.db.batch()
        batch.create(svc.db.collection(AUDIT).document(audit_id), entry)
        CLAIMS.complete(claimed, result={"outcome": outcome}, writer=batch)
        batch.commit()
    except Exception:
        CLAIMS.release(claimed)  # nothing audited: the same form may be posted again
        raise
    log.info("console action", extra={"action": kind, "by": who, "outcome": outcome, "audit_id": audit_id})
    return Done(audit_id, entry, replayed=False)


def _target(action: _Form) -> str:
    d = action.model_dump()
    for k in ("invoice_id", "exception_id", "key"):
        if d.get(k):
            return str(d[k])
    return f"{d.get('subscription')}/{d.get('message_id') or '*'}"


def recent_audit(db: Any, limit: int = 50) -> list[dict[str, Any]]:
    from google.cloud.firestore import Query

    q = db.collection(AUDIT).order_by("at", direction=Query.DESCENDING).limit(limit)
    return [s.to_dict() or {} for s in q.stream()]


def new_idempotency_key() -> str:
    import secrets

    return secrets.token_urlsafe(24)
