"""PSP name -> evidence submitter. GoCardless has no dispute defence API (chargebacks of bank debits are
final at the scheme), so it has no line here: its disputes are answered outside, and ``submit`` says so."""

from __future__ import annotations

from collections.abc import Callable

from shared.disputes.submit.base import SubmitError, Submitter


def _factories() -> dict[str, Callable[[str], Submitter]]:
    from shared.disputes.submit import adyen, braintree, checkout, paypal, stripe

    return {
        "stripe": stripe.StripeSubmitter,
        "adyen": adyen.AdyenSubmitter,
        "paypal": paypal.PayPalSubmitter,
        "braintree": braintree.BraintreeSubmitter,
        "checkout": checkout.CheckoutSubmitter,
    }


def supported(psp: str) -> bool:
    return psp in _factories()


def submitter_for(psp: str, account: str = "default") -> Submitter:
    factory = _factories().get(psp)
    if factory is None:
        raise SubmitError(f"{psp} offers no API to submit dispute evidence; answer it in the PSP's dashboard")
    return factory(account)
