"""Matching one payment's facts against its settlement lines (pure).

Why per payment: a line names the payment it belongs to (``psp_payment_id``, else ``psp_reference``) and a
fact names it too (``psp_payment_id``), so all the work of matching is a lookup of one small group. Within
the group, movements are compared per category (captures, refunds, chargebacks, reversals), in the
presentment currency when the line was settled in another one (FX at settlement):

1. duplicates: a second line of the same type and movement reference with the same amount (the PSP
   reported the same movement under two line ids) is a finding and takes no part in matching;
2. exact pairs: a fact carrying a movement id (refund id, dispute id) takes the lines whose
   ``psp_reference`` is that id (a partial refund against its refund line);
3. the rest of the category is compared by sum (several captures of one payment, refunds without ids).

Lines without a PSP reference (some PSPs' manual or external movements) fall back to OUR references
(merchant reference / attempt id, then invoice id): the service joins such a line to the one payment whose
facts carry that reference, and matching stays exact on amount and currency. A reference naming several
payments is never guessed: the line carries the candidates and is an ``ambiguous_reference`` finding.

A comparison is matched when currencies and sums agree; otherwise it is a finding: missing on our side
(lines, no fact), missing on the PSP side (facts, no line, once ``psp_delay`` has passed since the
newest fact; until then the facts are awaiting), currency mismatch, amount mismatch. Each finding
carries its ``impact``: its signed contribution per currency to the ledger's clearing account, so the
daily report can prove that the unexplained amount is zero or list it.
"""

from __future__ import annotations

import datetime as dt
import enum
import hashlib
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from shared.events.payments import DisputeOpened, DisputeWon, PaymentEvent, PaymentRefunded, PaymentSucceeded
from shared.settlement.lines import LineType, SettlementLine


class Kind(enum.StrEnum):
    MISSING_OURS = "missing_on_our_side"
    MISSING_PSP = "missing_on_psp_side"
    AMOUNT_MISMATCH = "amount_mismatch"
    CURRENCY_MISMATCH = "currency_mismatch"
    DUPLICATE = "duplicate"
    AMBIGUOUS = "ambiguous_reference"  # a line without PSP reference whose our-reference names several payments


CATEGORIES = (LineType.CAPTURE, LineType.REFUND, LineType.CHARGEBACK, LineType.CHARGEBACK_REVERSAL)


def group_id(psp: str, account: str, payment_ref: str) -> str:
    """Document id of one payment's group: the lookup key shared by its facts and lines."""
    return hashlib.sha256(f"{psp}\x1f{account}\x1f{payment_ref}".encode()).hexdigest()[:40]


@dataclass(frozen=True, slots=True)
class FactView:
    """A payment fact as matching needs it: expected signed effect on the PSP balance (gross sign)."""

    fact_id: str
    category: LineType
    ref: str | None  # refund id / dispute id: pairs with the line's psp_reference
    currency: str
    amount: int | None  # None: the fact did not state an amount (matched on presence)
    occurred_at: dt.datetime

    def to_doc(self) -> dict[str, object]:
        return {
            "category": self.category.value,
            "ref": self.ref,
            "currency": self.currency,
            "amount": self.amount,
            "occurred_at": self.occurred_at,
        }

    @classmethod
    def from_doc(cls, fact_id: str, d: dict[str, object]) -> FactView:
        amount = d.get("amount")
        occurred = d["occurred_at"]
        assert isinstance(occurred, dt.datetime)
        return cls(
            fact_id,
            LineType(str(d["category"])),
            None if d.get("ref") is None else str(d["ref"]),
            str(d["currency"]),
            None if amount is None else int(str(amount)),
            occurred,
        )


@dataclass(frozen=True, slots=True)
class LineView:
    """A settlement line as matching needs it (compared in presentment currency when FX applies)."""

    key: str
    type: LineType
    ref: str | None
    currency: str
    amount: int
    line_id: str
    seen_at: dt.datetime | None = None  # when we first had the line: its fact may still be on its way
    candidates: tuple[str, ...] = ()  # payments its our-reference names, when more than one (never guessed)

    def to_doc(self) -> dict[str, object]:
        return {
            "type": self.type.value,
            "ref": self.ref,
            "currency": self.currency,
            "amount": self.amount,
            "id": self.line_id,
            "seen_at": self.seen_at,
            "candidates": list(self.candidates),
        }

    @classmethod
    def from_doc(cls, key: str, d: dict[str, object]) -> LineView:
        return cls(
            key,
            LineType(str(d["type"])),
            None if d.get("ref") is None else str(d["ref"]),
            str(d["currency"]),
            int(str(d["amount"])),
            str(d["id"]),
            d.get("seen_at") if isinstance(d.get("seen_at"), dt.datetime) else None,  # type: ignore[arg-type]
            tuple(str(c) for c in d.get("candidates") or ()),  # type: ignore[attr-defined]
        )


