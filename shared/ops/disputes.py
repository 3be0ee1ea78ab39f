"""Operator commands for disputes: open ones by due time, one with its history, accept, tick, report.

    python -m shared.ops.disputes list                                  # open disputes, soonest due first
    python -m shared.ops.disputes show stripe~default~dp_123            # the dispute document as JSON
    python -m shared.ops.disputes accept stripe~default~dp_123 --confirm
    python -m shared.ops.disputes tick [--now 2026-12-01T00:00:00Z]     # raise due deadline alerts now
    python -m shared.ops.disputes report                                # win/loss by PSP and reason

``accept`` records our acceptance in the dispute's fold (a loss: the chargeback is recorded); it needs
``--confirm``, without which it prints what it would do. The project comes from ``GOOGLE_CLOUD_PROJECT``;
``FIRESTORE_EMULATOR_HOST`` is honoured.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import sys
from typing import Any, TextIO

from shared.disputes.service import DisputeService
from shared.domain.disputes import Status


def _dump(value: Any, out: TextIO) -> None:
    out.write(json.dumps(value, indent=2, sort_keys=True, default=str) + "\n")


def main(argv: list[str] | None = None, out: TextIO | None = None, service: DisputeService | None = None) -> int:
    out = out or sys.stdout
    ap = argparse.ArgumentParser(prog="python -m shared.ops.disputes", description=__doc__.splitlines()[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    sub.add_parser("list", help="open disputes sorted by evidence due time")
    s = sub.add_parser("show", help="one dispute with its notification history and evidence")
    s.add_argument("key")
    a = sub.add_parser("accept", help="accept a dispute (a loss); needs --confirm")
    a.add_argument("key")
    a.add_argument("--confirm", action="store_true")
    t = sub.add_parser("tick", help="raise the deadline alerts due now (or at --now)")
    t.add_argument("--now", type=lambda v: dt.datetime.fromisoformat(v.replace("Z", "+00:00")))
    sub.add_parser("report", help="win and loss rates by PSP and normalised reason")
    args = ap.parse_args(argv)
    svc = service or DisputeService()
    if args.cmd == "list":
        for d in svc.list_open():
            due = d.get("due_by")
            out.write(
                f"{d['key']}\t{d['status']}\t{due.isoformat() if due else '-'}\t"
                f"{d.get('amount')} {d.get('currency') or ''}\t{d.get('reason')}\n"
            )
        return 0
    if args.cmd == "show":
        doc = svc.get(args.key)
        if doc is None:
            out.write(f"no dispute {args.key}\n")
            return 1
        _dump(doc, out)
        return 0
    if args.cmd == "accept":
        doc = svc.get(args.key)
        if doc is None:
            out.write(f"no dispute {args.key}\n")
            return 1
        if not args.confirm:
            out.write(
                f"would accept {args.key} ({doc['status']}, {doc.get('amount')} {doc.get('currency')}): --confirm\n"
            )
            return 2
        _dump({"key": args.key, "status": svc.record_operator(args.key, Status.ACCEPTED, "accept")["status"]}, out)
        return 0
    if args.cmd == "tick":
        _dump(svc.tick(args.now), out)
        return 0
    _dump(svc.report(), out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
