"""Stripe: a PaymentIntent created and confirmed off-session with the stored payment method.

One call (``confirm=true, off_session=true``) with an ``Idempotency-Key`` of invoice + attempt: a
retried delivery gets Stripe's stored answer for that key (24 h) instead of a second charge. A card
decline is an answer, not an error (HTTP 402 carrying the PaymentIntent), read through the one decline
taxonomy (:mod:`shared.domain.declines`).
Settings: ``STRIPE_API_KEY`` (``STRIPE_API_KEY__<ACCOUNT>`` for other accounts) from Secret Manager,
``STRIPE_API_BASE`` only to point the SDK at a local stub in tests and demos.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import replace
from typing import Any

from shared.charging.base import ChargeRejected, ChargeRequest, ChargeResult, ChargeUnavailable, declined
from shared.charging.config import stripe_settings
from shared.domain.declines import classify


class StripeCharger:
    psp = "stripe"

    def __init__(self, account: str = "default") -> None:
        cfg = stripe_settings(account)
        key = cfg.api_key
        if not key:
            raise ChargeRejected(f"STRIPE_API_KEY is not set for account {account!r}")
        import stripe

        self.account = account
        base = cfg.api_base
        self._client = stripe.StripeClient(
            key,
            base_addresses={"api": base} if base else None,
            max_network_retries=2,  # safe: every retry carries the same idempotency key
        )

    def charge(self, req: ChargeRequest) -> ChargeResult:
        import stripe

        params: dict[str, Any] = {
            "amount": req.amount.amount,
            "currency": req.amount.currency.lower(),
            "payment_method": req.method.method_ref,
            "confirm": True,
            "off_session": True,
            "metadata": req.metadata,
        }
        if req.method.customer_ref:
            params["customer"] = req.method.customer_ref
        if req.description:
            params["description"] = req.description
        try:
            pi = self._client.v1.payment_intents.create(
                params=params,  # type: ignore[arg-type]
                options={"idempotency_key": req.idempotency_key},
            )
        except stripe.CardError as exc:
            return self._declined(exc)
        except (stripe.APIConnectionError, stripe.RateLimitError, stripe.APIError) as exc:
            raise ChargeUnavailable(f"stripe unavailable: {exc.user_message or exc}") from exc
        except stripe.StripeError as exc:
            raise ChargeRejected(f"stripe refused the request: {exc.code or ''} {exc.user_message or exc}") from exc
        return self._result(pi.to_dict())

    def _result(self, pi: dict[str, Any]) -> ChargeResult:
        status = pi.get("status")
        base = ChargeResult(
            "succeeded",
            psp=self.psp,
            account=self.account,
            psp_payment_id=str(pi["id"]),
            livemode=bool(pi.get("livemode")),
            created_at=dt.datetime.fromtimestamp(int(pi.get("created") or 0), dt.UTC),
        )
        if status == "succeeded":
            return base
        if status in ("processing", "requires_capture"):
            return replace(base, status="pending")
        # requires_action / requires_payment_method off-session: the customer has to come back.
        err = pi.get("last_payment_error") or {}
        code = err.get("decline_code") or err.get("code") or str(status)
        decline = classify(self.psp, err.get("decline_code"), err.get("code"), str(status))
        return declined(base, decline, code, err.get("message"))

    def _declined(self, exc: Any) -> ChargeResult:
        err = (exc.json_body or {}).get("error") or {}
        pi = err.get("payment_intent") or {}
        code = err.get("decline_code") or err.get("code") or "card_declined"
        if not pi.get("id"):
            raise ChargeRejected(f"stripe declined without a PaymentIntent: {code}")
        base = ChargeResult(
            "failed",
            psp=self.psp,
            account=self.account,
            psp_payment_id=str(pi["id"]),
            livemode=bool(pi.get("livemode")),
            created_at=dt.datetime.fromtimestamp(int(pi.get("created") or 0), dt.UTC),
        )
        decline = classify(self.psp, err.get("decline_code"), err.get("code"))
        return declined(base, decline, code, err.get("message"))
