"""Adyen: a Checkout ``/payments`` call with the stored method and the Subscription processing model.

``shopperInteraction=ContAuth`` + ``recurringProcessingModel=Subscription`` +
``paymentMethod.storedPaymentMethodId`` is Adyen's merchant-initiated recurring charge; the
``Idempotency-Key`` header (invoice + attempt) makes a retried request return the first answer.
``resultCode``: Authorised -> succeeded (immediate capture is the account default), Refused / Cancelled
-> failed, Pending / Received -> pending until the webhook arrives, Error -> retried later.
Settings: ``ADYEN_API_KEY`` (``ADYEN_API_KEY__<ACCOUNT>``), ``ADYEN_MERCHANT_ACCOUNT``
(``..__<ACCOUNT>``), ``ADYEN_ENVIRONMENT`` (test|live), ``ADYEN_LIVE_PREFIX`` for live, and
``ADYEN_CHECKOUT_URL`` only to point the SDK at a local stub.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import replace
from typing import Any

from shared.charging.base import ChargeRejected, ChargeRequest, ChargeResult, ChargeUnavailable, declined
from shared.charging.config import adyen_settings
from shared.domain.declines import classify

CHECKOUT_API_VERSION = "v71"


class AdyenCharger:
    psp = "adyen"

    def __init__(self, account: str = "default") -> None:
        cfg = adyen_settings(account)
        key, merchant = cfg.api_key, cfg.merchant_account
        if not key or not merchant:
            raise ChargeRejected(f"ADYEN_API_KEY / ADYEN_MERCHANT_ACCOUNT not set for account {account!r}")
        import Adyen

        self.account = account
        self.merchant_account = merchant
        env = cfg.environment
        self.livemode = env == "live"
        self._adyen = Adyen.Adyen(
            xapikey=key,
            platform=env,
            live_endpoint_prefix=cfg.live_prefix,
            http_timeout=20,
        )
        self._payments = self._adyen.checkout.payments_api
        self._payments.baseUrl = cfg.checkout_url.rstrip("/") + f"/{CHECKOUT_API_VERSION}"

    def request_body(self, req: ChargeRequest) -> dict[str, Any]:
        body: dict[str, Any] = {
            "amount": {"currency": req.amount.currency, "value": req.amount.amount},
            "reference": req.attempt_id,
            "merchantAccount": self.merchant_account,
            "paymentMethod": {"type": "scheme", "storedPaymentMethodId": req.method.method_ref},
            "shopperReference": req.method.customer_ref or req.customer_id,
            "shopperInteraction": "ContAuth",
            "recurringProcessingModel": "Subscription",
            "metadata": req.metadata,
        }
        if req.description:
            body["shopperStatement"] = req.description[:22]
        return body

    def charge(self, req: ChargeRequest) -> ChargeResult:
        import Adyen

        try:
            res = self._payments.payments(self.request_body(req), idempotency_key=req.idempotency_key)
        except (Adyen.AdyenAPICommunicationError, ConnectionError, TimeoutError, OSError) as exc:
            raise ChargeUnavailable(f"adyen unavailable: {exc}") from exc
        except Adyen.AdyenError as exc:
            status = getattr(exc, "status_code", None)
            if isinstance(status, int) and (status >= 500 or status == 429):
                raise ChargeUnavailable(f"adyen unavailable: HTTP {status}") from exc
            raise ChargeRejected(f"adyen refused the request: {exc}") from exc
        msg: dict[str, Any] = res.message or {}
        code = msg.get("resultCode")
        psp_ref = msg.get("pspReference")
        if code == "Error" or not psp_ref:
            raise ChargeUnavailable(f"adyen answered {code!r} without a final result")
        base = ChargeResult(
            "succeeded",
            psp=self.psp,
            account=self.account,
            psp_payment_id=str(psp_ref),
            livemode=self.livemode,
            created_at=dt.datetime.now(dt.UTC),  # Adyen's answer carries no timestamp
        )
        if code == "Authorised":
            return base
        if code in ("Pending", "Received"):
            return replace(base, status="pending")
        reason = msg.get("refusalReason") or str(code)
        raw = (msg.get("additionalData") or {}).get("refusalReasonRaw")
        # The issuer's raw answer is the most specific, then Adyen's reason text, then its number.
        decline = classify(self.psp, raw, msg.get("refusalReason"), msg.get("refusalReasonCode"), str(code))
        return declined(base, decline, msg.get("refusalReasonCode") or reason, reason)
