"""Act 40: settlement reconciliation and the ledger.

Signed payment webhooks from Stripe and Checkout.com go through the real webhooks function; settlement
report files for them (fees, an FX capture, a payout each) are dropped into the settlement bucket and the
object-finalize CloudEvent is delivered to the reconciliation function, as Eventarc would (the storage
emulator pushes no events). One settled payment never reached us by webhook and one was settled for a
different amount. A tick an hour later (test clock) reports the missing one; the act prints the payouts,
the exceptions and the ledger balances.
"""

from __future__ import annotations

import base64
import datetime as dt
import json
import time
from typing import Any

from infra.local.acts import DemoContext
from infra.local.acts.webhooks import ENV as WEBHOOK_ENV
from infra.local.acts.webhooks import STRIPE_SECRET, post

ORDER = 40
TITLE = "Settlement reconciliation: payouts, exceptions, the ledger"

ENV = {
    "RECON_REGISTRY_MODULE": "infra.local.settlement_stub",  # until the per-PSP adapters are wired in
    "RECON_ALLOW_TEST_CLOCK": "1",
}


def bucket_name(project: str) -> str:
    return f"{project}-settlement"


def stripe_payment(run: str, n: int, amount: int, currency: str = "eur") -> tuple[str, bytes, dict[str, str]]:
    from shared.psp import signing

    body = json.dumps(
        {
            "id": f"evt_rec_{run}_{n}",
            "object": "event",
            "type": "payment_intent.succeeded",
            "created": int(time.time()),
            "livemode": False,
            "data": {
                "object": {
                    "id": f"pi_rec_{run}_{n}",
                    "object": "payment_intent",
                    "amount": amount,
                    "amount_received": amount,
                    "currency": currency,
                    "metadata": {"customer_id": f"cus_rec_{n}"},
                }
            },
        },
        separators=(",", ":"),
    ).encode()
    return "/stripe", body, {"Stripe-Signature": signing.stripe_header(body, STRIPE_SECRET)}


def checkout_payment(run: str, n: int, amount: int, currency: str = "EUR") -> tuple[str, bytes, dict[str, str]]:
    from shared.psp import signing

    body = json.dumps(
        {
            "id": f"evt_rec_cko_{run}_{n}",
            "type": "payment_captured",
            "created_on": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            "data": {"id": f"pay_rec_{run}_{n}", "amount": amount, "currency": currency,
                     "metadata": {"customer_id": f"cus_rec_cko_{n}"}},
        },
        separators=(",", ":"),
    ).encode()  # fmt: skip
    headers = {
        "Cko-Signature": signing.hex_hmac(body, WEBHOOK_ENV["CHECKOUT_WEBHOOK_SECRETS"]),
        "Authorization": WEBHOOK_ENV["CHECKOUT_AUTHORIZATION"],
    }
    return "/checkout", body, headers


def reports(run: str, booked: dt.datetime) -> dict[str, bytes]:
    """One stub-format report per PSP: what each PSP says it settled and paid out."""
    from infra.local.settlement_stub import HEADER

    t = booked.isoformat()

    def rows(psp: str, lines: list[str]) -> bytes:
        return (HEADER + "\n" + "\n".join(lines) + "\n").encode()

    s, c = f"pi_rec_{run}", f"pay_rec_{run}"
    return {
        "stripe": rows("stripe", [
            f"capture,txn_{run}_1,ch_{run}_1,{s}_1,EUR,2900,processing=67;scheme=6,po_s_{run},{t},,",
            f"capture,txn_{run}_2,ch_{run}_2,{s}_2,EUR,4550,processing=89;scheme=9,po_s_{run},{t},USD,4945",
            f"capture,txn_{run}_3,ch_{run}_3,{s}_3,EUR,1500,processing=47;scheme=3,po_s_{run},{t},,",  # amount mismatch
            f"capture,txn_{run}_9,ch_{run}_9,{s}_9,EUR,990,processing=39;scheme=2,po_s_{run},{t},,",  # never seen by us
            f"fee,fee_{run},,,EUR,0,monthly=2500,po_s_{run},{t},,",
            f"payout,po_line_s_{run},,,EUR,-7178,,po_s_{run},{t},,",
        ]),
        "checkout": rows("checkout", [
            f"capture,act_{run}_1,act_{run}_1,{c}_1,EUR,12000,interchange=96;scheme=24;processing=120,po_c_{run},{t},,",
            f"capture,act_{run}_2,act_{run}_2,{c}_2,EUR,3400,interchange=27;processing=34,po_c_{run},{t},,",
            f"payout,po_line_c_{run},,,EUR,-15099,,po_c_{run},{t},,",
        ]),
    }  # fmt: skip


