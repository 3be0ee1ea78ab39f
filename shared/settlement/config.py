"""Settlement intake settings per merchant account, read per call (a rotated key applies without a restart).

Names follow the one ``NAME__<ACCOUNT>`` rule of :func:`shared.config.account_env_name`; they are the names
charging and webhooks already use for the same PSP account, so one account has one set of secrets.
``*_API_BASE`` variables exist only to point the SDKs at a local stub in tests and demos
(``STRIPE_SETTLEMENT_API_BASE`` lets the settlement pull use another stub than charging on one stack).
"""

from __future__ import annotations

from dataclasses import dataclass

from shared.config import account_env, env_value

CHECKOUT_SANDBOX_BASE = "https://api.sandbox.checkout.com"
CHECKOUT_LIVE_BASE = "https://api.checkout.com"


@dataclass(frozen=True, slots=True)
class StripeSettlementSettings:
    api_key: str | None  # STRIPE_API_KEY[__<ACCOUNT>]: a restricted key with read access to payouts suffices
    api_base: str | None  # STRIPE_SETTLEMENT_API_BASE, else STRIPE_API_BASE


@dataclass(frozen=True, slots=True)
class GoCardlessSettlementSettings:
    access_token: str | None  # GOCARDLESS_ACCESS_TOKEN[__<ACCOUNT>] (read-only token suffices)
    environment: str  # GOCARDLESS_ENVIRONMENT: sandbox (default) or live
    api_base: str | None  # GOCARDLESS_API_BASE


@dataclass(frozen=True, slots=True)
class BraintreeSettlementSettings:
    merchant_id: str | None  # BRAINTREE_MERCHANT_ID[__<ACCOUNT>]
    public_key: str | None  # BRAINTREE_PUBLIC_KEY[__<ACCOUNT>]
    private_key: str | None  # BRAINTREE_PRIVATE_KEY[__<ACCOUNT>]
    environment: str  # BRAINTREE_ENVIRONMENT: sandbox (default) or production
    api_base: str | None  # BRAINTREE_API_BASE: http://host:port of a local stub


@dataclass(frozen=True, slots=True)
class CheckoutSettlementSettings:
    secret_key: str | None  # CHECKOUT_SECRET_KEY[__<ACCOUNT>] with the reports scope
    api_base: str  # CHECKOUT_API_BASE, else sandbox or live by CHECKOUT_ENVIRONMENT


def stripe_settings(account: str) -> StripeSettlementSettings:
    base = env_value("STRIPE_SETTLEMENT_API_BASE") or env_value("STRIPE_API_BASE")
    return StripeSettlementSettings(account_env("STRIPE_API_KEY", account), base)


def gocardless_settings(account: str) -> GoCardlessSettlementSettings:
    return GoCardlessSettlementSettings(
        access_token=account_env("GOCARDLESS_ACCESS_TOKEN", account),
        environment=env_value("GOCARDLESS_ENVIRONMENT") or "sandbox",
        api_base=env_value("GOCARDLESS_API_BASE"),
    )


def braintree_settings(account: str) -> BraintreeSettlementSettings:
    return BraintreeSettlementSettings(
        merchant_id=account_env("BRAINTREE_MERCHANT_ID", account),
        public_key=account_env("BRAINTREE_PUBLIC_KEY", account),
        private_key=account_env("BRAINTREE_PRIVATE_KEY", account),
        environment=env_value("BRAINTREE_ENVIRONMENT") or "sandbox",
        api_base=env_value("BRAINTREE_API_BASE"),
    )


def checkout_settings(account: str) -> CheckoutSettlementSettings:
    live = env_value("CHECKOUT_ENVIRONMENT") == "production"
    return CheckoutSettlementSettings(
        secret_key=account_env("CHECKOUT_SECRET_KEY", account),
        api_base=env_value("CHECKOUT_API_BASE") or (CHECKOUT_LIVE_BASE if live else CHECKOUT_SANDBOX_BASE),
    )