def payment_ref(line: SettlementLine) -> str | None:
    """The payment a line belongs to; None for lines that need no match (fees, adjustments, payouts)."""
    if line.type not in CATEGORIES:
        return None
    return line.psp_payment_id or line.psp_reference


def line_our_refs(line: SettlementLine) -> tuple[str, ...]:
    """Our references of a payment line that names no payment at the PSP, most specific first; else ()."""
    if line.type not in CATEGORIES or payment_ref(line) is not None:
        return ()
    return tuple(dict.fromkeys(r for r in (line.our_reference, line.our_invoice_id) if r))


def fact_our_refs(event: PaymentEvent) -> tuple[str, ...]:
    """The references of ours a payment fact carries, under which fallback lines can find its payment."""
    return tuple(dict.fromkeys(r for r in (event.refs.attempt_id, event.refs.invoice_id) if r))


def fallback_ref(our_ref: str) -> str:
    """The payment_ref of the group where lines wait for the payment their our-reference names."""
    return f"ref:{our_ref}"


def view_line(line: SettlementLine, seen_at: dt.datetime | None = None, candidates: tuple[str, ...] = ()) -> LineView:
    if line.presentment_currency and line.presentment_amount is not None:
        cur, amount = line.presentment_currency, line.presentment_amount
    else:
        cur, amount = line.currency, line.gross
    return LineView(line.key(), line.type, line.psp_reference, cur, amount, line.line_id, seen_at, candidates)


def view_fact(event: PaymentEvent) -> FactView | None:
    """Facts that move money on the PSP balance; others (authorized, failed, lost dispute ...) are None."""
    amount = event.amount
    if isinstance(event, PaymentRefunded):
        return FactView(
            event.fact_key(),
            LineType.REFUND,
            event.refund_id,
            event.refunded.currency,
            -event.refunded.amount,
            event.psp_created_at,
        )
    if isinstance(event, PaymentSucceeded):
        cat, ref, sign = LineType.CAPTURE, None, 1
    elif isinstance(event, DisputeOpened):
        cat, ref, sign = LineType.CHARGEBACK, event.dispute_id, -1
    elif isinstance(event, DisputeWon):
        cat, ref, sign = LineType.CHARGEBACK_REVERSAL, event.dispute_id, 1
    else:
        return None
    if amount is None:
        return (
            None
            if cat is not LineType.CAPTURE
            else FactView(event.fact_key(), cat, ref, "", None, event.psp_created_at)
        )
    return FactView(event.fact_key(), cat, ref, amount.currency, sign * amount.amount, event.psp_created_at)


@dataclass(frozen=True, slots=True)
class Finding:
    kind: Kind
    category: LineType
    line_keys: tuple[str, ...]
    fact_ids: tuple[str, ...]
    impact: dict[str, int]  # signed contribution per currency to the clearing account
    detail: str = ""

    def id(self, gid: str) -> str:
        raw = "\x1f".join([gid, self.kind.value, self.category.value, *self.line_keys, "|", *self.fact_ids])
        return hashlib.sha256(raw.encode()).hexdigest()[:40]


@dataclass(frozen=True, slots=True)
class Evaluation:
    matched: frozenset[str]  # line keys
    findings: tuple[Finding, ...]
    awaiting: tuple[str, ...]  # fact ids inside the PSP-side delay, line keys inside our-side delay
    due_at: dt.datetime | None  # when what awaits turns into findings (the tick re-evaluates)
    awaiting_impact: dict[str, int] = field(default_factory=dict)

    @property
    def state(self) -> str:
        if self.findings:
            return "exception"
        return "awaiting" if self.awaiting else "matched"


def _sum(items: Iterable[tuple[str, int]]) -> dict[str, int]:
    out: dict[str, int] = defaultdict(int)
    for cur, v in items:
        out[cur] += v
    return dict(out)


