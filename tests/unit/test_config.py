"""Settings: read from the environment, loud about what cannot work."""

from __future__ import annotations

import pytest

from shared.config import ConfigError, load_settings


def test_project_is_required() -> None:
    with pytest.raises(ConfigError, match="GOOGLE_CLOUD_PROJECT"):
        load_settings({})


def test_defaults_and_emulators() -> None:
    s = load_settings({"GOOGLE_CLOUD_PROJECT": "demo-x", "PUBSUB_EMULATOR_HOST": "127.0.0.1:1"})
    assert s.on_emulators
    assert s.topic_path("payment-events") == "projects/demo-x/topics/payment-events"
    assert s.invoice_bucket == "demo-x-invoices"
    assert s.idempotency_ttl_s == 7 * 24 * 3600


def test_topic_names_can_be_overridden_per_environment() -> None:
    s = load_settings({"GOOGLE_CLOUD_PROJECT": "p", "TOPIC_PAYMENT_EVENTS": "payment-events-v2"})
    assert s.topic_path("payment-events") == "projects/p/topics/payment-events-v2"
    assert s.topic_path("invoice-events") == "projects/p/topics/invoice-events"


def test_malformed_integer_names_the_variable() -> None:
    with pytest.raises(ConfigError, match="IDEMPOTENCY_TTL_S"):
        load_settings({"GOOGLE_CLOUD_PROJECT": "p", "IDEMPOTENCY_TTL_S": "soon"})
