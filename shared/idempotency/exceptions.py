"""Idempotency errors, named after their Powertools counterparts."""

from __future__ import annotations


class IdempotencyError(Exception):
    """Base class."""


class IdempotencyAlreadyInProgressError(IdempotencyError):
    """Another execution holds an unexpired lease on this key: retry later (Pub/Sub will)."""


class IdempotencyPayloadMismatchError(IdempotencyError):
    """The key was seen before with a different payload: a caller bug or a forged replay."""


class IdempotencyKeyError(IdempotencyError):
    """The key function returned an empty key."""


class ContentionError(IdempotencyError, RuntimeError):
    """A compare-and-set kept losing to concurrent writers past its retry policy: retry later."""
