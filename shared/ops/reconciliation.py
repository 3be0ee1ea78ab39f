"""Operator commands for reconciliation: open exceptions, resolve one, show a payout, daily report, balances.

    python -m shared.ops.reconciliation exceptions                  # open exceptions, oldest first
    python -m shared.ops.reconciliation resolve <id> --reason "fee refunded by PSP on 2026-03-04"
    python -m shared.ops.reconciliation payout stripe po_123 [--account eu]
    python -m shared.ops.reconciliation report [--day 2026-03-02]   # exit 1 when an amount is unexplained
    python -m shared.ops.reconciliation balances [--prefix psp_balance]

Resolving posts a ledger entry that moves the exception's amount out of the clearing account with the
reason (never an edit) and publishes ``reconciliation.exception_resolved``. The project comes from
``GOOGLE_CLOUD_PROJECT``; the emulator variables are honoured.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import sys
from typing import TextIO

from shared.domain.money import Money
from shared.ledger import journal as j
from shared.ledger import store as ledger
from shared.reconciliation.config import recon_settings
from shared.reconciliation.reports import daily_report, open_exceptions, payout_view


def _m(amount: int, cur: str) -> str:
    return str(Money(amount, cur))


def main(argv: list[str] | None = None, out: TextIO | None = None, now: dt.datetime | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m shared.ops.reconciliation", description=__doc__.splitlines()[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    sub.add_parser("exceptions", help="list open exceptions")
    r = sub.add_parser("resolve", help="resolve an open exception with a reason (posts a ledger entry)")
    r.add_argument("exception_id")
    r.add_argument("--reason", required=True)
    r.add_argument("--by", default="")
    p = sub.add_parser("payout", help="a payout with its lines")
    p.add_argument("psp")
    p.add_argument("payout_id")
    p.add_argument("--account", default="default")
    d = sub.add_parser("report", help="the daily report")
    d.add_argument("--day", type=dt.date.fromisoformat, default=None)
    b = sub.add_parser("balances", help="ledger balances derived from every entry")
    b.add_argument("--prefix", default="")
    args = ap.parse_args(argv)
    out = out or sys.stdout
    now = now or dt.datetime.now(dt.UTC)

    from shared import clients

    db = clients.firestore()
    if args.cmd == "exceptions":
        for x in open_exceptions(db):
            impact = {c: int(v) for c, v in (x.get("impact") or {}).items()}
            row = {k: x.get(k) for k in ("id", "kind", "psp", "account", "payment_ref", "category", "detail")}
            print(json.dumps({**row, "impact": impact, "detected_at": str(x.get("detected_at"))}), file=out)
        return 0
    if args.cmd == "resolve":
        from shared.reconciliation.service import Reconciler

        res = Reconciler(db=db).resolve(args.exception_id, args.reason, now, by=args.by)
        print(json.dumps({"exception_id": args.exception_id, **res}, default=str), file=out)
        return 0
    if args.cmd == "payout":
        v = payout_view(db, args.psp, args.account, args.payout_id)
        po = v["payout"]
        print(f"payout {args.psp}/{args.account}/{args.payout_id}: {_m(int(po['amount']), po['currency'])} "
              f"{po.get('status')}; lines sum {_m(v['lines_sum'], po['currency'])}", file=out)  # fmt: skip
        for ln in v["lines"]:
            fees = ", ".join(f"{f.kind} {_m(f.amount, ln.currency)}" for f in ln.fees)
            gross, net = _m(ln.gross, ln.currency), _m(ln.net, ln.currency)
            ref = ln.psp_reference or "-"
            text = f"  {ln.booked_at:%Y-%m-%d %H:%M} {ln.type.value:<20} {ref:<28} gross {gross:>14} net {net:>14}"
            print(f"{text}  {fees}", file=out)
        return 0
    if args.cmd == "report":
        day = args.day or (now - dt.timedelta(days=1)).date()
        cfg = recon_settings()
        rep = daily_report(db, day, now, cfg.psp_delay, cfg.our_delay)
        print(rep.to_text(), file=out)
        return 1 if rep.unexplained else 0
    balances: dict[tuple[str, str], int] = ledger.balances(db)
    for (acct, cur), bal in sorted(balances.items()):
        if acct.startswith(args.prefix):
            print(f"{acct:<40} {_m(bal, cur):>18}", file=out)
    tb = j.trial_balance(balances)
    print(f"trial balance: {tb or 'zero in every currency'}", file=out)
    return 0 if not tb else 1


if __name__ == "__main__":
    raise SystemExit(main())
