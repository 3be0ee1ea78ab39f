"""Thresholds run once per window of the aggregator: deliveries folded together are rated together, so a crossing
they make together is one threshold invoice (the one each delivery alone would have split into several)."""

from __future__ import annotations

import concurrent.futures
import datetime as dt

import pytest

from shared.domain.meters import Event
from shared.events.billing import RenewalDue
from shared.events.publisher import PubSubPublisher
from shared.metering.aggregator import usage_window
from tests.fixtures.renewals import Env
from tests.helpers import T0
from tests.integration.renewals.test_items import bill, issue
from tests.integration.renewals.test_usage_billing import metered_subscription

THRESHOLD = 1000  # EUR 10.00


def _requests(on: Env) -> list[RenewalDue]:
    return [RenewalDue.model_validate(b) for a, b in on.pull("renewals-due") if a["event_type"] == "renewal.due"]


def test_a_window_of_deliveries_crossing_together_requests_one_threshold_invoice(
    env: Env, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = metered_subscription("sub_thr_w", 1, threshold=THRESHOLD)
    [first] = bill(env, T0)
    issue(first, T0)
    env.pull("renewals-due")  # only what the window requests from here on
    calls = [Event(f"w{i}", "cus_items", "api_call", T0 + dt.timedelta(days=3, minutes=i)) for i in range(60)]
    monkeypatch.setenv("USAGE_COALESCE_MS", "60000")
    monkeypatch.setenv("USAGE_COALESCE_MAX_EVENTS", str(len(calls)))  # the window closes when all 6 are queued
    window = usage_window(store, PubSubPublisher(), eager_when_idle=False)
    with concurrent.futures.ThreadPoolExecutor(6) as pool:
        results = list(pool.map(window.submit, [calls[i : i + 10] for i in range(0, 60, 10)]))
    assert window.stats.windows == 1
    assert sum(r["applied"] for r in results) == 60
    assert [r["thresholds"] for r in results if r["thresholds"]] == [1]  # once, reported by the leader
    [request] = _requests(env)  # 10 x 1.00 + 50 x 0.50 = EUR 35.00: index 3 at once, one invoice
    assert request.request_id.endswith(":3")
    assert sum(c.amount.amount for c in request.charges) == 3500