def evaluate(
    facts: Sequence[FactView],
    lines: Sequence[LineView],
    now: dt.datetime,
    psp_delay: dt.timedelta,
    our_delay: dt.timedelta = dt.timedelta(0),
) -> Evaluation:
    """The matching verdict for one payment's facts and lines (order-independent: inputs are sorted)."""
    facts = sorted(facts, key=lambda f: f.fact_id)
    lines = sorted(lines, key=lambda ln: ln.key)
    findings: list[Finding] = []
    matched: set[str] = set()
    awaiting: list[FactView] = []
    waiting_lines: list[LineView] = []

    # 0. a line whose our-reference names several payments: reported, never matched to one of them
    for ln in lines:
        if len(ln.candidates) > 1:
            findings.append(
                Finding(
                    Kind.AMBIGUOUS,
                    ln.type,
                    (ln.key,),
                    (),
                    {ln.currency: -ln.amount},
                    f"our reference names {len(ln.candidates)} payments: {', '.join(ln.candidates[:5])}",
                )
            )
    lines = [ln for ln in lines if len(ln.candidates) <= 1]

    # 1. duplicates: same type, movement reference and amount under another line id
    first: dict[tuple[LineType, str], LineView] = {}
    live: list[LineView] = []
    for ln in sorted(lines, key=lambda x: (x.line_id, x.key)):
        k = (ln.type, ln.ref or "")
        orig = first.get(k) if ln.ref else None
        if orig is not None and (orig.currency, orig.amount) == (ln.currency, ln.amount):
            findings.append(
                Finding(
                    Kind.DUPLICATE,
                    ln.type,
                    (ln.key,),
                    (),
                    {ln.currency: -ln.amount},
                    f"same movement as line {orig.line_id}",
                )
            )
            continue
        if ln.ref:
            first.setdefault(k, ln)
        live.append(ln)

    for cat in CATEGORIES:
        cf = [f for f in facts if f.category is cat]
        cl = [ln for ln in live if ln.type is cat]
        if not cf and not cl:
            continue
        # 2. exact pairs on the movement id
        rest_l = list(cl)
        pairs: list[tuple[list[FactView], list[LineView]]] = []
        rest_f: list[FactView] = []
        for f in cf:
            mine = [ln for ln in rest_l if f.ref and ln.ref == f.ref]
            if mine:
                pairs.append(([f], mine))
                rest_l = [ln for ln in rest_l if ln not in mine]
            else:
                rest_f.append(f)
        # 3. the rest by sum
        pairs.append((rest_f, rest_l))
        for fs, ls in pairs:
            _compare(cat, fs, ls, now=now, delay=psp_delay, our_delay=our_delay, findings=findings, matched=matched,
                     awaiting=awaiting, waiting_lines=waiting_lines)  # fmt: skip

    dues = [f.occurred_at + psp_delay for f in awaiting] + [_seen(ln, now) + our_delay for ln in waiting_lines]
    return Evaluation(
        matched=frozenset(matched),
        findings=tuple(findings),
        awaiting=tuple(f.fact_id for f in awaiting) + tuple(ln.key for ln in waiting_lines),
        due_at=max(dues, default=None),
        awaiting_impact=_sum(
            [(f.currency, f.amount or 0) for f in awaiting] + [(ln.currency, -ln.amount) for ln in waiting_lines]
        ),
    )


def _seen(line: LineView, now: dt.datetime) -> dt.datetime:
    return line.seen_at or now


def _compare(
    cat: LineType,
    fs: list[FactView],
    ls: list[LineView],
    *,
    now: dt.datetime,
    delay: dt.timedelta,
    our_delay: dt.timedelta,
    findings: list[Finding],
    matched: set[str],
    awaiting: list[FactView],
    waiting_lines: list[LineView],
) -> None:
    lkeys = tuple(ln.key for ln in ls)
    fids = tuple(f.fact_id for f in fs)
    line_sum = _sum((ln.currency, ln.amount) for ln in ls)
    fact_sum = _sum((f.currency, f.amount or 0) for f in fs if f.currency)
    if not fs and not ls:
        return
    if not fs:
        if max(_seen(ln, now) for ln in ls) + our_delay > now:
            waiting_lines.extend(ls)  # settlement overtook the webhook: give the fact its delay
            return
        findings.append(
            Finding(
                Kind.MISSING_OURS,
                cat,
                lkeys,
                (),
                {c: -v for c, v in line_sum.items()},
                "no payment fact received for these lines",
            )
        )
        return
    if not ls:
        if max(f.occurred_at for f in fs) + delay <= now:
            findings.append(Finding(Kind.MISSING_PSP, cat, (), fids, fact_sum, f"no settlement line within {delay}"))
        else:
            awaiting.extend(fs)
        return
    if any(f.amount is None for f in fs):
        matched.update(lkeys)  # a fact without an amount is matched on presence alone
        return
    if set(fact_sum) != set(line_sum):
        impact = _sum([*fact_sum.items(), *((c, -v) for c, v in line_sum.items())])
        findings.append(
            Finding(
                Kind.CURRENCY_MISMATCH,
                cat,
                lkeys,
                fids,
                impact,
                f"facts in {sorted(fact_sum)}, lines in {sorted(line_sum)}",
            )
        )
        return
    diff = {c: fact_sum[c] - line_sum[c] for c in fact_sum if fact_sum[c] != line_sum[c]}
    if diff:
        findings.append(Finding(Kind.AMOUNT_MISMATCH, cat, lkeys, fids, diff, f"facts {fact_sum} vs lines {line_sum}"))
        return
    matched.update(lkeys)
