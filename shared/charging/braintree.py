"""Braintree: ``transaction.sale`` with the vaulted payment method token, submitted for settlement.

Braintree's XML gateway has no idempotency key (its at-most-once ``ApiRequestKey`` is GraphQL-only and
must be enabled per merchant), so exactly-once rests on our ``order_id`` = ``{invoice_id}:{attempt}``:

1. the collector's claim lets one process at a time charge an attempt, and a crashed one's attempt is
   taken over only after its lease (minutes), long after a sale it sent has become searchable;
2. every charge first searches transactions by ``order_id`` and adopts what it finds (a retry after a
   lost answer, a crash or a timeout) instead of selling again; after an ambiguous sale error it looks
   once more before reporting the PSP unavailable;
3. Braintree's duplicate transaction checking (enable it in the Control Panel) rejects a second sale of
   the same amount on the same method within its window: that rejection is resolved by searching for
   the original, never reported as a decline.

The search costs one extra request per charge; a retried attempt never sells twice.
Custom fields ``invoice_id``, ``customer_id``, ``subscription_id`` (create them in the Control Panel as
"store and pass back") come back in the webhooks, with the attempt in ``order_id``. Braintree charges in
the currency of the merchant account, so ``BRAINTREE_MERCHANT_ACCOUNTS`` (``EUR=acme_eur,USD=acme_usd``)
must name one for the invoice's currency: never the default account's currency by accident.
``processor_declined``: decline code = processor response code, hard when Braintree types it
``hard_declined``; ``gateway_rejected``: the rejection reason. Cards settle on their own once submitted,
so submitted/settling is a success; bank debits (ACH, SEPA) stay pending until ``transaction_settled``.
Settings: ``BRAINTREE_MERCHANT_ID``, ``BRAINTREE_PUBLIC_KEY``, ``BRAINTREE_PRIVATE_KEY``,
``BRAINTREE_MERCHANT_ACCOUNTS`` (each ``..__<ACCOUNT>``), ``BRAINTREE_ENVIRONMENT`` (sandbox|production),
``BRAINTREE_API_URL`` only to point the SDK at a local stub.
"""

from __future__ import annotations

import datetime as dt
import urllib.parse
from dataclasses import replace
from decimal import Decimal
from typing import Any

from shared.charging.base import ChargeRejected, ChargeRequest, ChargeResult, ChargeUnavailable, declined
from shared.charging.config import BraintreeSettings, braintree_settings
from shared.domain.declines import classify

TIMEOUT_S = 20.0
# Final successes for cards and wallets: once submitted, settlement is Braintree's batch, not a decision.
SUBMITTED = frozenset({"submitted_for_settlement", "settling", "settlement_confirmed", "settled"})
PENDING = frozenset({"authorizing", "authorized", "settlement_pending"})
FAILED = frozenset({"failed", "voided", "settlement_declined", "settlement_failed", "authorization_expired"})
# Instruments whose settlement can still be declined days later (bank debits): pending until settled.
BANK_DEBITS = frozenset({"us_bank_account", "sepa_debit_account", "europe_bank_account"})


def amount_string(req: ChargeRequest) -> str:
    """Braintree wants major units as a decimal string at the currency's exponent (``10.99``, JPY ``1099``)."""
    return f"{req.amount.to_decimal():.{req.amount.exponent}f}"


def gateway(cfg: BraintreeSettings, account: str, timeout_s: float = TIMEOUT_S) -> Any:
    """The account's Braintree gateway (charging and dispute evidence share it); ``ValueError`` names what is
    missing or wrong in the configuration. ``BRAINTREE_API_URL`` points it at a local stub in tests."""
    if not (cfg.merchant_id and cfg.public_key and cfg.private_key):
        raise ValueError(
            f"BRAINTREE_MERCHANT_ID / BRAINTREE_PUBLIC_KEY / BRAINTREE_PRIVATE_KEY not set for account {account!r}"
        )
    import braintree

    if cfg.api_url:
        url = urllib.parse.urlsplit(cfg.api_url)
        env = braintree.Environment("stub", url.hostname, str(url.port or 80), "", False, None)
    elif cfg.environment in ("sandbox", "production"):
        env = braintree.Environment.parse_environment(cfg.environment)
    else:
        raise ValueError(f"BRAINTREE_ENVIRONMENT must be sandbox or production, not {cfg.environment!r}")
    return braintree.BraintreeGateway(
        braintree.Configuration(
            environment=env,
            merchant_id=cfg.merchant_id,
            public_key=cfg.public_key,
            private_key=cfg.private_key,
            timeout=timeout_s,
            wrap_http_exceptions=True,  # requests' errors as Braintree's, one hierarchy to map
        )
    )


