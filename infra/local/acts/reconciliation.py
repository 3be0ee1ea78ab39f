"""Act 40: settlement reconciliation and the ledger, through the PSPs' real settlement sources.

Signed payment webhooks from Stripe and Checkout.com go through the real webhooks function. Then each PSP
settles the way it really does: Checkout.com's payouts report and settlement breakdown (CSV, payouts file
first: the payout closes when its lines arrive) are dropped into the settlement bucket and the
object-finalize CloudEvent is delivered to the reconciliation function, as Eventarc would (the storage
emulator pushes no events); Stripe's payout and its balance transactions are pulled by the scheduled tick
through the official SDK, pointed at a Stripe-shaped stub on loopback (Stripe's itemised report carries no
payout amount). One settled Stripe payment never reached us by webhook and one Checkout.com payment was
settled for a different amount. A later tick (test clock) reports the missing one; the act prints the
payouts, the exceptions and the ledger balances, checking the trial balance after every step.
"""

from __future__ import annotations

import base64
import datetime as dt
import json
import time
from decimal import Decimal
from typing import Any

from infra.local.acts import DemoContext
from infra.local.acts.webhooks import ENV as WEBHOOK_ENV
from infra.local.acts.webhooks import STRIPE_SECRET, post

ORDER = 40
TITLE = "Settlement reconciliation: payouts, exceptions, the ledger"


