"""Per-account configuration from the environment: names, suffixes, completeness, mode."""

from __future__ import annotations

import pytest

from shared.psp.adyen import AdyenAdapter
from shared.psp.checkout import CheckoutAdapter
from shared.psp.stripe import StripeAdapter
from shared.webhooks import config


def test_default_and_suffixed_accounts() -> None:
    env = {"STRIPE_WEBHOOK_SECRETS": "whsec_a, whsec_b", "STRIPE_WEBHOOK_SECRETS__EU_WEST": "whsec_eu"}
    default = config.load(StripeAdapter(), "default", env)
    assert default is not None
    assert default.secrets("STRIPE_WEBHOOK_SECRETS") == ("whsec_a", "whsec_b")
    eu = config.load(StripeAdapter(), "eu-west", env)
    assert eu is not None
    assert eu.secrets("STRIPE_WEBHOOK_SECRETS") == ("whsec_eu",)
    assert config.load(StripeAdapter(), "us", env) is None


def test_account_needs_every_required_variable() -> None:
    assert config.load(AdyenAdapter(), "default", {"ADYEN_HMAC_KEYS": "00"}) is None
    assert config.load(AdyenAdapter(), "default", {"ADYEN_HMAC_KEYS": "00", "ADYEN_BASIC_AUTH": " "}) is None
    assert config.load(AdyenAdapter(), "default", {"ADYEN_HMAC_KEYS": "00", "ADYEN_BASIC_AUTH": "u:p"}) is not None


def test_optional_variable_is_per_account_too() -> None:
    env = {"CHECKOUT_WEBHOOK_SECRETS__UK": "k", "CHECKOUT_AUTHORIZATION": "default-only"}
    uk = config.load(CheckoutAdapter(), "uk", env)
    assert uk is not None
    assert uk.get("CHECKOUT_AUTHORIZATION") == ""


def test_mode_global_and_per_account() -> None:
    env = {"STRIPE_WEBHOOK_SECRETS": "s", "STRIPE_WEBHOOK_SECRETS__EU": "s", "PSP_MODE": "live", "PSP_MODE__EU": "test"}
    d = config.load(StripeAdapter(), "default", env)
    eu = config.load(StripeAdapter(), "eu", env)
    assert d is not None
    assert eu is not None
    assert (d.livemode, eu.livemode) == (True, False)
    assert config.load(StripeAdapter(), "default", {"STRIPE_WEBHOOK_SECRETS": "s"}).livemode is False  # type: ignore[union-attr]
    with pytest.raises(config.ModeError):
        config.load(StripeAdapter(), "default", {"STRIPE_WEBHOOK_SECRETS": "s", "PSP_MODE": "prod"})


def test_rotated_secret_takes_effect_without_restart() -> None:
    env = {"STRIPE_WEBHOOK_SECRETS": "old"}
    assert config.load(StripeAdapter(), "default", env).secrets("STRIPE_WEBHOOK_SECRETS") == ("old",)  # type: ignore[union-attr]
    env["STRIPE_WEBHOOK_SECRETS"] = "new"
    assert config.load(StripeAdapter(), "default", env).secrets("STRIPE_WEBHOOK_SECRETS") == ("new",)  # type: ignore[union-attr]
