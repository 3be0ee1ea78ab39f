"""The gap audit of a numbering series as stored (the service behind the operator command and the console).

Why here and not in ``shared.ops``: the console function audits too, and operator CLIs never ship in a
function bundle; ``shared.ops.invoices audit`` is the command over this function.
"""

from __future__ import annotations

from typing import Any

from shared.domain.numbering import AuditReport, audit
from shared.invoicing.allocator import SERIES
from shared.invoicing.repository import CREDIT_NOTES, INVOICES
from shared.log import get_logger

log = get_logger(__name__)


def audit_series(db: Any, series_id: str) -> AuditReport:
    """Audit one series as stored: every numbered document plus the counter."""
    from google.cloud.firestore_v1.base_query import FieldFilter

    seqs: list[int] = []
    for coll in (INVOICES, CREDIT_NOTES):
        for snap in (
            db.collection(coll).where(filter=FieldFilter("series_id", "==", series_id)).select(["seq"]).stream()
        ):
            seq = (snap.to_dict() or {}).get("seq")
            if seq:
                seqs.append(int(seq))
    head = db.collection(SERIES).document(series_id).get()
    counter = int((head.to_dict() or {}).get("counter", 0)) if head.exists else None
    report = audit(series_id, seqs, counter=counter)
    if not report.ok:  # the log contract the "invoice series audit" alert counts (README, Operator runbook)
        log.error(
            "invoice series audit failed",
            extra={
                "event": "invoice.audit_failed",
                "series_id": series_id,
                "missing_numbers": sum(b - a + 1 for a, b in report.gaps),
                "duplicate_numbers": len(report.duplicates),
                "notes": list(report.notes),
            },
        )
    return report
