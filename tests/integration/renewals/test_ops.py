"""The operator command on the emulators: create, clock, tick, show, cancel."""

from __future__ import annotations

import io
import json
from typing import Any

from shared.ops.subscriptions import main
from shared.renewals.entry import handle_push
from tests.fixtures.renewals import Env, tick_push


def run(*argv: str) -> tuple[int, Any]:
    buf = io.StringIO()
    code = main(list(argv), out=buf)
    return code, json.loads(buf.getvalue())


def test_operator_drives_a_subscription_through_the_test_clock(env: Env) -> None:
    assert run("clock", "set", "2026-01-31T09:00:00Z")[1] == {"test_clock": "2026-01-31T09:00:00Z"}
    code, out = run(
        "create", "sub_ops", "--customer", "cus-ops", "--country", "DE", "--seller", "acme-de",
        "--amount", "990", "--currency", "EUR", "--zone", "Europe/Berlin", "--method", "pm_card_visa", "--clock",
    )  # fmt: skip
    assert (code, out["http_status"], out["status"], out["due_at"]) == (0, 201, "active", "2026-01-31T09:00:00Z")
    assert run("clock", "advance", "--days", "1")[1] == {"test_clock": "2026-02-01T09:00:00Z"}
    code, out = run("tick", "--clock")
    assert (code, out["now"]) == (0, "2026-02-01T09:00:00Z")
    ((attrs, body),) = env.pull("billing-ticks")
    assert attrs["event_type"] == "billing.tick"
    assert body == {"now": "2026-02-01T09:00:00Z"}
    handle_push(tick_push(body, attributes=attrs))  # what the push subscription does: fan-out ...
    for shard_attrs, shard_tick in env.pull("billing-ticks"):
        handle_push(tick_push(shard_tick, attributes=shard_attrs))  # ... then each shard
    ((_, due),) = env.pull("renewals-due")
    assert due["request_id"] == "sub_ops:2026-01-31T09:00:00Z"
    code, out = run("show", "sub_ops")
    assert (code, out["billing"]["request_id"], out["attempts"], out["invoices"]) == (0, due["request_id"], [], [])
    code, out = run("cancel", "sub_ops", "--at-period-end")
    assert (code, out["cancel_at_period_end"]) == (0, True)
    assert run("show", "nope")[0] == 1
