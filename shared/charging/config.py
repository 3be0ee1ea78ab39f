"""Charging settings from the environment, read per call (a rotated key takes effect without a restart).

Secrets per merchant account follow the one ``NAME__<ACCOUNT>`` rule of :func:`shared.config.account_env_name`.
"""

from __future__ import annotations

from dataclasses import dataclass

from shared.config import account_env, env_prefixed, env_value

DEFAULT_ADYEN_CHECKOUT_URL = "https://checkout-test.adyen.com"


@dataclass(frozen=True, slots=True)
class StripeSettings:
    api_key: str | None  # STRIPE_API_KEY[__<ACCOUNT>] (Secret Manager)
    api_base: str | None  # STRIPE_API_BASE: a local stub in tests and demos; unset in the cloud


@dataclass(frozen=True, slots=True)
class AdyenSettings:
    api_key: str | None  # ADYEN_API_KEY[__<ACCOUNT>]
    merchant_account: str | None  # ADYEN_MERCHANT_ACCOUNT[__<ACCOUNT>]
    environment: str  # ADYEN_ENVIRONMENT: test (default) or live
    live_prefix: str | None  # ADYEN_LIVE_PREFIX, live only
    checkout_url: str  # ADYEN_CHECKOUT_URL: a local stub in tests and demos


@dataclass(frozen=True, slots=True)
class GoCardlessSettings:
    access_token: str | None  # GOCARDLESS_ACCESS_TOKEN[__<ACCOUNT>]
    environment: str  # GOCARDLESS_ENVIRONMENT: sandbox (default) or live
    api_url: str | None  # GOCARDLESS_API_URL: a local stub in tests and demos


@dataclass(frozen=True, slots=True)
class BraintreeSettings:
    merchant_id: str | None  # BRAINTREE_MERCHANT_ID[__<ACCOUNT>] (shared with the webhooks function)
    public_key: str | None  # BRAINTREE_PUBLIC_KEY[__<ACCOUNT>]
    private_key: str | None  # BRAINTREE_PRIVATE_KEY[__<ACCOUNT>]
    merchant_accounts: dict[str, str]  # BRAINTREE_MERCHANT_ACCOUNTS[__<ACCOUNT>]: currency -> merchant account id
    environment: str  # BRAINTREE_ENVIRONMENT: sandbox (default) or production
    api_url: str | None  # BRAINTREE_API_URL: a local stub in tests and demos


@dataclass(frozen=True, slots=True)
class CheckoutSettings:
    secret_key: str | None  # CHECKOUT_SECRET_KEY[__<ACCOUNT>]
    processing_channel_id: str | None  # CHECKOUT_PROCESSING_CHANNEL_ID[__<ACCOUNT>]
    subdomain: str | None  # CHECKOUT_SUBDOMAIN[__<ACCOUNT>]: the merchant-specific API host prefix
    environment: str  # CHECKOUT_ENVIRONMENT: sandbox (default) or production
    api_url: str | None  # CHECKOUT_API_URL: a local stub in tests and demos


def stripe_settings(account: str) -> StripeSettings:
    return StripeSettings(api_key=account_env("STRIPE_API_KEY", account), api_base=env_value("STRIPE_API_BASE"))


def adyen_settings(account: str) -> AdyenSettings:
    return AdyenSettings(
        api_key=account_env("ADYEN_API_KEY", account),
        merchant_account=account_env("ADYEN_MERCHANT_ACCOUNT", account),
        environment=env_value("ADYEN_ENVIRONMENT") or "test",
        live_prefix=env_value("ADYEN_LIVE_PREFIX"),
        checkout_url=env_value("ADYEN_CHECKOUT_URL") or DEFAULT_ADYEN_CHECKOUT_URL,
    )


def gocardless_settings(account: str) -> GoCardlessSettings:
    return GoCardlessSettings(
        access_token=account_env("GOCARDLESS_ACCESS_TOKEN", account),
        environment=env_value("GOCARDLESS_ENVIRONMENT") or "sandbox",
        api_url=env_value("GOCARDLESS_API_URL"),
    )


def braintree_settings(account: str) -> BraintreeSettings:
    return BraintreeSettings(
        merchant_id=account_env("BRAINTREE_MERCHANT_ID", account),
        public_key=account_env("BRAINTREE_PUBLIC_KEY", account),
        private_key=account_env("BRAINTREE_PRIVATE_KEY", account),
        merchant_accounts=_currency_map(account_env("BRAINTREE_MERCHANT_ACCOUNTS", account)),
        environment=env_value("BRAINTREE_ENVIRONMENT") or "sandbox",
        api_url=env_value("BRAINTREE_API_URL"),
    )


def checkout_settings(account: str) -> CheckoutSettings:
    return CheckoutSettings(
        secret_key=account_env("CHECKOUT_SECRET_KEY", account),
        processing_channel_id=account_env("CHECKOUT_PROCESSING_CHANNEL_ID", account),
        subdomain=account_env("CHECKOUT_SUBDOMAIN", account),
        environment=env_value("CHECKOUT_ENVIRONMENT") or "sandbox",
        api_url=env_value("CHECKOUT_API_URL"),
    )


def _currency_map(value: str | None) -> dict[str, str]:
    """``EUR=acme_eur,USD=acme_usd`` -> ``{"EUR": "acme_eur", "USD": "acme_usd"}`` (malformed pairs are skipped)."""
    pairs = (p.split("=", 1) for p in (value or "").split(",") if "=" in p)
    return {cur.strip().upper(): acc.strip() for cur, acc in pairs if cur.strip() and acc.strip()}


def settings_fingerprint(psp: str) -> tuple[tuple[str, str], ...]:
    """Every ``<PSP>_*`` variable: the registry keys its cached SDK clients by it, so changed keys rebuild."""
    return env_prefixed(psp.upper() + "_")
