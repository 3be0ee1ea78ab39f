"""The renewals environment (topics with pull subscriptions, a PSP stub): defined once in tests.fixtures.renewals."""

from tests.fixtures.renewals import env  # noqa: F401