class BraintreeCharger:
    psp = "braintree"

    def __init__(self, account: str = "default") -> None:
        cfg = braintree_settings(account)
        try:
            self._gateway = gateway(cfg, account)
        except ValueError as exc:
            raise ChargeRejected(str(exc)) from None
        self.account = account
        self.livemode = cfg.environment == "production"
        self.merchant_accounts = cfg.merchant_accounts

    def sale_params(self, req: ChargeRequest) -> dict[str, Any]:
        merchant_account = self.merchant_accounts.get(req.amount.currency)
        if not merchant_account:
            raise ChargeRejected(
                f"BRAINTREE_MERCHANT_ACCOUNTS has no merchant account for {req.amount.currency} "
                f"(account {self.account!r})"
            )
        custom = {"invoice_id": req.invoice_id, "customer_id": req.customer_id}
        if req.subscription_id:
            custom["subscription_id"] = req.subscription_id
        return {
            "amount": amount_string(req),
            "merchant_account_id": merchant_account,
            "payment_method_token": req.method.method_ref,
            "order_id": req.attempt_id,
            "transaction_source": "recurring",  # merchant-initiated, on the stored credential
            "custom_fields": custom,
            "options": {"submit_for_settlement": True},
        }

    def charge(self, req: ChargeRequest) -> ChargeResult:
        params = self.sale_params(req)
        found = self._find(req)
        if found is not None:
            return self._result(found, req)
        try:
            res = self._call(self._gateway.transaction.sale, params)
        except ChargeUnavailable:
            # Ambiguous: the sale may have been created before the answer was lost.
            found = self._find_quietly(req)
            if found is not None:
                return self._result(found, req)
            raise
        tx = getattr(res, "transaction", None)
        if res.is_success or tx is not None:
            if _attr(tx, "status") == "gateway_rejected" and _attr(tx, "gateway_rejection_reason") == "duplicate":
                original = self._find_quietly(req)
                if original is None:
                    raise ChargeUnavailable("braintree rejected a duplicate whose original is not searchable yet")
                return self._result(original, req)
            return self._result(tx, req)
        codes = ",".join(str(e.code) for e in res.errors.deep_errors)
        raise ChargeRejected(f"braintree refused the request: {res.message} ({codes})")

    def _find(self, req: ChargeRequest) -> Any:
        """The transaction an earlier delivery of this attempt created, if any (a success wins)."""
        import braintree

        coll = self._call(self._gateway.transaction.search, braintree.TransactionSearch.order_id == req.attempt_id)
        txs: list[Any] = self._call(lambda: list(coll.items)) if coll.ids else []
        if not txs:
            return None
        ok = [t for t in txs if t.status in SUBMITTED or t.status in PENDING]
        return (ok or txs)[-1]

    def _find_quietly(self, req: ChargeRequest) -> Any:
        try:
            return self._find(req)
        except ChargeUnavailable:
            return None

    def _call(self, fn: Any, *args: Any) -> Any:
        from braintree.exceptions import (
            AuthenticationError,
            AuthorizationError,
            ConfigurationError,
            NotFoundError,
            UpgradeRequiredError,
        )
        from braintree.exceptions.braintree_error import BraintreeError

        try:
            return fn(*args)
        except (AuthenticationError, AuthorizationError, ConfigurationError, NotFoundError, UpgradeRequiredError) as e:
            raise ChargeRejected(f"braintree refused the request: {type(e).__name__} {e}") from e
        except BraintreeError as exc:  # 5xx, 429, timeouts, connection errors, unexpected answers
            raise ChargeUnavailable(f"braintree unavailable: {type(exc).__name__} {exc}") from exc

    def _result(self, tx: Any, req: ChargeRequest) -> ChargeResult:
        if Decimal(tx.amount) != req.amount.to_decimal() or tx.currency_iso_code != req.amount.currency:
            raise ChargeRejected(
                f"braintree transaction {tx.id} for order {req.attempt_id} is {tx.amount} {tx.currency_iso_code}, "
                f"not {req.amount}"
            )
        created = _attr(tx, "created_at") or dt.datetime.now(dt.UTC)
        base = ChargeResult(
            "succeeded",
            psp=self.psp,
            account=self.account,
            psp_payment_id=str(tx.id),
            livemode=self.livemode,
            created_at=created if created.tzinfo else created.replace(tzinfo=dt.UTC),
        )
        status = _attr(tx, "status")
        if status in SUBMITTED:
            bank = _attr(tx, "payment_instrument_type") in BANK_DEBITS
            return replace(base, status="pending") if bank and status != "settled" else base
        if status in PENDING:
            return replace(base, status="pending")
        if status == "processor_declined":
            code = _attr(tx, "processor_response_code")
            decline = classify(self.psp, code, "processor_declined")
            result = declined(base, decline, code or "processor_declined", _attr(tx, "processor_response_text"))
            if _attr(tx, "processor_response_type") == "hard_declined":  # Braintree's own word outranks our table
                result = replace(result, retryable=False, retry_at=None)
            return result
        if status == "gateway_rejected":
            reason = _attr(tx, "gateway_rejection_reason") or "gateway_rejected"
            if reason == "application_incomplete":
                raise ChargeRejected("braintree merchant account application is incomplete")
            return declined(base, classify(self.psp, reason), reason, f"gateway rejected: {reason}")
        if status in FAILED:
            code = _attr(tx, "processor_settlement_response_code")
            decline = classify(self.psp, code, status)
            return declined(base, decline, code or status, _attr(tx, "processor_settlement_response_text") or status)
        raise ChargeUnavailable(f"braintree answered an unknown transaction status {status!r}")


def _attr(tx: Any, name: str) -> Any:
    """An attribute of an SDK transaction, None when the answer left it out (the SDK sets only what came)."""
    value = getattr(tx, name, None)
    return None if value == "" else value
