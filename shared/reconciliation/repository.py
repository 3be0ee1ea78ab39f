"""Firestore layout of reconciliation (collections, document ids, document shapes).

``settlement_lines/{SettlementLine.key()}``  one document per line, created once (the same line from the
                                             same PSP twice is the same document)
``recon_groups/{group id}``                  one payment: its facts and line views, the last verdict
                                             (state, due_at for the tick, open exception ids)
``recon_refs/{hash}``                        one of OUR references (attempt / invoice id) of a PSP account ->
                                             the payments whose facts carry it (``groups``: gid -> payment)
``recon_exceptions/{exception id}``          open -> cleared (explained later) | resolved (by an operator)
``settlement_payouts/{payout key}``          what the PSP paid to the bank; open -> closed
``settlement_payout_parts/{hash}``           a source's unrounded net of a payout (Checkout.com), keyed by
                                             the payout and the lines it covers (the same file twice: one part)
``recon_files/{hash}``                       claim of one bucket object generation (intake once)
``recon_cursors/{psp:account}``              where the last API pull ended
"""

from __future__ import annotations

import hashlib
from typing import Any

from shared.idempotency import Schema
from shared.settlement.lines import LineType, PayoutNet, SettlementBatch, SettlementLine

LINES = "settlement_lines"
GROUPS = "recon_groups"
EXCEPTIONS = "recon_exceptions"
REFS = "recon_refs"
PAYOUTS = "settlement_payouts"
PAYOUT_PARTS = "settlement_payout_parts"
FILES = "recon_files"
CURSORS = "recon_cursors"

# A bucket object is intake work done once: the claim holds the intake's summary as its result.
FILE_CLAIM = Schema(state_attr="state", in_progress="intake", completed="done", release_deletes=True)


def _h(*parts: str) -> str:
    return hashlib.sha256("\x1f".join(parts).encode()).hexdigest()[:40]


def payout_key(psp: str, account: str, payout_id: str) -> str:
    return _h(psp, account, payout_id)


def ref_key(psp: str, account: str, our_ref: str) -> str:
    return _h("ref", psp, account, our_ref)


def part_key(payout: str, line_keys: list[str]) -> str:
    return _h(payout, *sorted(line_keys))


def file_key(bucket: str, name: str, generation: str) -> str:
    return _h(bucket, name, generation)


def line_doc(line: SettlementLine, group: str | None) -> dict[str, Any]:
    doc: dict[str, Any] = line.model_dump(mode="json")
    doc["booked_at"] = line.booked_at
    doc["group"] = group
    # Only lines that make up a payout count towards it; the payout line itself moves the total.
    doc["payout_key"] = (
        payout_key(line.psp, line.account, line.payout_id)
        if line.payout_id and line.type is not LineType.PAYOUT
        else None
    )
    return doc


def line_from(doc: dict[str, Any]) -> SettlementLine:
    data = {k: v for k, v in doc.items() if k not in ("group", "payout_key")}
    return SettlementLine.model_validate(data)


def payout_parts(batch: SettlementBatch) -> list[tuple[str, dict[str, Any]]]:
    """The batch's exact payout nets as documents (empty for PSPs whose lines are exact already)."""
    out = []
    for pn in batch.payout_nets:
        keys = [ln.key() for ln in batch.lines if ln.payout_id == pn.payout_id and ln.currency == pn.currency]
        if not keys:
            continue
        ln0 = next(ln for ln in batch.lines if ln.payout_id == pn.payout_id)
        pkey = payout_key(ln0.psp, ln0.account, pn.payout_id)
        out.append((part_key(pkey, keys), _part_doc(pkey, pn, len(keys))))
    return out


def _part_doc(pkey: str, pn: PayoutNet, lines: int) -> dict[str, Any]:
    return {"payout_key": pkey, "currency": pn.currency, "exact_net": str(pn.exact_net), "lines": lines}
