"""Which adapter serves which path segment: adding a PSP is one line here."""

from __future__ import annotations

from shared.psp.adyen import AdyenAdapter
from shared.psp.base import Adapter
from shared.psp.braintree import BraintreeAdapter
from shared.psp.checkout import CheckoutAdapter
from shared.psp.gocardless import GoCardlessAdapter
from shared.psp.paypal import PayPalAdapter
from shared.psp.stripe import StripeAdapter

ADAPTERS: dict[str, Adapter] = {
    "stripe": StripeAdapter(),
    "adyen": AdyenAdapter(),
    "paypal": PayPalAdapter(),
    "gocardless": GoCardlessAdapter(),
    "braintree": BraintreeAdapter(),
    "checkout": CheckoutAdapter(),
}
