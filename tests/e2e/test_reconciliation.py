"""Reconciliation on the whole local stack: signed webhooks in, settlement reports dropped into the bucket
(the object-finalize CloudEvent delivered as Eventarc would), payouts closed, exceptions published."""

from __future__ import annotations

import io
from contextlib import redirect_stdout
from pathlib import Path

from infra.local.acts import DemoContext
from infra.local.acts import reconciliation as act
from infra.local.stack import Stack
from shared import clients
from shared.ledger import store as ledger
from shared.ledger.journal import trial_balance
from shared.reconciliation.reports import open_exceptions, payout_view
from tests.helpers import drain, pull_subscription, wait_for


def test_webhooks_then_settlement_files_close_payouts_and_report_exceptions(stack_env: Stack, tmp_path: Path) -> None:
    sub = pull_subscription(stack_env.project, "reconciliation-events", name="e2e-recon-events")
    ctx = DemoContext(stack=stack_env, output_dir=tmp_path)
    with redirect_stdout(io.StringIO()) as out:
        act.play(ctx)
    run = ctx.facts["reconciliation_run"]
    db = clients.firestore()
    for psp, pid in (("stripe", f"po_s_{run}"), ("checkout", f"po_c_{run}")):
        view = payout_view(db, psp, "default", pid)
        assert view["payout"]["status"] == "closed", out.getvalue()
        assert view["lines_sum"] == view["payout"]["amount"]
    mine = {x["payment_ref"]: x for x in open_exceptions(db) if run in str(x["payment_ref"])}
    assert {k: (x["kind"], x["impact"]) for k, x in mine.items()} == {
        f"pi_rec_{run}_3": ("amount_mismatch", {"EUR": 50}),
        f"pi_rec_{run}_9": ("missing_on_our_side", {"EUR": -990}),
    }
    assert trial_balance(ledger.balances(db)) == {}

    seen: set[str] = set()

    def all_published() -> bool | None:
        seen.update(
            f"{a['event_type']}:{b.get('payout_id') or b.get('payment_ref')}" for a, b in drain(sub, wait=False)
        )
        return True if want <= seen else None

    want = {
        f"reconciliation.payout_closed:po_s_{run}",
        f"reconciliation.payout_closed:po_c_{run}",
        f"reconciliation.exception_raised:pi_rec_{run}_3",
        f"reconciliation.exception_raised:pi_rec_{run}_9",
    }
    wait_for(all_published)
    assert want <= seen
