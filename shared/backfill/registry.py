"""Which PSPs offer a list of past events, and how the others' gaps are caught."""

from __future__ import annotations

from collections.abc import Mapping

from shared.backfill.base import EventSource
from shared.backfill.checkout import CheckoutEvents
from shared.backfill.gocardless import GoCardlessEvents
from shared.backfill.paypal import PayPalEvents
from shared.backfill.stripe import StripeEvents

SOURCES: Mapping[str, EventSource] = {
    "stripe": StripeEvents(),
    "paypal": PayPalEvents(),
    "gocardless": GoCardlessEvents(),
    "checkout": CheckoutEvents(),
}

# No API lists past notifications: a missed webhook is found by reconciliation against the PSP's
# reports instead (README, Operator runbook).
WITHOUT_LIST: Mapping[str, str] = {
    "adyen": "settlement details and payment accounting reports, matched by PSP reference; Customer Area resend",
    "braintree": "transaction and dispute searches by settlement / received date, matched by transaction id",
}
