"""Operator commands for invoices: gap audit of a series, inspect, void, mark uncollectible or paid.

    python -m shared.ops.invoices audit --series acme-fr.INV.2026     # exit 1 if a gap or duplicate
    python -m shared.ops.invoices series                              # every series and its counter
    python -m shared.ops.invoices show in_3f2a...                     # the invoice (or cn_...) as JSON
    python -m shared.ops.invoices void in_3f2a... --reason "issued in error"
    python -m shared.ops.invoices uncollectible in_3f2a... --reason "customer insolvent"
    python -m shared.ops.invoices mark-paid in_3f2a... --reason "bank transfer ref 4711"

``mark-paid`` records a payment we did not receive through a PSP (open or uncollectible -> paid) and
publishes ``invoice.paid``, which settles the subscription period the invoice was issued for.

The audit reads every document numbered in the series (invoices or credit notes) and the series'
counter, and lists missing numbers (including numbers consumed by the counter with no document) and
numbers carried by more than one document. The project comes from ``GOOGLE_CLOUD_PROJECT``;
``FIRESTORE_EMULATOR_HOST`` is honoured.
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any, TextIO

from shared.invoicing.allocator import SERIES
from shared.invoicing.audit import audit_series  # the service; re-exported for callers of this module
from shared.invoicing.repository import CREDIT_NOTES, INVOICES

__all__ = ["audit_series", "main"]


def _show(db: Any, doc_id: str) -> dict[str, Any] | None:
    coll = CREDIT_NOTES if doc_id.startswith("cn_") else INVOICES
    snap = db.collection(coll).document(doc_id).get()
    return snap.to_dict() if snap.exists else None


def main(argv: list[str] | None = None, out: TextIO | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m shared.ops.invoices", description=__doc__.splitlines()[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    a = sub.add_parser("audit", help="list gaps and duplicates in a numbering series")
    a.add_argument("--series", required=True, action="append", help="series id, e.g. acme-fr.INV.2026 (repeatable)")
    sub.add_parser("series", help="list every series with its counter")
    s = sub.add_parser("show", help="print an invoice or credit note")
    s.add_argument("doc_id")
    for name in ("void", "uncollectible"):
        p = sub.add_parser(name, help=f"mark an open invoice {name}")
        p.add_argument("invoice_id")
        p.add_argument("--reason")
    m = sub.add_parser("mark-paid", help="record a payment received outside the PSPs (publishes invoice.paid)")
    m.add_argument("invoice_id")
    m.add_argument("--reason", required=True, help="what was received, for the audit trail")
    args = ap.parse_args(argv)
    out = out or sys.stdout

    from shared import clients

    db = clients.firestore()
    if args.cmd == "audit":
        reports = [audit_series(db, sid) for sid in args.series]
        for r in reports:
            print(r.render(), file=out)
        return 0 if all(r.ok for r in reports) else 1
    if args.cmd == "series":
        for snap in db.collection(SERIES).stream():
            d = snap.to_dict() or {}
            print(f"{snap.id}\tcounter={d.get('counter', 0)}\tcommits={d.get('commits', 0)}", file=out)
        return 0
    if args.cmd == "show":
        doc = _show(db, args.doc_id)
        if doc is None:
            print(f"no invoice or credit note {args.doc_id}", file=sys.stderr)
            return 2
        print(json.dumps(doc, indent=2, default=str, sort_keys=True), file=out)
        return 0
    from shared.domain.invoices import InvalidTransition
    from shared.invoicing.service import InvoiceService

    svc = InvoiceService(db=db)
    try:
        if args.cmd == "void":
            result = svc.void(args.invoice_id, args.reason)
        elif args.cmd == "mark-paid":
            result = svc.mark_paid(args.invoice_id, args.reason)
        else:
            result = svc.mark_uncollectible(args.invoice_id, args.reason)
    except (InvalidTransition, LookupError) as exc:
        print(f"refused: {exc}", file=sys.stderr)
        return 2
    print(json.dumps(result, default=str), file=out)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
