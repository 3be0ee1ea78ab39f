"""Metering settings from the environment (read per call: cheap, and tests change them)."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from shared.config import env_int
from shared.domain.meters import TimePolicy


@dataclass(frozen=True, slots=True)
class MeteringSettings:
    # id and totals documents per customer (and period): a window writes at most 2 x shards documents per customer
    # and period. 1 by default: a large batch touches every shard anyway, so more shards only multiply writes;
    # they only help many small concurrent batches of ONE customer (fixed for a deployment's life: dedup needs it)
    shards: int = 1
    horizon_days: int = 35  # events older than this are rejected (Stripe's 35 days)
    skew_s: int = 300  # events further ahead of the clock are rejected (Stripe's 5 minutes)
    grace_s: int = 3600  # a period is closed (rated) no earlier than its end + this (Stripe's default 1 h)
    retention_days: int = 90  # an id page is kept at least this long after its last id (dedup window)
    page_ids: int = 40_000  # ids per dedup page (12 bytes each: 480 kB, under Firestore's 1 MiB)
    max_events: int = 1000  # per request or message
    coalesce_ms: int = 50  # the aggregator's window: concurrent deliveries arriving within it share one commit
    coalesce_max_events: int = 10_000  # a window closes early at this many events

    @property
    def time_policy(self) -> TimePolicy:
        return TimePolicy(horizon=dt.timedelta(days=self.horizon_days), skew=dt.timedelta(seconds=self.skew_s))

    @property
    def grace(self) -> dt.timedelta:
        return dt.timedelta(seconds=self.grace_s)


def metering_settings() -> MeteringSettings:
    return MeteringSettings(
        shards=env_int("USAGE_SHARDS", 1),
        horizon_days=env_int("USAGE_HORIZON_DAYS", 35),
        skew_s=env_int("USAGE_SKEW_S", 300),
        grace_s=env_int("USAGE_GRACE_S", 3600),
        retention_days=env_int("USAGE_DEDUP_RETENTION_DAYS", 90),
        coalesce_ms=env_int("USAGE_COALESCE_MS", 50),
        coalesce_max_events=env_int("USAGE_COALESCE_MAX_EVENTS", 10_000),
    )
