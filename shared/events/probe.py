"""The probe contract: the walking skeleton, kept as a post-deploy end-to-end smoke check."""

from __future__ import annotations

from typing import ClassVar

from pydantic import Field

from shared.events.envelope import Event, register


@register
class ProbeRequested(Event):
    EVENT_TYPE: ClassVar[str] = "probe.requested"
    SCHEMA_VERSION: ClassVar[int] = 1
    TOPIC: ClassVar[str] = "probes"

    probe_id: str = Field(min_length=1, max_length=128, pattern=r"^[A-Za-z0-9_.:-]+$")
    note: str = Field(default="", max_length=500)
