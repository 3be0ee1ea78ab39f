"""Operator commands for disputes: open ones by due time, one with its evidence, accept, submit, tick, report.

    python -m shared.ops.disputes list                                  # open disputes, soonest due first
    python -m shared.ops.disputes show stripe~default~dp_123            # the document, its evidence packet
    python -m shared.ops.disputes evidence build stripe~default~dp_123  # (re)build the packet from our records
    python -m shared.ops.disputes submit stripe~default~dp_123          # print what would be sent to the PSP
    python -m shared.ops.disputes submit stripe~default~dp_123 --confirm [--operator alice]
    python -m shared.ops.disputes accept stripe~default~dp_123 --confirm
    python -m shared.ops.disputes tick [--now 2026-12-01T00:00:00Z]     # raise due deadline alerts now
    python -m shared.ops.disputes report                                # win/loss by PSP and reason

``accept`` records our acceptance in the dispute's fold (a loss: the chargeback is recorded); it needs
``--confirm``, without which it prints what it would do; so does ``submit`` (the PSP's request, built
from the stored packet; once confirmed it is sent once, whoever repeats it). The project comes from
``GOOGLE_CLOUD_PROJECT``; ``FIRESTORE_EMULATOR_HOST`` is honoured.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import sys
from typing import Any, TextIO

from shared.disputes.service import DisputeService
from shared.disputes.submit import SubmitError
from shared.domain.disputes import Status


def _dump(value: Any, out: TextIO) -> None:
    out.write(json.dumps(value, indent=2, sort_keys=True, default=str) + "\n")


def _parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(prog="python -m shared.ops.disputes", description=__doc__.splitlines()[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    sub.add_parser("list", help="open disputes sorted by evidence due time")
    s = sub.add_parser("show", help="one dispute with its notification history and evidence")
    s.add_argument("key")
    e = sub.add_parser("evidence", help="build the evidence packet (idempotent: same records, same object)")
    e.add_argument("action", choices=["build"])
    e.add_argument("key")
    u = sub.add_parser("submit", help="submit the evidence packet through the PSP's API; needs --confirm")
    u.add_argument("key")
    u.add_argument("--confirm", action="store_true")
    u.add_argument("--operator")
    a = sub.add_parser("accept", help="accept a dispute (a loss); needs --confirm")
    a.add_argument("key")
    a.add_argument("--confirm", action="store_true")
    t = sub.add_parser("tick", help="raise the deadline alerts due now (or at --now)")
    t.add_argument("--now", type=lambda v: dt.datetime.fromisoformat(v.replace("Z", "+00:00")))
    sub.add_parser("report", help="win and loss rates by PSP and normalised reason")
    return ap


def main(argv: list[str] | None = None, out: TextIO | None = None, service: DisputeService | None = None) -> int:
    out = out or sys.stdout
    ap = _parser()
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
        _dump({**doc, "evidence": doc.get("evidence")}, out)
        return 0
    if args.cmd == "evidence":
        try:
            _dump(svc.build_evidence(args.key), out)
        except LookupError as exc:
            out.write(f"{exc}\n")
            return 1
        return 0
    if args.cmd == "submit":
        try:
            if not args.confirm:
                _dump(svc.preview_submission(args.key), out)
                out.write("would submit the above: --confirm\n")
                return 2
            _dump(svc.submit_evidence(args.key, operator=args.operator), out)
        except (LookupError, SubmitError) as exc:
            out.write(f"{exc}\n")
            return 1
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
