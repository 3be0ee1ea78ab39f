"""Checkout.com: ``PUT /disputes/{id}/evidence`` (the evidence texts) then ``POST /disputes/{id}/evidence``.

Through checkout-sdk (``disputes.put_evidence`` / ``disputes.submit_evidence``), with the client the
charging adapter builds (same settings, same timeout). PUT replaces the evidence, so repeating it is
harmless; the submit takes no idempotency key, so a retry after a crash (``Submission.resumed``) reads the
dispute first and submits only while it still awaits evidence (``evidence_required``).
Settings: as :mod:`shared.charging.checkout` (``CHECKOUT_*``, ``CHECKOUT_API_URL`` for a local stub).
"""

from __future__ import annotations

from typing import Any

from shared.disputes.submit.base import Submission, SubmitError, Submitted, summary, texts

FIELDS = {
    "service": "proof_of_delivery_or_service_text",
    "invoices": "invoice_or_receipt_text",
    "cancellation": "refund_or_cancellation_policy_text",
    "product": "recurring_transaction_agreement_text",
}
AWAITING = frozenset({"evidence_required"})


class CheckoutSubmitter:
    psp = "checkout"

    def __init__(self, account: str = "default") -> None:
        from shared.charging.base import ChargeRejected
        from shared.charging.checkout import CheckoutCharger

        try:
            self._api = CheckoutCharger(account)._api  # one way to build the SDK client
        except ChargeRejected as exc:
            raise SubmitError(str(exc)) from exc

    def preview(self, sub: Submission) -> dict[str, Any]:
        t = texts(sub.facts)
        body = {FIELDS[k]: v[:5000] for k, v in t.items() if k in FIELDS}
        if t.get("service_date"):
            body["proof_of_delivery_or_service_date_text"] = t["service_date"]
        body["additional_evidence_text"] = summary(sub.facts, 5000)
        return {"evidence": dict(sorted(body.items())), "submit": True}

    def submit(self, sub: Submission) -> Submitted:
        from checkout_sdk.exception import CheckoutException

        calls = 0
        try:
            if sub.resumed:
                found = self._api.disputes.get_dispute_details(sub.dispute_id)
                calls += 1
                status = getattr(found, "status", None)
                if status not in AWAITING:
                    return Submitted(self.psp, sub.dispute_id, calls, {"status": status, "resumed": True})
            self._api.disputes.put_evidence(sub.dispute_id, self.preview(sub)["evidence"])
            self._api.disputes.submit_evidence(sub.dispute_id)
            calls += 2
        except CheckoutException as exc:
            meta = getattr(exc, "http_metadata", None)
            raise SubmitError(f"checkout.com refused the evidence: HTTP {getattr(meta, 'status_code', '?')}") from exc
        return Submitted(self.psp, sub.dispute_id, calls, {"status": "evidence_under_review"})
