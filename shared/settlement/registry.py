"""PSP name -> settlement intake. Adding a PSP is one adapter module plus one line in each table.

This module is the one home of the lookup: the bucket trigger asks :func:`detect` and ``REPORT_PARSERS``,
the scheduled tick asks :func:`source_for` (puller and the SDK client built for the account, together).

``detect`` maps a bucket object name ``settlement/<psp>/<account>/<file>`` to ``(psp, account)`` and refuses
anything else (unknown PSP, a PSP without a file source, path tricks, a nested or hidden name), so a file
dropped in the wrong place is never parsed as another PSP's or another account's.
"""

from __future__ import annotations

import re
from collections.abc import Callable

from shared.settlement.adapters import adyen, braintree, checkout, gocardless, paypal, stripe
from shared.settlement.lines import SettlementBatch
from shared.webhooks.config import ACCOUNT_RE

REPORT_PARSERS: dict[str, Callable[..., SettlementBatch]] = {
    "stripe": stripe.parse_report,  # payout reconciliation itemised CSV
    "adyen": adyen.parse_report,  # settlement details report
    "paypal": paypal.parse_report,  # STL settlement report
    "checkout": checkout.parse_report,  # settlement breakdown / payouts reports
}
PULLERS: dict[str, Callable[..., SettlementBatch]] = {
    "stripe": stripe.pull,  # payouts + balance transactions by payout
    "gocardless": gocardless.pull,  # payouts + payout items
    "braintree": braintree.pull,  # transactions by disbursement date
    "checkout": checkout.pull,  # Reports API: breakdown + payouts files
}
CLIENTS: dict[str, Callable[[str], object]] = {
    "stripe": stripe.client,
    "gocardless": gocardless.client,
    "braintree": braintree.client,
    "checkout": checkout.client,
}


class NoSource(LookupError):
    """A configured pull source names a PSP without an API source (a configuration error, not a retry)."""


def source_for(psp: str, account: str) -> tuple[Callable[..., SettlementBatch], object]:
    """The API puller of ``psp`` and its client for ``account``: both from here, so a PSP with a puller
    always gets its client (the client reads that account's secrets when called, never at import)."""
    puller, make_client = PULLERS.get(psp), CLIENTS.get(psp)
    if puller is None or make_client is None:
        raise NoSource(f"no API settlement source for {psp!r}")
    return puller, make_client(account)


_FILE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,199}")  # PSP file names: STL-20260302.01.009.CSV ...


def detect(object_name: str) -> tuple[str, str] | None:
    """``settlement/<psp>/<account>/<file>`` -> ``(psp, account)`` for a PSP with a file parser; else None."""
    parts = object_name.split("/")
    if len(parts) != 4 or parts[0] != "settlement":
        return None
    _, psp, account, name = parts
    if psp not in REPORT_PARSERS or not ACCOUNT_RE.fullmatch(account) or not _FILE.fullmatch(name) or ".." in name:
        return None
    return psp, account
