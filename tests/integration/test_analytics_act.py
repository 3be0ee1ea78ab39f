"""The analytics demo act on the real Pub/Sub emulator: what is published after `prepare` lands in DuckDB
once per delivery, and the views count each fact once."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from types import SimpleNamespace
from typing import Any, cast

import pytest

from infra.local.acts import DemoContext
from infra.local.acts import analytics as act
from infra.local.analytics import config
from shared.events import publish
from shared.events.payments import PaymentFailed
from tests.conftest import Gcp


def test_the_act_loads_what_earlier_acts_published_and_prints_the_views(
    gcp: Gcp, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    for topic in config().topics:
        gcp.topic(topic)
    ctx = DemoContext(stack=cast(Any, SimpleNamespace(project=gcp.project)), output_dir=tmp_path)
    act.prepare(ctx)
    at = dt.datetime(2026, 4, 2, 10, tzinfo=dt.UTC)
    failed = PaymentFailed(
        psp="checkout",
        psp_payment_id="pay_1",
        psp_event_id="evt_1",
        livemode=False,
        psp_created_at=at,
        decline_code="insufficient_funds",
        retryable=True,
    )
    for _ in range(2):  # a redelivered webhook republishes the same fact (same event_id)
        publish(failed, idempotency_key=failed.fact_key(), occurred_at=at)
    act.play(ctx)
    said = capsys.readouterr().out.splitlines()
    assert "  payment-events       -> payments_events.payment_events: 2 rows" in said
    assert ctx.facts["analytics"]["declines_by_category"] == [
        {"day": at.date(), "psp": "checkout", "category": "insufficient_funds", "declines": 1, "hard_declines": 0}
    ]
    assert ctx.facts["analytics"]["webhook_volume"] == [
        {"day": at.date(), "psp": "checkout", "events": 1, "notifications": 1}
    ]
    assert "    2026-04-02  checkout  insufficient_funds  1  0" in said
