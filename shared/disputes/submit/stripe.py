"""Stripe: ``POST /v1/disputes/{id}`` with ``evidence[...]`` text fields and ``submit=true`` (stripe SDK).

Text fields (``customer_name``, ``customer_email_address``, ``billing_address``, ``product_description``,
``service_date``, ``cancellation_rebuttal``, ``uncategorized_text`` with the invoices, payments and
refunds) and ``receipt``: the disputed payment's invoice PDF, uploaded first as a File
(``purpose=dispute_evidence`` on files.stripe.com). Both requests carry an ``Idempotency-Key`` derived from
the dispute, so a retry after a crash gets Stripe's stored answers (the same File, no second submission;
Stripe counts submissions: "typically only once").
Settings: ``STRIPE_API_KEY[__<ACCOUNT>]``, ``STRIPE_API_BASE`` only for a local stub.
"""

from __future__ import annotations

import io
from typing import Any

from shared.charging.config import stripe_settings
from shared.disputes.submit.base import Submission, SubmitError, Submitted, summary, texts

FIELDS = {
    "customer_name": "customer_name",
    "customer_email": "customer_email_address",
    "billing_address": "billing_address",
    "product": "product_description",
    "service_date": "service_date",
}


class StripeSubmitter:
    psp = "stripe"

    def __init__(self, account: str = "default") -> None:
        cfg = stripe_settings(account)
        if not cfg.api_key:
            raise SubmitError(f"STRIPE_API_KEY is not set for account {account!r}")
        import stripe

        base = {"api": cfg.api_base, "files": cfg.api_base} if cfg.api_base else None
        self._client = stripe.StripeClient(cfg.api_key, base_addresses=base, max_network_retries=2)  # type: ignore[arg-type]

    def preview(self, sub: Submission) -> dict[str, Any]:
        t = texts(sub.facts)
        evidence = {FIELDS[k]: v[:20_000] for k, v in t.items() if k in FIELDS}
        if "cancellation" in t and (sub.dispute.get("reason") == "subscription_canceled"):
            evidence["cancellation_rebuttal"] = t["cancellation"]
        evidence["uncategorized_text"] = summary(sub.facts)
        receipt = receipt_member(sub)
        if receipt:
            evidence["receipt"] = f"<File of {receipt}>"
        return {"evidence": evidence, "submit": True}

    def submit(self, sub: Submission) -> Submitted:
        import stripe

        params = self.preview(sub)
        calls = 0
        try:
            receipt = receipt_member(sub)
            if receipt:
                upload = io.BytesIO(sub.pdfs[receipt])
                upload.name = receipt.rsplit("/", 1)[-1]
                f = self._client.v1.files.create(
                    params={"file": upload, "purpose": "dispute_evidence"},
                    options={"idempotency_key": sub.idempotency_key + "-receipt"},
                )
                calls += 1
                params["evidence"]["receipt"] = f.id
            d = self._client.v1.disputes.update(
                sub.dispute_id,
                params=params,  # type: ignore[arg-type]
                options={"idempotency_key": sub.idempotency_key},
            )
            calls += 1
        except stripe.StripeError as exc:
            raise SubmitError(f"stripe refused the evidence: {exc.code or ''} {exc.user_message or exc}") from exc
        return Submitted(
            self.psp, sub.dispute_id, calls, {"status": d.status, "receipt": params["evidence"].get("receipt")}
        )


def receipt_member(sub: Submission) -> str | None:
    """The PDF of the invoice the disputed payment paid (else the latest invoice's): Stripe's ``receipt``."""
    invoices = [i for i in sub.facts.get("invoices") or [] if i.get("pdf") in sub.pdfs]
    paid = [i for i in invoices if i.get("psp_payment_id") == sub.dispute.get("psp_payment_id")]
    pick = (paid or invoices or [None])[-1]
    return str(pick["pdf"]) if pick else None
