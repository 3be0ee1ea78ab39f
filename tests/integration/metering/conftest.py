"""The renewals environment (topics with pull subscriptions, a PSP stub) for the threshold and final-usage tests:
defined once in tests.fixtures.renewals."""

from tests.fixtures.renewals import env  # noqa: F401
