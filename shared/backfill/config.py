"""Backfill settings from the environment, read per tick (a rotated key takes effect without a restart).

Credentials per merchant account follow the one ``NAME__<ACCOUNT>`` rule of
:func:`shared.config.account_env_name`. Which accounts are backfilled: ``BACKFILL_ACCOUNTS``
(``stripe,stripe/eu,gocardless``), or by default the default account of every PSP with an event list
whose credentials are set.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from shared.config import DEFAULT_ACCOUNT, ConfigError, account_env, env_int, env_value

# The API credentials each PSP's event list needs (read-only scopes suffice; see the README).
CREDENTIALS: Mapping[str, tuple[str, ...]] = {
    "stripe": ("STRIPE_API_KEY",),
    "paypal": ("PAYPAL_CLIENT_ID", "PAYPAL_CLIENT_SECRET"),
    "gocardless": ("GOCARDLESS_ACCESS_TOKEN",),
    "checkout": ("CHECKOUT_SECRET_KEY",),
}
# A local stub in tests and demos; unset in the cloud (each source then uses the PSP's host for the mode).
API_BASE: Mapping[str, str] = {p: f"{p.upper()}_API_BASE" for p in CREDENTIALS}


@dataclass(frozen=True, slots=True)
class SourceSettings:
    """What one (psp, account) needs to list its events."""

    psp: str
    account: str
    livemode: bool
    credentials: Mapping[str, str]
    api_base: str | None

    def get(self, name: str) -> str:
        return self.credentials.get(name, "")


@dataclass(frozen=True, slots=True)
class BackfillSettings:
    accounts: tuple[tuple[str, str], ...]  # (psp, account) pairs to backfill
    lookback_s: int  # first run of an account: how far back to look
    overlap_s: int  # each window re-reads this much before the watermark (events listed late)
    delay_s: int  # events younger than this are left to their webhook
    max_window_s: int  # never look further back than this (a stalled account catches up from here)
    page_size: int
    max_pages: int  # per account per tick; the cursor carries on at the next tick
    lease_s: int  # one run per account at a time; longer than the function's timeout


def _int(name: str, default: int, low: int, high: int) -> int:
    value = env_int(name, default)
    if not low <= value <= high:
        raise ConfigError(f"{name} must be between {low} and {high}, got {value}")
    return value


def source_settings(psp: str, account: str) -> SourceSettings | None:
    """The account's settings, or None when its credentials are not (all) set."""
    names = CREDENTIALS.get(psp)
    if names is None:
        return None
    creds = {n: account_env(n, account) or "" for n in names}
    if not all(creds.values()):
        return None
    mode = (account_env("PSP_MODE", account) or env_value("PSP_MODE") or "test").lower()
    if mode not in ("test", "live"):
        raise ConfigError(f"PSP_MODE must be test or live, got {mode!r}")
    return SourceSettings(psp, account, mode == "live", creds, env_value(API_BASE[psp]))


def _accounts() -> tuple[tuple[str, str], ...]:
    raw = env_value("BACKFILL_ACCOUNTS")
    if raw is None:
        return tuple((p, DEFAULT_ACCOUNT) for p in CREDENTIALS if source_settings(p, DEFAULT_ACCOUNT) is not None)
    out: list[tuple[str, str]] = []
    for item in (x.strip().lower() for x in raw.split(",")):
        if not item:
            continue
        psp, _, account = item.partition("/")
        if psp not in CREDENTIALS:
            raise ConfigError(f"BACKFILL_ACCOUNTS: {psp!r} has no event list (one of {', '.join(CREDENTIALS)})")
        out.append((psp, account or DEFAULT_ACCOUNT))
    return tuple(dict.fromkeys(out))


def backfill_settings() -> BackfillSettings:
    day = 86400
    return BackfillSettings(
        accounts=_accounts(),
        lookback_s=_int("BACKFILL_LOOKBACK_S", day, 60, 30 * day),
        overlap_s=_int("BACKFILL_OVERLAP_S", 3600, 0, 7 * day),
        delay_s=_int("BACKFILL_DELAY_S", 300, 0, day),
        max_window_s=_int("BACKFILL_MAX_WINDOW_S", 3 * day, 60, 30 * day),
        page_size=_int("BACKFILL_PAGE_SIZE", 100, 1, 100),
        max_pages=_int("BACKFILL_MAX_PAGES", 20, 1, 1000),
        lease_s=_int("BACKFILL_LEASE_S", 360, 30, 3600),
    )