def env() -> dict[str, str]:
    """The functions' environment; starts the Stripe settlement stub, whose URL the tick's pull must know."""
    from infra.local.settlement_stub import stub

    return {
        "RECON_ALLOW_TEST_CLOCK": "1",
        "RECON_PULL_SOURCES": "stripe:default",
        "STRIPE_API_KEY": "sk_test_demo_not_a_secret",  # the same test key the renewals act charges with
        "STRIPE_SETTLEMENT_API_BASE": stub().url,
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


def settlement(run: str, booked: dt.datetime) -> dict[str, Any]:
    """What each PSP settled for the demo's payments, as normalised lines (the real formats are written from
    them): Stripe's payout ``po_s_<run>`` (an FX capture, a payment we never heard of, a monthly fee) and
    Checkout.com's ``po_c_<run>`` (one payment settled 50 cents short)."""
    from shared.settlement.lines import Fee, LineType, Payout, Psp, SettlementLine

    s, c = f"pi_rec_{run}", f"pay_rec_{run}"

    def cap(psp: Psp, n: int, pay: str, gross: int, fees: dict[str, int], **kw: Any) -> SettlementLine:
        fs = tuple(Fee(kind=k, amount=v) for k, v in fees.items())
        ref = f"ch_{run}_{n}" if psp == "stripe" else pay
        return SettlementLine(psp=psp, line_id=f"txn_{psp}_{run}_{n}", type=LineType.CAPTURE, psp_reference=ref,
                              psp_payment_id=pay, currency="EUR", gross=gross, fees=fs,
                              net=gross - sum(fs_.amount for fs_ in fs), payout_id=f"po_{psp[0]}_{run}",
                              booked_at=booked, **kw)  # fmt: skip

    stripe = [
        cap("stripe", 1, f"{s}_1", 2900, {"stripe_fee": 73}),
        cap(
            "stripe",
            2,
            f"{s}_2",
            4550,
            {"stripe_fee": 98},
            presentment_currency="USD",
            presentment_amount=4945,
            fx_rate=Decimal("0.920121"),
        ),
        cap("stripe", 3, f"{s}_3", 1550, {"stripe_fee": 50}),
        cap("stripe", 9, f"{s}_9", 990, {"stripe_fee": 41}),  # never seen by webhook
        SettlementLine(
            psp="stripe",
            line_id=f"txn_fee_{run}",
            type=LineType.FEE,
            currency="EUR",
            gross=0,
            fees=(Fee(kind="stripe_fee", amount=2500),),
            net=-2500,
            payout_id=f"po_s_{run}",
            booked_at=booked,
        ),
    ]
    checkout = [
        cap("checkout", 1, f"{c}_1", 12000, {"interchange": 96, "scheme": 24, "processing": 120}),
        cap("checkout", 2, f"{c}_2", 3350, {"interchange": 27, "processing": 34}),  # we took 3400
    ]
    out: dict[str, Any] = {}
    psp: Psp
    for psp, lines in (("stripe", stripe), ("checkout", checkout)):
        amount = sum(ln.net for ln in lines)
        pid = f"po_{psp[0]}_{run}"
        payout = Payout(psp=psp, payout_id=pid, currency="EUR", amount=amount, arrival_date=booked.date())
        line = SettlementLine(psp=psp, line_id=f"txn_po_{psp}_{run}", type=LineType.PAYOUT, currency="EUR",
                              gross=-amount, net=-amount, payout_id=pid, booked_at=booked)  # fmt: skip
        out[psp] = (payout, [*lines, line])
    return out


def checkout_files(run: str, payout: Any, lines: list[Any]) -> list[tuple[str, bytes]]:
    """Checkout.com's two report files, the payouts report first (the payout waits for its lines)."""
    from shared.settlement.writers import checkout_breakdown, checkout_payouts

    return [
        (f"payouts_ent_demo_{run}.csv", checkout_payouts([payout])),
        (f"settlement-breakdown_ent_demo_{run}.csv", checkout_breakdown(lines)),
    ]


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
    from infra.local.settlement_stub import stub
    from infra.local.storage_trigger import finalize
    from shared import clients
    from shared.ledger import store as ledger
    from shared.ledger.journal import trial_balance
    from shared.reconciliation.matching import group_id
    from shared.reconciliation.reports import open_exceptions
    from shared.reconciliation.repository import CURSORS, GROUPS, PAYOUTS, payout_key

    run = base64.b32encode(int(time.time() * 1000).to_bytes(6, "big")).decode().rstrip("=").lower()
    wh, rec = ctx.stack.function_urls["webhooks"], ctx.stack.function_urls["reconciliation"]
    db = clients.firestore()
    balanced: list[dict[str, int]] = []  # the trial balance after every step

    def step(label: str) -> None:
        balanced.append(trial_balance(ledger.balances(db)))
        ctx.say(f"  {label}; trial balance {balanced[-1] or 'zero'}")

    payments = [stripe_payment(run, 1, 2900), stripe_payment(run, 2, 4945, "usd"), stripe_payment(run, 3, 1550),
                checkout_payment(run, 1, 12000), checkout_payment(run, 2, 3400)]  # fmt: skip
    for route, body, headers in payments:
        status, _ = post(wh + route, body, headers)
        ctx.say(f"  webhook {route:<10} -> {status}")
    ids = [("stripe", f"pi_rec_{run}_{n}") for n in (1, 2, 3)] + [("checkout", f"pay_rec_{run}_{n}") for n in (1, 2)]
    refs = [db.collection(GROUPS).document(group_id(psp, "default", i)) for psp, i in ids]
    wait(lambda: all(snap.exists for snap in db.get_all(refs)))
    step(f"{len(payments)} payment facts recorded by the reconciliation function")

    # The test clock of the ticks starts after the last pull's cursor (the emulators may keep it from an
    # earlier run), so the pull's window always holds the payout arriving in between.
    cursor = (db.collection(CURSORS).document("stripe:default").get().to_dict() or {}).get("until")
    now = max(dt.datetime.now(dt.UTC), cursor or dt.datetime.min.replace(tzinfo=dt.UTC))
    settled = settlement(run, now)
    bucket = bucket_name(ctx.stack.project)
    for name, data in checkout_files(run, *settled["checkout"]):
        _, status = finalize(rec, bucket, f"settlement/checkout/default/{name}", data)
        step(f"Checkout.com report gs://{bucket}/settlement/checkout/default/{name} -> object-finalize -> {status}")
    po_s, stripe_lines = settled["stripe"]
    stub().publish([po_s], stripe_lines, arrival_at=now + dt.timedelta(hours=1))
    tick(ctx.stack.project, now + dt.timedelta(hours=2))  # pulls Stripe's payout and its balance transactions
    payout_ref = db.collection(PAYOUTS).document(payout_key("stripe", "default", f"po_s_{run}"))
    wait(lambda: (payout_ref.get().to_dict() or {}).get("status") == "closed")
    step(f"tick: Stripe payout po_s_{run} and its balance transactions pulled through the SDK (stub on loopback)")
    tick(ctx.stack.project, now + dt.timedelta(hours=4))  # past the 1 h our-side delay: report what is missing
    mine = {f"pay_rec_{run}_2", f"pi_rec_{run}_9"}
    wait(lambda: {x["payment_ref"] for x in open_exceptions(db)} >= mine)
    step("tick: settled payments without a payment fact are now reported")
    show(ctx, db, run)
    ctx.facts["reconciliation_run"] = run
    ctx.facts["reconciliation_clock"] = now
    ctx.facts["reconciliation_trial_balances"] = balanced
    ctx.facts["reconciliation_files"] = [(f"settlement/checkout/default/{n}", d) for n, d in checkout_files(
        run, *settled["checkout"])]  # fmt: skip
    ctx.say("  operator: python -m shared.ops.reconciliation exceptions | resolve <id> --reason ... | report")


def show(ctx: DemoContext, db: Any, run: str) -> None:
    """Print the payouts, the open exceptions and the ledger balances of this run."""
    from shared.domain.money import Money
    from shared.ledger import store as ledger
    from shared.ledger.journal import trial_balance
    from shared.reconciliation.reports import open_exceptions, payout_view

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
