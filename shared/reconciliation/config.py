"""Reconciliation settings from the environment (read per call: tests change them).

``RECON_PSP_DELAY_S``: how long a payment fact may wait for its settlement line before it is reported
missing on the PSP side (default 3 days: PSPs settle T+1..T+3). ``RECON_OUR_SIDE_DELAY_S``: how long a
settlement line may wait for its payment fact (default 1 hour: a webhook can be slower than a report).
``RECON_PULL_SOURCES``: API sources the scheduled tick pulls, ``psp:account`` comma-separated (file
sources arrive through the bucket trigger). ``RECON_PULL_OVERLAP_S``: each pull re-reads this much before
the last cursor (late-booked lines; the same line twice changes nothing). ``RECON_ALLOW_TEST_CLOCK``:
``1`` honours an explicit ``now`` in ticks. Which puller and client serve a PSP is the settlement
registry's business (:func:`shared.settlement.registry.source_for`), not a setting.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from shared.config import ConfigError, env_value


@dataclass(frozen=True, slots=True)
class ReconSettings:
    psp_delay: dt.timedelta
    our_delay: dt.timedelta
    pull_sources: tuple[tuple[str, str], ...]
    pull_overlap: dt.timedelta
    allow_test_clock: bool


def _seconds(name: str, default: int) -> dt.timedelta:
    raw = env_value(name)
    try:
        value = int(raw) if raw else default
    except ValueError as exc:
        raise ConfigError(f"{name} must be an integer number of seconds, got {raw!r}") from exc
    if value < 0:
        raise ConfigError(f"{name} must not be negative")
    return dt.timedelta(seconds=value)


def recon_settings() -> ReconSettings:
    sources = []
    for item in (env_value("RECON_PULL_SOURCES") or "").split(","):
        if item.strip():
            psp, _, account = item.strip().partition(":")
            sources.append((psp, account or "default"))
    return ReconSettings(
        psp_delay=_seconds("RECON_PSP_DELAY_S", 3 * 24 * 3600),
        our_delay=_seconds("RECON_OUR_SIDE_DELAY_S", 3600),
        pull_sources=tuple(sources),
        pull_overlap=_seconds("RECON_PULL_OVERLAP_S", 3600),
        allow_test_clock=env_value("RECON_ALLOW_TEST_CLOCK") == "1",
    )
