"""The usage contract: one message per accepted batch on ``usage-events`` (HTTP endpoint or internal producers)."""

from __future__ import annotations

from typing import Annotated, ClassVar

from pydantic import BaseModel, ConfigDict, Field, StrictInt, StrictStr, StringConstraints

from shared.edge import BoundedDatetime, FirestoreId
from shared.events.envelope import Event, register

PropKey = Annotated[str, StringConstraints(min_length=1, max_length=64)]
PropValue = (
    Annotated[StrictInt, Field(ge=-(10**12), le=10**12)] | Annotated[StrictStr, StringConstraints(max_length=256)]
)
MAX_PROPERTIES = 20


class UsageEventIn(BaseModel):
    """One usage event: the id is the producer's (unique per customer), the timestamp decides the period."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    id: FirestoreId
    customer: FirestoreId
    event_name: Annotated[str, StringConstraints(min_length=1, max_length=100)]
    timestamp: BoundedDatetime
    properties: dict[PropKey, PropValue] = Field(default_factory=dict, max_length=MAX_PROPERTIES)


@register
class UsageBatch(Event):
    """Accepted events of one request (or one internal producer's batch); ordering is irrelevant."""

    EVENT_TYPE: ClassVar[str] = "usage.batch"
    TOPIC: ClassVar[str] = "usage-events"

    batch_id: str = Field(min_length=1, max_length=128)
    received_at: BoundedDatetime  # aware: the aggregator re-checks event times against it (naive -> dead-letter)
    events: tuple[UsageEventIn, ...] = Field(min_length=1, max_length=1000)
