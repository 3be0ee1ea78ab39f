"""Checkout.com: ``POST /payments`` with the stored instrument (source type ``id``), merchant-initiated.

``payment_type=Recurring`` + ``merchant_initiated=true`` + ``source.id`` is Checkout.com's recurring
charge on a stored instrument; ``capture=true`` captures right after authorisation. The
``Cko-Idempotency-Key`` header (invoice + attempt) makes a retried request return the first answer.
``reference`` = our attempt id and ``metadata`` = our references come back in the webhooks.
201 ``approved`` Authorized / Captured -> succeeded (capture is automatic); 202 Pending -> pending until
the webhook; ``approved=false`` (Declined) -> failed with the response code: 20xxx soft, 30xxx hard
(read through the one taxonomy, :mod:`shared.domain.declines`, as the webhooks function does).
401 / 4xx -> rejected; 429, 5xx and network trouble -> retried.
Settings: ``CHECKOUT_SECRET_KEY``, ``CHECKOUT_PROCESSING_CHANNEL_ID`` and ``CHECKOUT_SUBDOMAIN`` (the
merchant-specific API host, each ``..__<ACCOUNT>``), ``CHECKOUT_ENVIRONMENT`` (sandbox|production),
``CHECKOUT_API_URL`` only to point the SDK at a local stub.
"""

from __future__ import annotations

import datetime as dt
import warnings
from dataclasses import replace
from typing import Any

from shared.charging.base import ChargeRejected, ChargeRequest, ChargeResult, ChargeUnavailable, declined
from shared.charging.config import checkout_settings
from shared.domain.declines import classify

TIMEOUT_S = 20.0
SUCCEEDED = frozenset({"Authorized", "Captured", "Partially Captured"})


class CheckoutCharger:
    psp = "checkout"

    def __init__(self, account: str = "default") -> None:
        cfg = checkout_settings(account)
        if not cfg.secret_key or not cfg.processing_channel_id:
            raise ChargeRejected(
                f"CHECKOUT_SECRET_KEY / CHECKOUT_PROCESSING_CHANNEL_ID not set for account {account!r}"
            )
        if cfg.environment not in ("sandbox", "production"):
            raise ChargeRejected(f"CHECKOUT_ENVIRONMENT must be sandbox or production, not {cfg.environment!r}")
        import requests
        from checkout_sdk.checkout_sdk import CheckoutSdk
        from checkout_sdk.environment import Environment
        from checkout_sdk.exception import CheckoutException
        from checkout_sdk.http_client_interface import HttpClientBuilderInterface

        class _Session(requests.Session):
            """The SDK sets no timeout: a hung connection would hold the delivery until the function dies."""

            def request(self, *args: Any, **kwargs: Any) -> Any:
                kwargs.setdefault("timeout", TIMEOUT_S)
                return super().request(*args, **kwargs)

        class _Http(HttpClientBuilderInterface):  # type: ignore[misc]
            def get_client(self) -> requests.Session:
                return _Session()

        self.account = account
        self.livemode = cfg.environment == "production"
        self.processing_channel_id = cfg.processing_channel_id
        env = Environment.production() if self.livemode else Environment.sandbox()
        builder = CheckoutSdk.builder().secret_key(cfg.secret_key).http_client_builder(_Http())
        try:
            if cfg.api_url:
                # A local stub has no merchant subdomain: the deprecated shared host is the only other way.
                url = cfg.api_url.rstrip("/") + "/"
                env = Environment(url, url, url, url, url, url, url, not self.livemode)
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore", DeprecationWarning)
                    builder = builder.use_legacy_domain()
            elif cfg.subdomain:
                builder = builder.environment_subdomain(cfg.subdomain)
            else:
                raise ChargeRejected(f"CHECKOUT_SUBDOMAIN is not set for account {account!r}")
            self._api = builder.environment(env).build()
        except CheckoutException as exc:  # a malformed key or subdomain
            raise ChargeRejected(f"checkout.com settings rejected by the SDK: {exc}") from exc

    def request_body(self, req: ChargeRequest) -> dict[str, Any]:
        body: dict[str, Any] = {
            "source": {"type": "id", "id": req.method.method_ref},
            "amount": req.amount.amount,
            "currency": req.amount.currency,
            "payment_type": "Recurring",
            "merchant_initiated": True,
            "capture": True,
            "reference": req.attempt_id,
            "processing_channel_id": self.processing_channel_id,
            "metadata": req.metadata,
        }
        if req.method.customer_ref:
            body["customer"] = {"id": req.method.customer_ref}
        if req.description:
            body["description"] = req.description
        return body

    def charge(self, req: ChargeRequest) -> ChargeResult:
        from checkout_sdk.exception import CheckoutApiException, CheckoutException

        try:
            res = self._api.payments.request_payment(self.request_body(req), idempotency_key=req.idempotency_key)
        except CheckoutApiException as exc:
            status = getattr(exc.http_metadata, "status_code", None)
            detail = f"HTTP {status} {exc.error_type or ''} {exc.error_details or ''}".strip()
            if isinstance(status, int) and (status >= 500 or status == 429):
                raise ChargeUnavailable(f"checkout.com unavailable: {detail}") from exc
            raise ChargeRejected(f"checkout.com refused the request: {detail}") from exc
        except CheckoutException as exc:  # connection errors and timeouts (requests' OSErrors)
            raise ChargeUnavailable(f"checkout.com unavailable: {exc.__cause__ or exc}") from exc
        return self._result(_plain(res))

    def _result(self, p: dict[str, Any]) -> ChargeResult:
        status = p.get("status")
        if not p.get("id"):
            raise ChargeUnavailable(f"checkout.com answered {status!r} without a payment id")
        base = ChargeResult(
            "succeeded",
            psp=self.psp,
            account=self.account,
            psp_payment_id=str(p["id"]),
            livemode=self.livemode,
            created_at=_parse_time(p.get("processed_on")),
        )
        if p.get("approved") and status in SUCCEEDED:
            return base
        if status == "Pending":
            return replace(base, status="pending")
        code = p.get("response_code") if isinstance(p.get("response_code"), str) else None
        decline = classify(self.psp, code, log_unknown=code is not None)
        return declined(base, decline, code or str(status), p.get("response_summary") or str(status))


def _plain(value: Any) -> Any:
    """The SDK's attribute wrapper back to JSON values (its ``http_metadata`` left out)."""
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    if hasattr(value, "__dict__"):
        return {k: _plain(v) for k, v in vars(value).items() if k != "http_metadata"}
    return value


def _parse_time(value: Any) -> dt.datetime:
    """``processed_on`` is RFC 3339; a pending answer has none yet, so now stands in."""
    if isinstance(value, str) and value:
        t = dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
        return t if t.tzinfo else t.replace(tzinfo=dt.UTC)
    return dt.datetime.now(dt.UTC)
