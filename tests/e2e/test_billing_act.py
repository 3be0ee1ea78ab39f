"""The billing demo act through the real local stack: what issue 11's Demo paragraph asks, checked on its output.

A small catalog; customers subscribed with items and a coupon; renewed through the test clock with a mid-period
quantity change; a credit applied; one customer billed by send_invoice; the invoices printed.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from infra.local.acts import DemoContext
from infra.local.acts import billing as act
from infra.local.stack import Stack


def test_the_billing_act_plays_the_demo_paragraph(
    stack_env: Stack, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    ctx = DemoContext(stack=stack_env, output_dir=tmp_path)
    act.play(ctx)
    facts = ctx.facts["billing"]
    ada, bob = facts["subscriptions"]
    by_sub: dict[str, list[dict[str, Any]]] = {ada: [], bob: []}
    for d in facts["invoices"]:
        by_sub[str(d["subscription_id"])].append(d)
    a0, a1, a2 = by_sub[ada]
    # Ada: charged automatically, coupon 20 % for exactly 2 periods, the 10.00 credit on her first invoice,
    # the mid-period seats 3 -> 5 prorated once on the next invoice.
    assert [d["collection"] for d in (a0, a1, a2)] == ["charge_automatically"] * 3
    assert [d["status"] for d in (a0, a1, a2)] == ["paid"] * 3
    assert [d["due_at"] for d in (a0, a1, a2)] == [None] * 3
    assert [bool(d.get("discount")) for d in (a0, a1, a2)] == [True, True, False]
    assert (a0["credit_applied"], a1.get("credit_applied", 0)) == (1000, 0)
    prorations = [
        ln for d in (a0, a1, a2) for ln in d["lines"] if ln["description"].startswith(("Unused", "Remaining"))
    ]
    assert len(prorations) == 2
    assert all(ln in a1["lines"] for ln in prorations)
    # Bob: send_invoice, a due date on each invoice, never pays: invoiced all the same, then unpaid.
    assert [d["collection"] for d in by_sub[bob]] == ["send_invoice", "send_invoice"]
    assert all(d["due_at"] for d in by_sub[bob])
    assert facts["status"] == {ada: "active", bob: "unpaid"}
    out = capsys.readouterr().out
    assert "invoices (composed by the invoices function)" in out
    assert out.count("charged: paid") == 3
