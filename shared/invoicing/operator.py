"""Use case: operator transitions. Void, uncollectible, and paid outside any PSP we hear from.

Each is one conditional write (the transition rules of ``shared.domain.invoices`` decide), then the
matching event through the publish-once helper; repeating a command changes and publishes nothing.
"""

from __future__ import annotations

from typing import Any

from shared.domain import invoices as dom
from shared.invoicing.deps import Deps
from shared.invoicing.payments import paid_event, paid_routing
from shared.invoicing.repository import INVOICES, cas_update
from shared.log import bind, get_logger

log = get_logger(__name__)


class OperatorTransitions:
    def __init__(self, deps: Deps) -> None:
        self.deps = deps

    def _transition(self, invoice_id: str, target: dom.Status, fields: Any) -> tuple[Any, dict[str, Any]]:
        """Move the invoice to ``target`` if the rules allow it; (ref, the invoice after it)."""
        ref = self.deps.db.collection(INVOICES).document(invoice_id)
        written: dict[str, Any] = {}

        def change(d: dict[str, Any] | None) -> dict[str, Any] | None:
            written.clear()
            if d is None:
                raise LookupError(f"invoice {invoice_id} does not exist")
            if not dom.transition(dom.Status(d["status"]), target):
                return None
            written.update({"status": target.value, **fields(d)})
            return dict(written)

        snap = cas_update(self.deps.db, ref, change)
        return ref, {**(snap.to_dict() or {}), **written}

    def mark_paid(self, invoice_id: str, reason: str | None = None) -> dict[str, Any]:
        """Paid outside any PSP we hear from (bank transfer, cheque): an operator says so.

        Open or uncollectible -> paid for the amount due, ``paid_by = "operator"``; publishes the same
        ``invoice.paid`` (key ``{invoice_id}:paid``) a payment fact would, so the renewals function
        settles the period either way and never twice. Idempotent: a paid invoice stays as it is.
        """
        now = self.deps.clock()

        def paid(d: dict[str, Any]) -> dict[str, Any]:
            return {"paid_at": now, "amount_paid": int(d["amount_due"]), "paid_by": "operator", "paid_reason": reason}

        ref, doc = self._transition(invoice_id, dom.Status.PAID, paid)
        with bind(invoice_id=invoice_id):
            if doc.get("status") == dom.Status.PAID:
                doc = self.deps.publish_once(
                    ref,
                    doc,
                    "paid",
                    event=lambda: paid_event(doc),
                    key=f"{invoice_id}:paid",
                    at=doc["paid_at"],
                    routing=paid_routing(doc),
                )
            log.info("invoice marked paid by an operator", extra={"reason": reason})
        return {"invoice_id": invoice_id, "status": doc.get("status"), "number": doc.get("number")}

    def void(self, invoice_id: str, reason: str | None = None) -> dict[str, Any]:
        return self._terminal(invoice_id, dom.Status.VOID, reason)

    def mark_uncollectible(self, invoice_id: str, reason: str | None = None) -> dict[str, Any]:
        return self._terminal(invoice_id, dom.Status.UNCOLLECTIBLE, reason)

    def _terminal(self, invoice_id: str, target: dom.Status, reason: str | None) -> dict[str, Any]:
        what = target.value
        now = self.deps.clock()
        ref, doc = self._transition(invoice_id, target, lambda d: {f"{what}_at": now, f"{what}_reason": reason})
        if doc.get("status") == what:
            from shared.events.billing import InvoiceMarkedUncollectible, InvoiceVoided

            cls = InvoiceVoided if target == dom.Status.VOID else InvoiceMarkedUncollectible
            doc = self.deps.publish_once(
                ref,
                doc,
                what,
                event=lambda: cls(
                    invoice_id=invoice_id,
                    number=doc["number"],
                    subscription_id=doc.get("subscription_id"),
                    customer_id=doc["buyer"]["id"],
                    reason=doc.get(f"{what}_reason"),
                ),
                key=f"{invoice_id}:{'voided' if target == dom.Status.VOID else 'uncollectible'}",
                at=doc[f"{what}_at"],
            )
        return {"invoice_id": invoice_id, "status": doc.get("status"), "number": doc.get("number")}
