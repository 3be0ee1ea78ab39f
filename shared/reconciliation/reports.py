"""What operators read: open exceptions, a payout with its lines, the daily report.

The daily report's "unexplained" figure is a proof, not a counter: for every PSP account and currency,
the ledger's clearing account (``psp_pending``, derived from all entries) minus what open exceptions
explain minus what facts still inside their settlement delay explain. It is zero when every cent left in
clearing has a reason; otherwise the residue is listed.
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any

from shared.domain.money import Money
from shared.ledger import journal as j
from shared.ledger import store as ledger
from shared.reconciliation import matching as m
from shared.reconciliation.repository import EXCEPTIONS, GROUPS, LINES, PAYOUTS, line_from, payout_key
from shared.settlement.lines import LineType, SettlementLine


def _filter(field_: str, op: str, value: Any) -> Any:
    from google.cloud.firestore_v1.base_query import FieldFilter

    return FieldFilter(field_, op, value)


def open_exceptions(db: Any, limit: int = 200) -> list[dict[str, Any]]:
    q = db.collection(EXCEPTIONS).where(filter=_filter("status", "==", "open")).order_by("detected_at").limit(limit)
    return [{"id": s.id, **(s.to_dict() or {})} for s in q.stream()]


def payout_view(db: Any, psp: str, account: str, payout_id: str) -> dict[str, Any]:
    key = payout_key(psp, account, payout_id)
    snap = db.collection(PAYOUTS).document(key).get()
    if not snap.exists:
        raise LookupError(f"no payout {psp}/{account}/{payout_id}")
    lines = [
        line_from(s.to_dict() or {})
        for s in db.collection(LINES).where(filter=_filter("payout_key", "==", key)).stream()
    ]
    lines.sort(key=lambda ln: (ln.booked_at, ln.line_id))
    return {"payout": snap.to_dict() or {}, "lines": lines, "lines_sum": sum(ln.net for ln in lines)}


def _money(amount: int, currency: str) -> str:
    try:
        return str(Money(amount, currency))
    except ValueError:
        return f"{amount} {currency} (minor units)"


@dataclass
class DailyReport:
    day: dt.date
    lines: int = 0
    matched: int = 0  # payment lines matched + lines that explain themselves (fees, adjustments, payouts)
    by_status: dict[str, int] = field(default_factory=dict)
    fees: dict[tuple[str, str, str], int] = field(default_factory=dict)  # (psp, kind, currency) -> minor units
    open_exceptions: list[dict[str, Any]] = field(default_factory=list)
    unexplained: dict[tuple[str, str], int] = field(default_factory=dict)  # (clearing account, currency)
    clearing: dict[tuple[str, str], int] = field(default_factory=dict)
    awaiting: dict[tuple[str, str], int] = field(default_factory=dict)

    @property
    def matched_pct(self) -> float:
        return 100.0 if not self.lines else 100.0 * self.matched / self.lines

    def to_text(self) -> str:
        out = [f"Reconciliation report {self.day.isoformat()}"]
        out.append(
            f"  settlement lines {self.lines}, matched or self-explaining {self.matched} ({self.matched_pct:.2f} %)"
        )
        for k, v in sorted(self.by_status.items()):
            out.append(f"    {k:<28} {v}")
        out.append("  fees by PSP and type")
        for (psp, kind, cur), v in sorted(self.fees.items()):
            out.append(f"    {psp:<10} {kind:<14} {_money(v, cur):>16}")
        out.append(f"  open exceptions {len(self.open_exceptions)}")
        for x in self.open_exceptions:
            impact = ", ".join(_money(v, c) for c, v in sorted(x.get("impact", {}).items()))
            out.append(f"    {x['id'][:12]} {x['kind']:<20} {x['psp']}/{x['account']} {x.get('payment_ref')}  {impact}")
        if not self.unexplained:
            out.append("  unexplained amount: 0 (the clearing accounts are fully explained)")
        else:
            out.append("  UNEXPLAINED amounts:")
            for (acct, cur), v in sorted(self.unexplained.items()):
                out.append(f"    {acct:<32} {_money(v, cur)}")
        return "\n".join(out)


def daily_report(
    db: Any, day: dt.date, now: dt.datetime, psp_delay: dt.timedelta, our_delay: dt.timedelta = dt.timedelta(0)
) -> DailyReport:
    start = dt.datetime.combine(day, dt.time(0), dt.UTC)
    q = (
        db.collection(LINES)
        .where(filter=_filter("booked_at", ">=", start))
        .where(filter=_filter("booked_at", "<", start + dt.timedelta(days=1)))
    )
    lines: list[tuple[SettlementLine, str | None]] = []
    for s in q.stream():
        d = s.to_dict() or {}
        lines.append((line_from(d), d.get("group")))
    rep = DailyReport(day=day, lines=len(lines))
    fees: dict[tuple[str, str, str], int] = defaultdict(int)
    for ln, _ in lines:
        for f in ln.fees:
            fees[(ln.psp, f.kind, ln.currency)] += f.amount
    rep.fees = dict(fees)
    gids = sorted({g for _, g in lines if g})
    verdicts: dict[str, m.Evaluation] = {}
    refs = [db.collection(GROUPS).document(g) for g in gids]
    for i in range(0, len(refs), 300):
        for snap in db.get_all(refs[i : i + 300]):
            verdicts[snap.id] = _evaluate(snap.to_dict() or {}, now, psp_delay, our_delay)
    status: dict[str, int] = defaultdict(int)
    for ln, g in lines:
        if ln.type not in m.CATEGORIES:
            rep.matched += 1
            status[f"booked ({ln.type.value})"] += 1
        elif g in verdicts and ln.key() in verdicts[g].matched:
            rep.matched += 1
            status["matched"] += 1
        else:
            status["in an exception"] += 1
    rep.by_status = dict(status)
    rep.open_exceptions = open_exceptions(db, limit=1000)
    balances = ledger.balances(db)
    rep.clearing = {k: v for k, v in balances.items() if k[0].startswith("psp_pending:")}
    explained: dict[tuple[str, str], int] = defaultdict(int)
    for x in rep.open_exceptions:
        for cur, v in (x.get("impact") or {}).items():
            explained[(j.psp_pending(x["psp"], x["account"]), cur)] += int(v)
    awaiting = db.collection(GROUPS).where(filter=_filter("state", "==", "awaiting")).stream()
    for snap in awaiting:
        d = snap.to_dict() or {}
        for cur, v in _evaluate(d, now, psp_delay, our_delay).awaiting_impact.items():
            rep.awaiting[(j.psp_pending(d["psp"], d["account"]), cur)] = (
                rep.awaiting.get((j.psp_pending(d["psp"], d["account"]), cur), 0) + v
            )
            explained[(j.psp_pending(d["psp"], d["account"]), cur)] += v
    keys = set(rep.clearing) | set(explained)
    rep.unexplained = {k: rep.clearing.get(k, 0) - explained.get(k, 0) for k in keys}
    rep.unexplained = {k: v for k, v in rep.unexplained.items() if v}
    return rep


def _evaluate(doc: dict[str, Any], now: dt.datetime, delay: dt.timedelta, our: dt.timedelta) -> m.Evaluation:
    return m.evaluate(
        [m.FactView.from_doc(k, v) for k, v in (doc.get("facts") or {}).items()],
        [m.LineView.from_doc(k, v) for k, v in (doc.get("lines") or {}).items()],
        now,
        delay,
        our,
    )


__all__ = ["DailyReport", "LineType", "daily_report", "open_exceptions", "payout_view"]
