"""Evidence packets: what we hold about a disputed payment, as one deterministic zip in Cloud Storage.

Why assembled from our own records: the answer to a chargeback is the invoice, the subscription's terms
and history, the payment and refund facts, the customer and the dates the service was provided. All of
that is in Firestore (dispute, invoices, their payment facts, the subscription) and in the invoice archive
(the PDFs), so nobody has to collect it by hand before the deadline.

Deterministic and idempotent: :func:`assemble` is pure, with no build time in its content; its facts are
JSON with sorted keys, and the zip is :func:`shared.invoicing.storage.pack` (sorted members, fixed member
times, a ``manifest.json`` of their sha256). The object name carries the packet's digest
(``disputes/<dispute key>/evidence-<digest>.zip``) and is written create-only, so rebuilding from the same
records finds the same object and writes nothing; a new fact (a refund) makes a new packet beside it and
the dispute document points at the latest. Card data never enters it: the facts pass through
:func:`shared.scrub.scrub_value` before they are written.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from shared import clients
from shared.log import get_logger
from shared.scrub import scrub_value

log = get_logger(__name__)

FACTS = "evidence.json"
PAYMENT_TYPES = frozenset({"payment.succeeded", "payment.authorized"})
REFUND_TYPES = frozenset({"payment.refunded"})
MAX_INVOICES = 24  # the subscription's most recent invoices: a history, not an archive dump


@dataclass(frozen=True, slots=True)
class Holdings:
    """What we hold about one dispute, read from Firestore and the invoice archive (the impure part)."""

    dispute: Mapping[str, Any]
    subscription: Mapping[str, Any] | None = None
    invoices: tuple[Mapping[str, Any], ...] = ()  # each with ``invoice_id``
    facts: tuple[Mapping[str, Any], ...] = ()  # payment facts kept on those invoices (event type + event)
    pdfs: Mapping[str, bytes] = field(default_factory=dict)  # invoice or credit note id -> PDF bytes
    credit_notes: tuple[Mapping[str, Any], ...] = ()  # each with ``credit_note_id``: the refunds we booked


@dataclass(frozen=True, slots=True)
class Packet:
    name: str  # object name in the evidence bucket
    data: bytes  # the zip
    sha256: str
    facts: dict[str, Any]  # what evidence.json holds (scrubbed)
    members: tuple[str, ...]

    @property
    def summary(self) -> dict[str, Any]:
        f = self.facts
        return {
            "invoices": len(f["invoices"]),
            "pdfs": sum(1 for m in self.members if m.endswith(".pdf")),
            "payments": len(f["payments"]),
            "refunds": len(f["refunds"]),
            "service_periods": len(f["service"]),
            "customer": (f.get("customer") or {}).get("id"),
        }


def _iso(v: Any) -> Any:
    if isinstance(v, dt.datetime):
        return v.astimezone(dt.UTC).isoformat()
    if isinstance(v, Mapping):
        return {str(k): _iso(x) for k, x in v.items()}
    if isinstance(v, list | tuple):
        return [_iso(x) for x in v]
    return v


def _pick(doc: Mapping[str, Any] | None, *names: str) -> dict[str, Any]:
    return {n: _iso(doc[n]) for n in names if doc and doc.get(n) is not None}


def _money(v: Any) -> dict[str, Any] | None:
    return {"amount": int(v["amount"]), "currency": str(v["currency"])} if isinstance(v, Mapping) else None


def _fact(f: Mapping[str, Any]) -> dict[str, Any]:
    ev = f.get("event") or {}
    kind = str(f.get("event_type") or "")
    money = _money(ev.get("refunded")) if kind in REFUND_TYPES else _money(ev.get("amount"))
    return {
        "type": kind,
        "at": _iso(ev.get("psp_created_at") or f.get("psp_created_at")),
        "psp": ev.get("psp"),
        "psp_payment_id": ev.get("psp_payment_id"),
        "refund_id": ev.get("refund_id"),
        "amount": money,
        "invoice_id": (ev.get("refs") or {}).get("invoice_id"),
    }


def _paid(i: Mapping[str, Any]) -> dict[str, Any] | None:
    """The payment an invoice records (applied facts are folded into the invoice, not kept beside it)."""
    if not i.get("paid_at") or not i.get("psp_payment_id"):
        return None
    amount = i.get("amount_paid", i.get("total"))
    return {
        "type": "payment.succeeded",
        "at": _iso(i["paid_at"]),
        "psp": i.get("psp"),
        "psp_payment_id": i["psp_payment_id"],
        "refund_id": None,
        "amount": {"amount": int(amount), "currency": str(i["currency"])} if amount is not None else None,
        "invoice_id": i["invoice_id"],
    }


def _credited(cn: Mapping[str, Any]) -> dict[str, Any]:
    return {
        "type": "payment.refunded",
        "at": _iso(cn.get("issued_at") or cn.get("created_at")),
        "psp": None,
        "psp_payment_id": None,
        "refund_id": cn.get("refund_id"),
        "amount": {"amount": int(cn["total"]), "currency": str(cn["currency"])}
        if cn.get("total") is not None
        else None,
        "invoice_id": cn.get("invoice_id"),
        "credit_note": cn.get("number"),
    }


def _invoice(d: Mapping[str, Any], with_pdf: bool) -> dict[str, Any]:
    out = _pick(
        d,
        *("invoice_id", "number", "status", "issued_at", "finalized_at", "period_start", "period_end"),
        *("currency", "subtotal", "tax", "total", "amount_paid", "paid_at", "psp", "psp_payment_id"),
    )
    line = ("description", "quantity", "total", "period_start", "period_end")
    out["lines"] = [_pick(ln, *line) for ln in d.get("lines") or []]
    if with_pdf:
        out["pdf"] = pdf_member(str(d["invoice_id"]), d)
    return out


def pdf_member(doc_id: str, d: Mapping[str, Any]) -> str:
    """The PDF's name inside the packet: the document's number when it has one (what the customer saw)."""
    folder = "credit_notes" if d.get("kind") == "credit_note" or "credit_note_id" in d else "invoices"
    return f"{folder}/{str(d.get('number') or doc_id).replace('/', '_')}.pdf"


def assemble(h: Holdings) -> dict[str, Any]:
    """The packet's facts (pure, scrubbed): dispute, customer, subscription and terms, invoices, payments,
    refunds and the service periods the invoices prove."""
    d = h.dispute
    invoices = sorted(h.invoices, key=lambda i: (str(_iso(i.get("period_start")) or ""), str(i["invoice_id"])))
    buyer = next((i.get("buyer") for i in invoices if i.get("buyer")), None) or (h.subscription or {}).get("customer")
    moves = [_fact(f) for f in h.facts]
    seen = {(m["type"], m["psp_payment_id"], m["refund_id"]) for m in moves}
    moves += [p for i in invoices if (p := _paid(i)) and (p["type"], p["psp_payment_id"], None) not in seen]
    refunds = {m["refund_id"] for m in moves if m["refund_id"]}
    moves += [_credited(cn) for cn in h.credit_notes if not cn.get("refund_id") or cn["refund_id"] not in refunds]
    facts = sorted(moves, key=lambda f: (str(f["at"]), f["type"], str(f["psp_payment_id"]), str(f["refund_id"])))
    sub = h.subscription
    out: dict[str, Any] = {
        "dispute": {
            **_pick(d, "key", "psp", "account", "dispute_id", "psp_payment_id", "status", "stage"),
            **_pick(d, "amount", "currency", "reason", "reason_code", "reason_text", "due_by", "opened_at"),
        },
        "customer": _pick(buyer, "id", "name", "email", "country", "vat_id", "address_lines") or None,
        "subscription": (
            {
                **_pick(sub, "id", "customer_id", "status", "created_at", "trial_end", "collection"),
                **_pick(sub, "cancel_at_period_end", "canceled_at", "anchor_local", "anchor_zone"),
                **_pick(sub, "last_transition"),
            }
            if sub
            else None
        ),
        "terms": _pick(sub, "plan", "items", "discounts", "days_until_due", "collection") if sub else None,
        "invoices": [_invoice(i, str(i["invoice_id"]) in h.pdfs) for i in invoices],
        "credit_notes": [
            {**_pick(cn, "number", "invoice_number", "refund_id", "total", "currency", "reason", "created_at")}
            for cn in sorted(h.credit_notes, key=lambda c: str(c.get("number") or c["credit_note_id"]))
        ],
        "payments": [f for f in facts if f["type"] in PAYMENT_TYPES],
        "refunds": [f for f in facts if f["type"] in REFUND_TYPES],
        "service": [
            {"invoice": i.get("number") or i["invoice_id"], **_pick(i, "period_start", "period_end")}
            for i in invoices
            if i.get("period_start") and i.get("status") in ("paid", "open", "uncollectible")
        ],
    }
    return dict(scrub_value(out))


def packet(h: Holdings) -> Packet:
    """The zip: ``evidence.json`` (the facts) and the invoice PDFs, with the manifest of their sha256."""
    from shared.invoicing.storage import pack

    facts = assemble(h)
    members = {FACTS: json.dumps(facts, indent=1, sort_keys=True, ensure_ascii=False).encode()}
    for d in (*h.invoices, *h.credit_notes):
        did = str(d.get("credit_note_id") or d["invoice_id"])
        if did in h.pdfs:
            members[pdf_member(did, d)] = h.pdfs[did]
    data = pack(members)
    digest = hashlib.sha256(data).hexdigest()
    key = str(h.dispute["key"]).replace("/", "_")
    return Packet(f"disputes/{key}/evidence-{digest[:16]}.zip", data, digest, facts, tuple(sorted(members)))


# -- I/O: gathering and storing --------------------------------------------------------------------------
def evidence_bucket() -> str:
    """``EVIDENCE_BUCKET``, else ``<project>-dispute-evidence`` (Terraform: module evidence_bucket)."""
    from shared.config import env_value, get_settings

    return env_value("EVIDENCE_BUCKET") or f"{get_settings().project_id}-dispute-evidence"


def store(p: Packet) -> dict[str, Any]:
    """Write the packet create-only; an object of that name (same digest) already there is the packet."""
    from google.api_core.exceptions import PreconditionFailed

    from shared.config import get_settings

    s = get_settings()
    bucket = evidence_bucket()
    if s.storage_emulator_host:
        clients.emulator_bucket(s.project_id, bucket)
    blob = clients.storage().bucket(bucket).blob(p.name)
    created = False
    if not blob.exists():  # the emulator ignores generation preconditions: look first as well
        try:
            blob.upload_from_string(p.data, content_type="application/zip", if_generation_match=0)
            created = True
        except PreconditionFailed:
            pass
    return {
        "uri": f"gs://{bucket}/{p.name}",
        "sha256": p.sha256,
        "size": len(p.data),
        "members": list(p.members),
        "summary": p.summary,
        "created": created,
    }


def read(uri: str) -> bytes:
    bucket, _, name = uri.removeprefix("gs://").partition("/")
    return bytes(clients.storage().bucket(bucket).blob(name).download_as_bytes())


def gather(
    db: Any, dispute: Mapping[str, Any], pdf: Callable[[str], bytes] | None = None, limit: int = MAX_INVOICES
) -> Holdings:
    """Read what we hold: the disputed invoice, the subscription and its recent invoices, their facts, PDFs.

    ``pdf`` reads an archived PDF by URI (default: the invoice archive); a PDF that cannot be read is left
    out and logged (the packet is still worth building before the deadline).
    """
    from google.cloud.firestore_v1.base_query import FieldFilter

    from shared.invoicing import storage
    from shared.invoicing.repository import CREDIT_NOTES, INVOICES
    from shared.invoicing.repository import FACTS as FACTS_COLL

    read_pdf = pdf or storage.get

    refs = dispute.get("refs") or {}
    col = db.collection(INVOICES)
    found: dict[str, dict[str, Any]] = {}
    if refs.get("invoice_id"):
        snap = col.document(refs["invoice_id"]).get()
        if snap.exists:
            found[snap.id] = {**(snap.to_dict() or {}), "invoice_id": snap.id}
    sub_id = refs.get("subscription_id") or next((d.get("subscription_id") for d in found.values()), None)
    sub = None
    if sub_id:
        from shared.renewals.repository import SUBSCRIPTIONS

        s = db.collection(SUBSCRIPTIONS).document(sub_id).get()
        sub = s.to_dict() if s.exists else None
        for snap in col.where(filter=FieldFilter("subscription_id", "==", sub_id)).limit(limit).stream():
            found.setdefault(snap.id, {**(snap.to_dict() or {}), "invoice_id": snap.id})
    facts: list[Mapping[str, Any]] = []
    notes: list[dict[str, Any]] = []
    for iid, inv in sorted(found.items()):
        facts += [f.to_dict() or {} for f in col.document(iid).collection(FACTS_COLL).stream()]
        for cn_id in inv.get("credit_note_ids") or []:
            snap = db.collection(CREDIT_NOTES).document(cn_id).get()
            if snap.exists:
                notes.append({**(snap.to_dict() or {}), "credit_note_id": snap.id})
    pdfs: dict[str, bytes] = {}
    for d in (*found.values(), *notes):
        if d.get("pdf_uri"):
            try:
                pdfs[str(d.get("credit_note_id") or d["invoice_id"])] = read_pdf(str(d["pdf_uri"]))
            except Exception as exc:
                log.warning("document PDF not readable; left out of the packet", extra={"error": type(exc).__name__})
    return Holdings(dispute, sub, tuple(found.values()), tuple(facts), pdfs, tuple(notes))


def record(ref: Any, stored: Mapping[str, Any], at: dt.datetime) -> None:
    """Point the dispute document at its latest packet (one field: no other writer touches it)."""
    ref.update({"evidence": {**{k: v for k, v in stored.items() if k != "created"}, "built_at": at}})


def unpack(data: bytes) -> tuple[dict[str, Any], dict[str, bytes]]:
    """A stored packet back into its facts and its PDFs (what a submission sends is what was stored)."""
    import io
    import zipfile

    with zipfile.ZipFile(io.BytesIO(data)) as z:
        facts = json.loads(z.read(FACTS))
        pdfs = {n: z.read(n) for n in z.namelist() if n.endswith(".pdf")}
    return facts, pdfs
