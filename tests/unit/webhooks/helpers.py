"""Small builders shared by the adapter unit tests."""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping

from shared.psp.base import Delivery, PspConfig


def config(psp: str, *, livemode: bool = False, account: str = "default", **values: str) -> PspConfig:
    return PspConfig(psp=psp, account=account, livemode=livemode, values=values)


def delivery(
    body: bytes,
    headers: Mapping[str, str] | None = None,
    *,
    content_type: str = "application/json",
    at: dt.datetime | None = None,
) -> Delivery:
    return Delivery(
        body=body, headers=dict(headers or {}), content_type=content_type, received_at=at or dt.datetime.now(dt.UTC)
    )