def tick(project: str, now: dt.datetime) -> None:
    from google.cloud.pubsub_v1 import PublisherClient

    body = json.dumps({"now": now.isoformat()}).encode()
    PublisherClient().publish(
        f"projects/{project}/topics/reconciliation-ticks", body, event_type="reconciliation.tick"
    ).result(timeout=30)


def wait(probe: Any, timeout_s: float = 60.0) -> Any:
    deadline = time.monotonic() + timeout_s
    while True:
        got = probe()
        if got:
            return got
        if time.monotonic() > deadline:
            raise TimeoutError("reconciliation did not get there in time")
        time.sleep(0.3)


def play(ctx: DemoContext) -> None:
    from infra.local.storage_trigger import finalize
    from shared import clients
    from shared.domain.money import Money
    from shared.ledger import store as ledger
    from shared.ledger.journal import trial_balance
    from shared.reconciliation.matching import group_id
    from shared.reconciliation.reports import open_exceptions, payout_view
    from shared.reconciliation.repository import GROUPS

    run = base64.b32encode(int(time.time() * 1000).to_bytes(6, "big")).decode().rstrip("=").lower()
    wh, rec = ctx.stack.function_urls["webhooks"], ctx.stack.function_urls["reconciliation"]
    payments = [stripe_payment(run, 1, 2900), stripe_payment(run, 2, 4945, "usd"), stripe_payment(run, 3, 1550),
                checkout_payment(run, 1, 12000), checkout_payment(run, 2, 3400)]  # fmt: skip
    for route, body, headers in payments:
        status, _ = post(wh + route, body, headers)
        ctx.say(f"  webhook {route:<10} -> {status}")
    db = clients.firestore()
    ids = [f"pi_rec_{run}_{n}" for n in (1, 2, 3)]
    refs = [db.collection(GROUPS).document(group_id("stripe", "default", i)) for i in ids]
    refs += [db.collection(GROUPS).document(group_id("checkout", "default", f"pay_rec_{run}_{n}")) for n in (1, 2)]
    wait(lambda: all(snap.exists for snap in db.get_all(refs)))
    ctx.say(f"  {len(payments)} payment facts recorded by the reconciliation function")
    now = dt.datetime.now(dt.UTC)
    for psp, data in reports(run, now).items():
        name = f"settlement/{psp}/default/{now:%Y-%m-%d}-{run}.csv"
        _, status = finalize(rec, bucket_name(ctx.stack.project), name, data)
        ctx.say(f"  report gs://{bucket_name(ctx.stack.project)}/{name} -> object-finalize event -> {status}")
    tick(ctx.stack.project, now + dt.timedelta(hours=2))  # the report overtook no webhook: report what is missing
    mine = {f"pi_rec_{run}_3", f"pi_rec_{run}_9"}
    wait(lambda: {x["payment_ref"] for x in open_exceptions(db)} >= mine)
    ctx.say("  payouts:")
    for psp, pid in (("stripe", f"po_s_{run}"), ("checkout", f"po_c_{run}")):
        v = payout_view(db, psp, "default", pid)
        po = v["payout"]
        ctx.say(f"    {psp:<9} {pid:<22} {Money(int(po['amount']), po['currency'])!s:>12}  {po['status']:<6} "
                f"({len(v['lines'])} lines, sum {Money(v['lines_sum'], po['currency'])})")  # fmt: skip
    ctx.say("  open exceptions:")
    for x in [x for x in open_exceptions(db) if run in str(x["payment_ref"])]:
        impact = ", ".join(str(Money(int(v), c)) for c, v in x["impact"].items())
        ctx.say(f"    {x['kind']:<20} {x['psp']:<9} {x['payment_ref']:<24} {impact}  ({x['detail']})")
    balances = ledger.balances(db)
    ctx.say("  ledger balances (derived from the entries):")
    for (acct, cur), bal in sorted(balances.items()):
        if "rec_" in acct or not acct.startswith("receivable:"):
            ctx.say(f"    {acct:<36} {Money(bal, cur)!s:>14}")
    tb = trial_balance(balances)
    ctx.say(f"  trial balance: {tb or 'zero in every currency'}")
    ctx.facts["reconciliation_run"] = run
    ctx.say("  operator: python -m shared.ops.reconciliation exceptions | resolve <id> --reason ... | report")
