"""The renewals environment (topics with pull subscriptions, a PSP stub) for the threshold tests."""

from tests.integration.renewals.conftest import env  # noqa: F401
