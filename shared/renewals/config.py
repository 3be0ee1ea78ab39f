"""Renewal settings from the environment (read per call: cheap, and tests change them).

Dunning is configurable per merchant account (``shared.config.account_env_name``): ``DUNNING_RETRY_DAYS__EU``
and ``DUNNING_FINAL_STATUS__EU`` for subscriptions charged through account ``eu``, each falling back to the
default account's value.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

from shared.config import DEFAULT_ACCOUNT, account_env, env_int
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
    dunning: DunningPolicy  # the default account's

    def dunning_for(self, account: str | None) -> DunningPolicy:
        """The dunning schedule of the subscription's merchant account (the default one when unset)."""
        if not account or account == DEFAULT_ACCOUNT:
            return self.dunning
        return dunning_policy(account)


def dunning_policy(account: str = DEFAULT_ACCOUNT) -> DunningPolicy:
    """``DUNNING_RETRY_DAYS[__<ACCOUNT>]`` (default ``1,3,5,7``) and ``DUNNING_FINAL_STATUS[__<ACCOUNT>]``."""
    days = account_env("DUNNING_RETRY_DAYS", account) or os.environ.get("DUNNING_RETRY_DAYS") or "1,3,5,7"
    final = account_env("DUNNING_FINAL_STATUS", account) or os.environ.get("DUNNING_FINAL_STATUS") or "unpaid"
    return DunningPolicy.parse(days, final)


def renewal_settings() -> RenewalSettings:
    return RenewalSettings(
        shards=env_int("RENEWALS_SHARDS", 16),
        page_size=env_int("RENEWALS_PAGE_SIZE", 200),
        max_per_invocation=env_int("RENEWALS_MAX_PER_INVOCATION", 2000),
        republish_s=env_int("RENEWALS_REPUBLISH_S", 600),
        charge_lease_s=env_int("RENEWALS_CHARGE_LEASE_S", 120),
        allow_test_clock=os.environ.get("RENEWALS_ALLOW_TEST_CLOCK", "").lower() in ("1", "true", "yes"),
        dunning=dunning_policy(),
    )


def proration_rounding() -> Rounding:
    """``PRORATION_ROUNDING``: how proration lines round (a business rule, ``HALF_UP`` unless configured)."""
    name = os.environ.get("PRORATION_ROUNDING") or "HALF_UP"
    try:
        return Rounding[name]
    except KeyError:
        raise ValueError(f"PRORATION_ROUNDING must be one of {', '.join(Rounding.__members__)}, got {name!r}") from None
