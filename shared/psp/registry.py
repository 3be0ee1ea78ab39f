"""Which adapter serves which path segment: adding a PSP is one line here (and its loader below).

Adapters are imported on first use: a cold instance answering a Stripe delivery does not pay for
PayPal's certificate code (``cryptography``) or the other PSPs' modules. The imports are written out
(not strings) so the deploy bundle's import closure still ships every adapter.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator, Mapping
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from shared.psp.base import Adapter


def _stripe() -> Adapter:
    from shared.psp.stripe import StripeAdapter

    return StripeAdapter()


def _adyen() -> Adapter:
    from shared.psp.adyen import AdyenAdapter

    return AdyenAdapter()


def _paypal() -> Adapter:
    from shared.psp.paypal import PayPalAdapter

    return PayPalAdapter()


def _gocardless() -> Adapter:
    from shared.psp.gocardless import GoCardlessAdapter

    return GoCardlessAdapter()


def _braintree() -> Adapter:
    from shared.psp.braintree import BraintreeAdapter

    return BraintreeAdapter()


def _checkout() -> Adapter:
    from shared.psp.checkout import CheckoutAdapter

    return CheckoutAdapter()


class _Lazy(Mapping[str, "Adapter"]):
    """A read-only mapping whose values are built (once, thread-safely) when first looked up."""

    def __init__(self, loaders: dict[str, Callable[[], Adapter]]) -> None:
        self._loaders = loaders
        self._built: dict[str, Adapter] = {}
        self._lock = threading.Lock()

    def __getitem__(self, name: str) -> Adapter:
        adapter = self._built.get(name)
        if adapter is None:
            loader = self._loaders[name]  # KeyError for an unknown PSP, as a dict
            with self._lock:
                adapter = self._built.get(name) or self._built.setdefault(name, loader())
        return adapter

    def __contains__(self, name: object) -> bool:
        return name in self._loaders

    def __iter__(self) -> Iterator[str]:
        return iter(self._loaders)

    def __len__(self) -> int:
        return len(self._loaders)


ADAPTERS: Mapping[str, Adapter] = _Lazy(
    {
        "stripe": _stripe,
        "adyen": _adyen,
        "paypal": _paypal,
        "gocardless": _gocardless,
        "braintree": _braintree,
        "checkout": _checkout,
    }
)
