"""PSP name -> adapter. Adding a PSP is one module plus one line here."""

from __future__ import annotations

import threading
from collections.abc import Callable

from shared.charging.base import Charger, ChargeRejected
from shared.charging.config import settings_fingerprint

_FACTORIES: dict[str, Callable[[str], Charger]] = {}
# SDK clients keep HTTP connections alive: reuse one per (psp, account, its settings) per instance.
_CACHE: dict[tuple[str, str, tuple[tuple[str, str], ...]], Charger] = {}
_LOCK = threading.Lock()


def register_charger(psp: str, factory: Callable[[str], Charger]) -> None:
    _FACTORIES[psp] = factory


def known_psps() -> frozenset[str]:
    """The PSPs a subscription can be charged through (checked when it is created)."""
    if not _FACTORIES:
        _register_builtin()
    return frozenset(_FACTORIES)


def charger_for(psp: str, account: str = "default") -> Charger:
    """The adapter for ``psp`` and merchant ``account``; unknown PSPs are an operator problem."""
    if not _FACTORIES:
        _register_builtin()
    factory = _FACTORIES.get(psp)
    if factory is None:
        raise ChargeRejected(f"no charging adapter for PSP {psp!r}")
    key = (psp, account, settings_fingerprint(psp))
    with _LOCK:
        charger = _CACHE.get(key)
        if charger is None:
            charger = _CACHE[key] = factory(account)
    return charger


def _register_builtin() -> None:
    from shared.charging import adyen, braintree, checkout, gocardless, stripe

    register_charger("stripe", stripe.StripeCharger)
    register_charger("adyen", adyen.AdyenCharger)
    register_charger("gocardless", gocardless.GoCardlessCharger)
    register_charger("braintree", braintree.BraintreeCharger)
    register_charger("checkout", checkout.CheckoutCharger)
