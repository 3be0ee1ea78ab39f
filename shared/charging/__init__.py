"""Charging a stored payment method through a PSP's official SDK, one module per PSP.

Why a registry of small adapters: the collector must not know any PSP. Each adapter turns a
:class:`ChargeRequest` into one API call with an idempotency key derived from invoice and attempt, and
the PSP's answer into a :class:`ChargeResult` (succeeded / failed / pending). Transport trouble raises
:class:`ChargeUnavailable`, so the message is retried with the SAME key and the PSP answers with the
first result instead of charging again.
"""

from shared.charging.base import (
    ChargeError,
    Charger,
    ChargeRejected,
    ChargeRequest,
    ChargeResult,
    ChargeUnavailable,
)
from shared.charging.registry import charger_for, register_charger

__all__ = [
    "ChargeError",
    "ChargeRejected",
    "ChargeRequest",
    "ChargeResult",
    "ChargeUnavailable",
    "Charger",
    "charger_for",
    "register_charger",
]
