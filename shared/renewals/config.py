"""Renewal settings from the environment (read per call: cheap, and tests change them)."""

from __future__ import annotations

import os
from dataclasses import dataclass

from shared.domain.money import Rounding
from shared.domain.subscriptions import DunningPolicy


@dataclass(frozen=True, slots=True)
class RenewalSettings:
    shards: int  # planner tasks per tick (1..256); each owns the virtual shards v with v % shards == task
    page_size: int  # documents per query page (cursor pagination)
    max_per_invocation: int  # then a continuation tick takes over the shard
    republish_s: int  # a claimed period whose RenewalDue was lost is re-sent after this
    charge_lease_s: int  # a charge attempt "in progress" longer than this is taken over
    allow_test_clock: bool  # honour an explicit "now" in ticks (never in production)
    dunning: DunningPolicy


def _int(name: str, default: int) -> int:
    raw = os.environ.get(name) or ""
    return int(raw) if raw else default


def renewal_settings() -> RenewalSettings:
    return RenewalSettings(
        shards=_int("RENEWALS_SHARDS", 16),
        page_size=_int("RENEWALS_PAGE_SIZE", 200),
        max_per_invocation=_int("RENEWALS_MAX_PER_INVOCATION", 2000),
        republish_s=_int("RENEWALS_REPUBLISH_S", 600),
        charge_lease_s=_int("RENEWALS_CHARGE_LEASE_S", 120),
        allow_test_clock=os.environ.get("RENEWALS_ALLOW_TEST_CLOCK", "").lower() in ("1", "true", "yes"),
        dunning=DunningPolicy.parse(
            os.environ.get("DUNNING_RETRY_DAYS") or "1,3,5,7", os.environ.get("DUNNING_FINAL_STATUS") or "unpaid"
        ),
    )


def proration_rounding() -> Rounding:
    """``PRORATION_ROUNDING``: how proration lines round (a business rule, ``HALF_UP`` unless configured)."""
    name = os.environ.get("PRORATION_ROUNDING") or "HALF_UP"
    try:
        return Rounding[name]
    except KeyError:
        raise ValueError(f"PRORATION_ROUNDING must be one of {', '.join(Rounding.__members__)}, got {name!r}") from None
