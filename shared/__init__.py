"""Shared core imported by every Cloud Function: domain, adapters, events, idempotency, config, logging.

Each function deploys as ``main.py`` plus a copy of this package, so ``import shared`` works the same in
tests, on the local stack and in production.
"""
