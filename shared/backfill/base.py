"""What every PSP event list offers the backfill: pages of notifications within a time window.

Why a protocol: the runner (:mod:`shared.backfill.runner`) only compares listed events with the
webhook archive and feeds the missing ones through the webhook pipeline; each module here speaks one
PSP's API through its official SDK (plain HTTP where none exists) and turns its events into the same
:class:`~shared.psp.base.Notification` the webhook adapter builds from a delivery, so both share one
dedupe record per (psp, account, PSP event id).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

from shared.backfill.config import SourceSettings
from shared.psp.base import Notification


class SourceError(Exception):
    """The PSP API failed (network, 5xx, 429, credentials): the tick is retried, progress is kept."""


@dataclass(frozen=True, slots=True)
class Window:
    """Events created in [start, end)."""

    start: dt.datetime
    end: dt.datetime


@dataclass(frozen=True, slots=True)
class Page:
    notes: Sequence[Notification]
    cursor: str | None  # where the next page starts; None: the window is done


class EventSource(Protocol):
    @property
    def psp(self) -> str: ...

    def page(self, settings: SourceSettings, window: Window, cursor: str | None, size: int) -> Page:
        """One page of the window's events (any order), starting at ``cursor`` (None: the first page)."""
        ...

    def full(self, settings: SourceSettings, note: Notification) -> Notification:
        """The complete notification when the list holds only summaries (Checkout.com), else ``note``."""
        ...


def rfc3339(t: dt.datetime) -> str:
    return t.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
