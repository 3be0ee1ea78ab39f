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


def settings_fingerprint(psp: str) -> tuple[tuple[str, str], ...]:
    """Every ``<PSP>_*`` variable: the registry keys its cached SDK clients by it, so changed keys rebuild."""
    return env_prefixed(psp.upper() + "_")
