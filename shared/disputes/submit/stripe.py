"""Stripe: ``POST /v1/disputes/{id}`` with ``evidence[...]`` text fields and ``submit=true`` (stripe SDK).

Text fields only (``customer_name``, ``customer_email_address``, ``billing_address``,
``product_description``, ``service_date``, ``cancellation_rebuttal``, ``uncategorized_text``): Stripe's
file fields need a File upload first, and the packet's invoices and payments are summarised in
``uncategorized_text``. The ``Idempotency-Key`` is one per dispute, so a retry after a crash gets Stripe's
stored answer instead of a second submission (Stripe counts submissions: "typically only once").
Settings: ``STRIPE_API_KEY[__<ACCOUNT>]``, ``STRIPE_API_BASE`` only for a local stub.
"""

from __future__ import annotations

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

        self._client = stripe.StripeClient(
            cfg.api_key, base_addresses={"api": cfg.api_base} if cfg.api_base else None, max_network_retries=2
        )

    def preview(self, sub: Submission) -> dict[str, Any]:
        t = texts(sub.facts)
        evidence = {FIELDS[k]: v[:20_000] for k, v in t.items() if k in FIELDS}
        if "cancellation" in t and (sub.dispute.get("reason") == "subscription_canceled"):
            evidence["cancellation_rebuttal"] = t["cancellation"]
        evidence["uncategorized_text"] = summary(sub.facts)
        return {"evidence": evidence, "submit": True}

    def submit(self, sub: Submission) -> Submitted:
        import stripe

        try:
            d = self._client.v1.disputes.update(
                sub.dispute_id,
                params=self.preview(sub),  # type: ignore[arg-type]
                options={"idempotency_key": sub.idempotency_key},
            )
        except stripe.StripeError as exc:
            raise SubmitError(f"stripe refused the evidence: {exc.code or ''} {exc.user_message or exc}") from exc
        return Submitted(self.psp, sub.dispute_id, 1, {"status": d.status})
