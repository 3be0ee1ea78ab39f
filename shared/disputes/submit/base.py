"""What a PSP submission gets (the packet's facts and PDFs) and the evidence texts every adapter sends.

Why one text builder: each PSP names its evidence fields differently (Stripe ``product_description``,
Checkout.com ``invoice_or_receipt_text``, Braintree one comment, PayPal notes), but the story is the same:
who the customer is, what they subscribed to on which terms, which service periods they were invoiced and
paid for, and what was refunded. Written once here from the packet's facts (pure), so all adapters tell it
alike and the CLI can print exactly what would be sent.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

from shared.domain.money import Money


class SubmitError(Exception):
    """The PSP refused the submission (or is unreachable): nothing was recorded as submitted."""


@dataclass(frozen=True, slots=True)
class Submission:
    """One dispute's evidence, ready for a PSP: the packet's facts, its PDFs (member name -> bytes)."""

    dispute: Mapping[str, Any]
    facts: Mapping[str, Any]
    pdfs: Mapping[str, bytes] = field(default_factory=dict)
    packet_sha256: str = ""
    resumed: bool = False  # a retry after a crashed submission: adapters without idempotency keys look first

    @property
    def dispute_id(self) -> str:
        return str(self.dispute["dispute_id"])

    @property
    def idempotency_key(self) -> str:
        """One key per dispute and stage (the claim's unit): a retried submission is the same request to the
        PSP, a pre-arbitration defence a new one (64 characters at most, Adyen's limit, with a suffix)."""
        unit = f"{self.dispute['key']}~{self.dispute.get('stage') or 'chargeback'}"
        return "dispute-evidence-" + hashlib.sha256(unit.encode()).hexdigest()[:32]


@dataclass(frozen=True, slots=True)
class Submitted:
    psp: str
    dispute_id: str
    requests: int  # PSP calls made
    detail: Mapping[str, Any] = field(default_factory=dict)


class Submitter(Protocol):
    psp: str

    def preview(self, sub: Submission) -> dict[str, Any]:
        """What :meth:`submit` would send (no I/O)."""
        ...

    def submit(self, sub: Submission) -> Submitted: ...


def _money(m: Mapping[str, Any] | None) -> str:
    return str(Money(int(m["amount"]), str(m["currency"]))) if m else "-"


def _date(v: Any) -> str:
    return str(v or "")[:10]


def texts(facts: Mapping[str, Any]) -> dict[str, str]:
    """The evidence as short texts by topic (empty topics left out)."""
    c = facts.get("customer") or {}
    sub = facts.get("subscription") or {}
    terms = facts.get("terms") or {}
    plan = terms.get("plan") or {}
    invoices = facts.get("invoices") or []
    out: dict[str, str] = {}
    if c.get("name"):
        out["customer_name"] = str(c["name"])
    if c.get("email"):
        out["customer_email"] = str(c["email"])
    if c.get("address_lines") or c.get("country"):
        out["billing_address"] = ", ".join([*map(str, c.get("address_lines") or []), str(c.get("country") or "")])
    if plan or sub:
        every = f"every {plan.get('interval_count', 1)} {plan.get('interval', '')}".strip() if plan else ""
        lines = "; ".join(str(ln.get("description") or "") for ln in plan.get("lines") or [] if ln.get("description"))
        out["product"] = " ".join(
            x
            for x in (
                f"Subscription {sub.get('id', '')} to plan {plan.get('id', '')}".replace("  ", " ").strip(),
                f"({lines})" if lines else "",
                f"billed {every} in advance" if every else "",
                f"since {_date(sub.get('created_at'))}" if sub.get("created_at") else "",
            )
            if x
        )
    periods = facts.get("service") or []
    if periods:
        out["service_date"] = _date(periods[-1].get("period_start"))
        out["service"] = "Service provided: " + "; ".join(
            f"{p['invoice']} {_date(p.get('period_start'))} to {_date(p.get('period_end'))}" for p in periods
        )
    if invoices:
        out["invoices"] = "Invoices: " + "; ".join(
            f"{i.get('number') or i.get('invoice_id')} "
            f"{_money({'amount': i['total'], 'currency': i['currency']}) if 'total' in i else '-'} "
            + (f"paid {_date(i['paid_at'])}" if i.get("paid_at") else str(i.get("status") or ""))
            for i in invoices
        )
    pays = facts.get("payments") or []
    if pays:
        out["payments"] = "Payments: " + "; ".join(
            f"{p.get('psp_payment_id')} {_money(p.get('amount'))} on {_date(p.get('at'))}" for p in pays
        )
    refunds = facts.get("refunds") or []
    out["refunds"] = (
        "Refunds: "
        + "; ".join(f"{r.get('refund_id')} {_money(r.get('amount'))} on {_date(r.get('at'))}" for r in refunds)
        if refunds
        else "No refund was requested or issued for this payment."
    )
    if sub:
        state = str(sub.get("status") or "")
        if sub.get("canceled_at"):
            state += f", canceled {_date(sub['canceled_at'])}"
        elif sub.get("cancel_at_period_end"):
            state += ", set to cancel at period end"
        else:
            state += ", never canceled by the customer"
        out["cancellation"] = f"Subscription status: {state}."
    return out


def summary(facts: Mapping[str, Any], limit: int = 20_000) -> str:
    """All topics as one text (for PSPs that take a single comment or note), within ``limit`` characters."""
    t = texts(facts)
    order = ("customer_name", "customer_email", "billing_address", "product", "service", "invoices", "payments")
    parts = [t[k] for k in (*order, "refunds", "cancellation") if k in t]
    return "\n".join(parts)[:limit]
