"""Reconciliation on the whole local stack, through the PSPs' real settlement sources: signed webhooks in,
Checkout.com's payouts and breakdown reports dropped into the bucket (the object-finalize CloudEvent delivered
as Eventarc would), Stripe's payout pulled by the tick through the official SDK from a loopback stub; payouts
closed, exceptions published, the ledger balanced after every step and unchanged by redelivery."""

from __future__ import annotations

import datetime as dt
import io
from contextlib import redirect_stdout
from pathlib import Path

from infra.local.acts import DemoContext
from infra.local.acts import reconciliation as act
from infra.local.stack import Stack
from infra.local.storage_trigger import finalize
from shared import clients
from shared.ledger import store as ledger
from shared.ledger.journal import trial_balance
from shared.reconciliation.reports import open_exceptions, payout_view
from shared.reconciliation.repository import CURSORS
from tests.helpers import drain, pull_subscription, wait_for


def test_webhooks_then_real_settlement_sources_close_payouts_and_report_exceptions(
    stack_env: Stack, tmp_path: Path
) -> None:
    sub = pull_subscription(stack_env.project, "reconciliation-events", name="e2e-recon-events")
    ctx = DemoContext(stack=stack_env, output_dir=tmp_path)
    with redirect_stdout(io.StringIO()) as out:
        act.play(ctx)
    run = ctx.facts["reconciliation_run"]
    assert ctx.facts["reconciliation_trial_balances"] == [{}] * 5, out.getvalue()
    db = clients.firestore()
    for psp, pid, lines in (("stripe", f"po_s_{run}", 5), ("checkout", f"po_c_{run}", 2)):
        view = payout_view(db, psp, "default", pid)
        assert view["payout"]["status"] == "closed", out.getvalue()
        assert view["lines_sum"] == view["payout"]["amount"]
        assert len(view["lines"]) == lines
        # the lines came from the real sources: the bucket object for Checkout.com, the API for Stripe
        assert {ln.source.split(":")[0] for ln in view["lines"]} == ({"gs"} if psp == "checkout" else {"stripe"})
    mine = {x["payment_ref"]: x for x in open_exceptions(db) if run in str(x["payment_ref"])}
    assert {k: (x["kind"], x["impact"]) for k, x in mine.items()} == {
        f"pay_rec_{run}_2": ("amount_mismatch", {"EUR": 50}),
        f"pi_rec_{run}_9": ("missing_on_our_side", {"EUR": -990}),
    }
    assert trial_balance(ledger.balances(db)) == {}
    entries = {e.id: e.postings for e in ledger.entries(db) if run in e.memo}
    assert len(entries) == 5 + 6 + 3  # facts; Stripe lines (its payout line is the payout entry); Checkout's + payout

    seen: set[str] = set()

    def all_published() -> bool | None:
        seen.update(
            f"{a['event_type']}:{b.get('payout_id') or b.get('payment_ref')}" for a, b in drain(sub, wait=False)
        )
        return True if want <= seen else None

    want = {
        f"reconciliation.payout_closed:po_s_{run}",
        f"reconciliation.payout_closed:po_c_{run}",
        f"reconciliation.exception_raised:pay_rec_{run}_2",
        f"reconciliation.exception_raised:pi_rec_{run}_9",
    }
    wait_for(all_published)
    assert want <= seen

    # redelivery: the same reports uploaded again (new generations) and Stripe's pages pulled again
    rec = stack_env.function_urls["reconciliation"]
    for name, data in ctx.facts["reconciliation_files"]:
        _, status = finalize(rec, act.bucket_name(stack_env.project), name, data)
        assert status < 300
    cursor = db.collection(CURSORS).document("stripe:default")
    cursor.delete()  # the next pull reads Stripe's pages again
    later = ctx.facts["reconciliation_clock"] + dt.timedelta(hours=5)
    act.tick(stack_env.project, later)
    act.wait(lambda: (cursor.get().to_dict() or {}).get("until") == later)  # pulled and taken in
    assert (cursor.get().to_dict() or {}).get("lines", 0) >= 6
    assert {e.id: e.postings for e in ledger.entries(db) if run in e.memo} == entries
    assert trial_balance(ledger.balances(db)) == {}
