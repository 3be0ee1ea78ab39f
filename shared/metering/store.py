"""Usage on Firestore: meters, metered subscriptions (the calendar usage is billed on), dedup ids and shard totals.

Documents (``~`` separates parts; ids never contain it):

* ``meters/{id}``: a :class:`~shared.domain.meters.Meter`, immutable but for ``active``;
* ``usage_calendars/{customer}``: the customer's metered subscription: its schedule (anchor, zone, cadence), its
  metered items (price snapshot + meter id), ``late`` (periods already closed that received events since);
* ``usage_ids/{customer}~{shard}``: the digests (12 bytes) of the events applied to that shard, in one bytes
  field; a full page moves to ``usage_ids/{customer}~{shard}~p{n}`` (``expire_at``: Firestore TTL);
* ``usage_totals/{customer}~{period start}~{shard}``: the partials of every meter and group of that shard for
  that period; ``closed_at`` once the period has been rated;
* ``usage_closes/{customer}~{request id}``: the lines a close produced (a repeated close answers them again);
  ``usage_billed/{customer}~{period start}``: the quantities and amounts billed for a period so far.

Why this shape: an event's shard is a hash of (customer, event id), so the same id always meets its earlier
copy in the same ``usage_ids`` document, whatever its timestamp, and one commit of a customer's events writes at
most ``shards`` id documents and ``shards`` totals documents per period (no document is written per event, none
more than once per commit). One shard by default: a large batch touches every shard anyway, so more shards only
multiply the writes of a batch mixing customers. :meth:`MeteringStore.apply_parts` folds several deliveries (the
aggregator's window, :mod:`shared.metering.window`) in one commit per customer. Every write is one batch
conditioned on the ``update_time`` of each document read (or ``create`` for a new one), retried by the one
compare-and-set policy: concurrent or redelivered batches touching the same shard serialise, and an id is applied
exactly once.
"""

from __future__ import annotations

import contextvars
import datetime as dt
import functools
import time
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from pydantic import Field

from shared import clients
from shared.domain.calendar import Anchor, Cadence, Period, Schedule, Unit
from shared.domain.catalog import Frozen, Price
from shared.domain.meters import (
    DIGEST_BYTES,
    Event,
    Meter,
    Rated,
    Totals,
    fold,
    merge_totals,
    quantities,
    rate,
    shard_of,
    totals_from_doc,
    totals_to_doc,
)
from shared.domain.money import Money
from shared.domain.pricing import ChargeLine, LineKind
from shared.idempotency import retry_on_contention
from shared.idempotency.cas import Stale, precondition
from shared.log import get_logger
from shared.metering.config import MeteringSettings, metering_settings

log = get_logger(__name__)

METERS, CALENDARS, IDS, TOTALS = "meters", "usage_calendars", "usage_ids", "usage_totals"
CLOSES, BILLED, THRESHOLDS = "usage_closes", "usage_billed", "usage_thresholds"
METER_CACHE_S = 30.0
APPLY_THREADS = 8  # customers of one window committed side by side


def utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


class MeteringError(Exception):
    """A refusal with its HTTP status and code (unknown meter, period not closable yet ...)."""

    def __init__(self, status: int, code: str, detail: Any) -> None:
        super().__init__(f"{status} {code}: {detail}")
        self.status, self.code, self.detail = status, code, detail


@dataclass(frozen=True, slots=True)
class MeteringDeps:
    db: Callable[[], Any] = clients.firestore
    clock: Callable[[], dt.datetime] = utcnow
    settings: Callable[[], MeteringSettings] = metering_settings


class MeteredItem(Frozen):
    """A usage-priced item: ``price`` (any model of the catalog, snapshotted) applied to ``meter``'s quantity."""

    price: Price
    meter: str


class Calendar(Frozen):
    """The metered subscription of a customer: usage periods are its billing periods."""

    customer: str
    subscription_id: str
    anchor_local: dt.datetime
    zone: str
    interval: Unit
    interval_count: int = 1
    items: tuple[MeteredItem, ...] = Field(min_length=1, max_length=20)
    late: tuple[str, ...] = ()  # closed periods with events folded since: adjusted by the next close
    late_seq: int = 0  # bumped with each late write, so a concurrent close always sees a changed document
    threshold: int | None = Field(default=None, gt=0)  # progressive billing (shared.metering.thresholds), minor units
    ended_at: dt.datetime | None = None  # the subscription ended and its final usage close ran (nothing closes after)
    final_request: str | None = None  # the request id of that final close

    @property
    def schedule(self) -> Schedule:
        return Schedule(Anchor(self.anchor_local, self.zone), Cadence(self.interval, self.interval_count))


def period_key(p: Period) -> str:
    return p.start.astimezone(dt.UTC).strftime("%Y%m%dT%H%M%S%fZ")


def parse_period_key(k: str) -> dt.datetime:
    return dt.datetime.strptime(k, "%Y%m%dT%H%M%S%fZ").replace(tzinfo=dt.UTC)


@dataclass(frozen=True, slots=True)
class Applied:
    """What one batch did: events newly applied, duplicates (already applied, or twice in the batch)."""

    applied: int = 0
    duplicates: int = 0
    late: int = 0
    writes: int = 0


@dataclass(frozen=True, slots=True)
class _Folded:
    """What one customer's commit applied: the digests folded, those that fell in closed periods, the writes."""

    fresh: frozenset[bytes] = frozenset()
    late: frozenset[bytes] = frozenset()
    writes: int = 0


@dataclass
class _MeterCache:
    at: float = -1e18
    meters: tuple[Meter, ...] = ()


@dataclass
class MeteringStore:
    deps: MeteringDeps = field(default_factory=MeteringDeps)
    _cache: _MeterCache = field(default_factory=_MeterCache)

    def _col(self, name: str) -> Any:
        return self.deps.db().collection(name)

    # -- meters -------------------------------------------------------------------------------------
    def create_meter(self, meter: Meter) -> tuple[int, dict[str, Any]]:
        """Create once: 201; the same definition again 200; another one under the id 409."""
        from google.api_core.exceptions import AlreadyExists, Conflict

        ref = self._col(METERS).document(meter.id)
        doc = {**meter.model_dump(mode="json"), "created_at": self.deps.clock()}
        try:
            ref.create(doc)
        except (AlreadyExists, Conflict):
            existing = ref.get().to_dict() or {}
            if Meter.model_validate({k: v for k, v in existing.items() if k != "created_at"}) != meter:
                raise MeteringError(409, "meter_exists", f"meter {meter.id} exists with another definition") from None
            return 200, existing
        self._cache.at = -1e18
        return 201, doc

    def meter(self, meter_id: str) -> Meter:
        snap = self._col(METERS).document(meter_id).get()
        if not snap.exists:
            raise MeteringError(404, "meter_not_found", meter_id)
        return _meter(snap.to_dict() or {})

    def meters(self, names: Iterable[str] = ()) -> tuple[Meter, ...]:
        """Every meter, cached for :data:`METER_CACHE_S`; read again at once when one of ``names`` (a batch's event
        names) has no meter in the cache, so a meter created anywhere counts every event aggregated after its
        creation, not only those after another instance's cache expired (a name no meter uses costs one read of
        the meters per batch: producers sending usage nothing meters are misconfigured)."""
        known = {m.event_name for m in self._cache.meters}
        if time.monotonic() - self._cache.at > METER_CACHE_S or not known.issuperset(names):
            docs = self._col(METERS).stream()
            ms = [
                Meter.model_validate({k: v for k, v in (d.to_dict() or {}).items() if k != "created_at"}) for d in docs
            ]
            self._cache.meters, self._cache.at = tuple(sorted(ms, key=lambda m: m.id)), time.monotonic()
        return self._cache.meters

    # -- calendars ----------------------------------------------------------------------------------
    def attach(
        self,
        customer: str,
        *,
        subscription_id: str,
        start: dt.datetime,
        zone: str,
        cadence: Cadence,
        items: Sequence[MeteredItem],
        threshold: int | None = None,
    ) -> Calendar:
        """Bill ``customer``'s usage on this subscription's periods (anchored at ``start`` in ``zone``)."""
        for it in items:
            self.meter(it.meter)  # 404 for an unknown meter
        cal = Calendar(
            customer=customer,
            subscription_id=subscription_id,
            anchor_local=Anchor.at(start, zone).local,
            zone=zone,
            interval=cadence.unit,
            interval_count=cadence.count,
            items=tuple(items),
            threshold=threshold,
        )
        ref = self._col(CALENDARS).document(customer)
        sub = self._col("subscriptions").document(subscription_id)
        if sub.get().exists:  # the renewals planner bills this subscription's usage (shared.metering.billing)
            sub.update({"metered": {"customer": customer}})

        def step() -> None:  # keep the late periods a close has not billed yet
            snap = ref.get()
            old = (snap.to_dict() or {}) if snap.exists else {}
            doc = cal.model_dump(mode="json") | {"late": old.get("late", []), "late_seq": old.get("late_seq", 0)}
            if snap.exists:
                ref.update(doc, option=precondition(snap.update_time))
            else:
                ref.create(doc)

        retry_on_contention(step, what=f"usage calendar {customer}")
        return cal

    def calendar(self, customer: str) -> Calendar | None:
        snap = self._col(CALENDARS).document(customer).get()
        return _calendar(snap)

    # -- aggregation --------------------------------------------------------------------------------
    def apply(self, events: Sequence[Event]) -> Applied:
        """Fold a batch of validated events: per customer, one conditional batch write (see the module doc)."""
        return self.apply_parts([events])[0]

    def apply_parts(self, parts: Sequence[Sequence[Event]]) -> list[Applied]:
        """Fold several deliveries' events together (a window, :mod:`shared.metering.window`): per customer ONE
        conditional batch write for all of them; each part gets its own counts (an id in two parts is applied
        in the first), and the window's ``writes`` are reported on the first part (the sum stays exact)."""
        by_customer: dict[str, list[Event]] = {}
        for part in parts:
            for e in part:
                by_customer.setdefault(e.customer, []).append(e)
        if not by_customer:
            return [Applied() for _ in parts]
        meters = self.meters({e.name for evs in by_customer.values() for e in evs})

        def one(customer: str) -> _Folded:
            step = functools.partial(self._apply_customer, customer, by_customer[customer], meters)
            return retry_on_contention(step, what=f"usage {customer}")

        customers = sorted(by_customer)
        if len(customers) == 1:
            folded = [one(customers[0])]
        else:  # customers never share a document: their commits run side by side (in this delivery's context)
            with ThreadPoolExecutor(min(len(customers), APPLY_THREADS)) as pool:
                futures = [pool.submit(contextvars.copy_context().run, one, c) for c in customers]
                folded = [f.result() for f in futures]
        fresh: set[bytes] = set().union(*(f.fresh for f in folded))
        late: set[bytes] = set().union(*(f.late for f in folded))
        writes = sum(f.writes for f in folded)
        out: list[Applied] = []
        for i, part in enumerate(parts):
            applied = dup = n_late = 0
            for e in part:
                d = e.digest()
                if d in fresh:
                    fresh.discard(d)  # a later copy, in this part or another, is a duplicate
                    applied += 1
                    n_late += d in late
                else:
                    dup += 1
            out.append(Applied(applied, dup, n_late, writes if i == 0 else 0))
        return out

    def _apply_customer(self, customer: str, events: Sequence[Event], meters: Sequence[Meter]) -> _Folded:
        from google.api_core.exceptions import AlreadyExists, Conflict, NotFound

        cfg, now, db = self.deps.settings(), self.deps.clock(), self.deps.db()
        cal_ref = self._col(CALENDARS).document(customer)
        cal = _calendar(cal_snap := cal_ref.get())
        schedule = cal.schedule if cal else DEFAULT_SCHEDULE
        placed = [(e, e.digest(), period_key(schedule.period_at(e.timestamp))) for e in events]
        shards = sorted({shard_of(d, cfg.shards) for _, d, _ in placed})
        id_refs = {s: self._col(IDS).document(f"{customer}~{s}") for s in shards}
        tot_keys = sorted({(pk, shard_of(d, cfg.shards)) for _, d, pk in placed})
        tot_refs = {k: self._col(TOTALS).document(f"{customer}~{k[0]}~{k[1]}") for k in tot_keys}
        snaps = {s.reference.path: s for s in db.get_all([*id_refs.values(), *tot_refs.values()])}
        id_docs = {s: snaps[r.path] for s, r in id_refs.items()}
        seen = self._seen(customer, id_docs, now)
        fresh: dict[int, list[bytes]] = {}
        by_total: dict[tuple[str, int], list[Event]] = {}
        for e, d, pk in placed:
            if d in seen:
                continue
            seen.add(d)
            s = shard_of(d, cfg.shards)
            fresh.setdefault(s, []).append(d)
            by_total.setdefault((pk, s), []).append(e)
        if not fresh:
            return _Folded()
        batch = db.batch()
        writes = sum(
            self._write_ids(batch, customer, s, ref=id_refs[s], snap=id_docs[s], new=new, now=now)
            for s, new in fresh.items()
        )
        late_keys: set[str] = set()
        late: set[bytes] = set()
        for (pk, s), evs in by_total.items():
            ref = tot_refs[(pk, s)]
            snap = snaps[ref.path]
            doc = (snap.to_dict() or {}) if snap.exists else {}
            fields = {
                "partials": totals_to_doc(fold(meters, evs, totals_from_doc(doc.get("partials")))),
                "updated_at": now,
            }
            if doc.get("closed_at") is not None:
                late_keys.add(pk)
                late.update(e.digest() for e in evs)
            if snap.exists:
                batch.update(ref, fields, option=precondition(snap.update_time))
            else:
                batch.create(ref, {**fields, "customer": customer, "period": pk, "shard": s, "closed_at": None})
            writes += 1
        if late_keys:  # the close that marked them reads the calendar: this write conflicts with it
            if cal is None:
                raise Stale  # a closed period always has a calendar: it was written since our read
            fields = {"late": sorted(set(cal.late) | late_keys), "late_seq": cal.late_seq + 1}
            batch.update(cal_ref, fields, option=precondition(cal_snap.update_time))
            writes += 1
        try:
            batch.commit()
        except (AlreadyExists, Conflict, NotFound):
            raise Stale from None  # created or deleted since the read: decide again
        return _Folded(frozenset(d for v in fresh.values() for d in v), frozenset(late), writes)

    def _seen(self, customer: str, id_docs: dict[int, Any], now: dt.datetime) -> set[bytes]:
        """Every digest already applied to these shards: the current blobs and their live full pages."""
        pages = [
            self._col(IDS).document(f"{customer}~{s}~p{p['n']}")
            for s, snap in id_docs.items()
            if snap.exists
            for p in (snap.to_dict() or {}).get("pages", [])
            if p["expire_at"] > now
        ]
        seen: set[bytes] = set()
        for snap in [*id_docs.values(), *(self.deps.db().get_all(pages) if pages else [])]:
            if snap.exists:
                seen.update(_split((snap.to_dict() or {}).get("ids") or b""))
        return seen

    def _write_ids(
        self, batch: Any, customer: str, s: int, *, ref: Any, snap: Any, new: list[bytes], now: dt.datetime
    ) -> int:
        """Append ``new`` digests to the shard's blob (a full blob becomes a page first); the writes it took."""
        cfg = self.deps.settings()
        doc = (snap.to_dict() or {}) if snap.exists else {}
        current = bytes(doc.get("ids") or b"")
        live = [p for p in doc.get("pages", []) if p["expire_at"] > now]
        n, writes = int(doc.get("next_page", 0)), 1
        blob = current + b"".join(sorted(new))
        if len(current) // DIGEST_BYTES >= cfg.page_ids:  # the page is full: keep it aside, start a new one
            expire = now + dt.timedelta(days=cfg.retention_days)
            batch.create(self._col(IDS).document(f"{customer}~{s}~p{n}"), {"ids": current, "expire_at": expire})
            live.append({"n": n, "expire_at": expire})
            blob, n, writes = b"".join(sorted(new)), n + 1, 2
        fields = {"ids": blob, "pages": live, "next_page": n, "updated_at": now}
        if snap.exists:
            batch.update(ref, fields, option=precondition(snap.update_time))
        else:
            batch.create(ref, {**fields, "customer": customer, "shard": s})
        return writes

    # -- reading ------------------------------------------------------------------------------------
    def period_totals(self, customer: str, period: Period) -> Totals:
        snaps = self.deps.db().get_all(self._total_refs(customer, period_key(period)))
        return merge_totals(totals_from_doc((s.to_dict() or {}).get("partials")) for s in snaps if s.exists)

    def _total_refs(self, customer: str, pk: str) -> list[Any]:
        return [self._col(TOTALS).document(f"{customer}~{pk}~{s}") for s in range(self.deps.settings().shards)]

    def current_usage(self, customer: str, at: dt.datetime | None = None) -> dict[str, Any]:
        """Running totals and the estimated amount of the period open at ``at`` (rated like the close rates it).

        Per line and in total: ``threshold_billed``, what threshold invoices already billed of the period, and
        ``remaining``, what the period's final invoice will bill for it (the full amount less the credit the close
        gives, :func:`threshold_credit`). After the subscription's final close: ``ended_at`` and ``late_unbilled``,
        the late usage counted since but billed by no invoice (see the README).
        """
        cal = self.calendar(customer)
        if cal is None:
            raise MeteringError(404, "no_metered_subscription", customer)
        period = cal.schedule.period_at(at or self.deps.clock())
        pk = period_key(period)
        totals = self.period_totals(customer, period)
        meters = {it.meter: self.meter(it.meter) for it in cal.items}
        lines = usage_lines(cal, meters, totals)
        early = self._threshold_lines(customer, pk)
        currency = cal.items[0].price.currency
        items, billed_total, remaining_total = [], 0, 0
        for (meter_id, group), r in lines:
            billed = int(early.get(f"{r.price_id}|{meter_id}|{group}", {}).get("amount", 0))
            remaining = r.amount.amount - threshold_credit(billed, r.amount.amount)
            billed_total, remaining_total = billed_total + billed, remaining_total + remaining
            items.append(
                {
                    "meter": meter_id,
                    "group": group,
                    "price": r.price_id,
                    "quantity": f"{r.quantity:f}",
                    "model": r.model,
                    "tiers": [t.model_dump(mode="json") for t in r.tiers],
                    "amount": r.amount.as_dict(),
                    "threshold_billed": Money(billed, currency).as_dict(),
                    "remaining": Money(remaining, currency).as_dict(),
                }
            )
        amount = sum((r.amount for _, r in lines), Money.zero(currency))
        out: dict[str, Any] = {
            "object": "usage",
            "customer": customer,
            "subscription_id": cal.subscription_id,
            "period_start": _iso(period.start),
            "period_end": _iso(period.end),
            "items": items,
            "estimated_amount": amount.as_dict(),
            "threshold_billed": Money(billed_total, currency).as_dict(),
            "remaining_amount": Money(remaining_total, currency).as_dict(),
        }
        if cal.ended_at is not None:
            out |= {"ended_at": _iso(cal.ended_at), "late_unbilled": self.late_unbilled(cal, meters)}
        return out

    def _threshold_lines(self, customer: str, pk: str) -> dict[str, Any]:
        """What threshold invoices billed of the period so far, per line (none once the period is closed)."""
        snap = self._col(THRESHOLDS).document(f"{customer}~{pk}").get()
        doc = (snap.to_dict() or {}) if snap.exists else {}
        return {} if doc.get("closed_at") is not None else dict(doc.get("lines", {}))

    def late_unbilled(self, cal: Calendar, meters: dict[str, Meter]) -> list[dict[str, Any]]:
        """The adjustments a close would bill for the late periods of an ended subscription (read only)."""
        out = []
        for key in cal.late:
            totals = merge_totals(
                totals_from_doc((s.to_dict() or {}).get("partials"))
                for s in self.deps.db().get_all(self._total_refs(cal.customer, key))
                if s.exists
            )
            billed_snap = self._col(BILLED).document(f"{cal.customer}~{key}").get()
            billed = (billed_snap.to_dict() or {}).get("lines", {}) if billed_snap.exists else {}
            p = cal.schedule.period_at(parse_period_key(key))
            lines, _ = _bill(cal, meters, totals, billed, p)
            out.append(
                {
                    "period_start": _iso(p.start),
                    "lines": [{"description": ln.description, "amount": ln.amount.as_dict()} for ln in lines],
                    "amount": sum((ln.amount for ln in lines), Money.zero(cal.items[0].price.currency)).as_dict(),
                }
            )
        return out

    # -- closing a period -----------------------------------------------------------------------------
    def close(
        self,
        customer: str,
        period: Period,
        request_id: str,
        *,
        now: dt.datetime | None = None,
        ended_at: dt.datetime | None = None,
        earlier: Sequence[Period] = (),
    ) -> tuple[ChargeLine, ...]:
        """The usage lines of ``period`` plus adjustments for late events of earlier closed periods, once.

        Refused (409 ``grace_running``) before ``period.end + grace``. A repeated close with the same
        ``request_id`` answers the same lines; the totals documents of ``period`` are marked closed in the same
        commit, so an event folded afterwards is late and lands on the next close as an adjustment, exactly once.

        The final close of an ended subscription (``ended_at``, :mod:`shared.metering.billing`) may run before the
        period's natural end: from ``ended_at + grace`` (a cancel mid-period). ``earlier`` periods not closed yet
        (left while the subscription was unpaid) are closed with it, and the calendar records the end.
        """
        cfg = self.deps.settings()
        now = now or self.deps.clock()
        end = min(period.end, ended_at) if ended_at is not None else period.end
        if now < end + cfg.grace:
            raise MeteringError(409, "grace_running", f"usage of the period can be closed from {_iso(end + cfg.grace)}")
        periods = sorted({period_key(p) for p in (*earlier, period)})
        return retry_on_contention(
            lambda: self._close(customer, periods, request_id, ended_at), what=f"usage close {customer}"
        )

    def _close(
        self, customer: str, fresh: list[str], request_id: str, ended_at: dt.datetime | None
    ) -> tuple[ChargeLine, ...]:
        from google.api_core.exceptions import AlreadyExists, Conflict, NotFound

        db, now = self.deps.db(), self.deps.clock()
        close_ref = self._col(CLOSES).document(f"{customer}~{request_id}")
        cal_ref = self._col(CALENDARS).document(customer)
        cal_snap, close_snap = cal_ref.get(), close_ref.get()
        if close_snap.exists:
            return tuple(ChargeLine.model_validate(x) for x in (close_snap.to_dict() or {}).get("lines", []))
        cal = _calendar(cal_snap)
        if cal is None:
            raise MeteringError(404, "no_metered_subscription", customer)
        meters = {it.meter: self.meter(it.meter) for it in cal.items}
        pk = fresh[-1]
        batch = db.batch()
        lines: list[ChargeLine] = []
        for key in sorted({k for k in cal.late if k < pk} | set(fresh)):
            refs = self._total_refs(customer, key)
            snaps = list(db.get_all(refs))
            totals = merge_totals(totals_from_doc((s.to_dict() or {}).get("partials")) for s in snaps if s.exists)
            billed_ref = self._col(BILLED).document(f"{customer}~{key}")
            billed_snap = billed_ref.get()
            billed = (billed_snap.to_dict() or {}).get("lines", {}) if billed_snap.exists else {}
            new, now_billed = _bill(cal, meters, totals, billed, cal.schedule.period_at(parse_period_key(key)))
            lines += new
            doc = {"customer": customer, "period": key, "lines": {**billed, **now_billed}, "updated_at": now}
            batch.set(billed_ref, doc)
            if key in fresh:
                # The usage billed early by threshold invoices is credited, once (shared.metering.thresholds), and
                # an event folded into these totals from now on is late (the aggregator reads closed_at).
                lines += self._credit_thresholds(batch, cal, customer, key, full=now_billed, now=now)
                for ref, snap in zip(refs, snaps, strict=True):
                    if snap.exists:
                        batch.update(ref, {"closed_at": now}, option=precondition(snap.update_time))
                    else:
                        shard = int(ref.id.rsplit("~", 1)[1])
                        empty = {"partials": [], "closed_at": now, "updated_at": now}
                        batch.create(ref, {"customer": customer, "period": key, "shard": shard, **empty})
        dumped = [x.model_dump(mode="json") for x in lines]
        batch.create(close_ref, {"customer": customer, "period": pk, "lines": dumped, "created_at": now})
        cal_fields: dict[str, Any] = {"late": [k for k in cal.late if k > pk]}
        if ended_at is not None:  # the final close: later events are counted and reported, never billed (README)
            cal_fields |= {"ended_at": ended_at, "final_request": request_id}
        batch.update(cal_ref, cal_fields, option=precondition(cal_snap.update_time))
        try:
            batch.commit()
        except (AlreadyExists, Conflict, NotFound):
            raise Stale from None
        return tuple(lines)

    def _credit_thresholds(
        self, batch: Any, cal: Calendar, customer: str, pk: str, *, full: dict[str, Any], now: dt.datetime
    ) -> list[ChargeLine]:
        """Credit lines for what threshold invoices billed of the period; the record is closed in the close's commit.

        Per line, the credit is what was billed early, capped at the line's full amount (a ``latest`` or ``max``
        meter is billed on its final value: never a negative usage total).
        """
        ref = self._col(THRESHOLDS).document(f"{customer}~{pk}")
        snap = ref.get()
        doc = (snap.to_dict() or {}) if snap.exists else {}
        if doc.get("closed_at") is not None:
            return []  # credited by the close that closed it (a final close catching up on a closed period)
        early: dict[str, Any] = doc.get("lines", {})
        p = cal.schedule.period_at(parse_period_key(pk))
        currency = cal.items[0].price.currency
        credits, credited = [], 0
        for k, billed in sorted(early.items()):
            amount = threshold_credit(int(billed["amount"]), int(full.get(k, {}).get("amount", 0)))
            if amount <= 0:
                continue
            price_id, meter_id, group = k.split("|", 2)
            price = next(i.price for i in cal.items if i.price.id == price_id)
            text = f"Usage already billed on threshold invoices {_usage_label(price, meter_id, group)}"
            credits.append(
                _usage_line(
                    price,
                    f"{text}: {billed['quantity']} units",
                    p,
                    kind=LineKind.PRORATION,
                    quantity=Decimal(1),
                    amount=Money(-amount, currency),
                )
            )
            credited += amount
        fields = {"closed_at": now, "credited": credited, "updated_at": now}
        if snap.exists:
            batch.update(ref, fields, option=precondition(snap.update_time))
        elif cal.threshold:  # no threshold invoice after the close
            batch.create(ref, {"customer": customer, "period": pk, "index": 0, "lines": {}, "invoices": [], **fields})
        return credits


def threshold_credit(early: int, full: int) -> int:
    """The credit of a line's threshold billing on the final invoice: what was billed early, capped at the line's
    full amount (a ``latest`` or ``max`` meter can fall: the usage total is never negative). The current usage API
    shows ``full - credit`` as what the close will bill, by this very function."""
    return max(min(early, max(full, 0)), 0)


def _bill(
    cal: Calendar, meters: dict[str, Meter], totals: Totals, billed: dict[str, Any], p: Period
) -> tuple[list[ChargeLine], dict[str, Any]]:
    """Lines for a period: its usage the first time, then the difference to what was billed (late events)."""
    lines, now_billed = [], {}
    for (meter_id, group), r in usage_lines(cal, meters, totals):
        k = f"{r.price_id}|{meter_id}|{group}"
        now_billed[k] = {"quantity": f"{r.quantity:f}", "amount": r.amount.amount}
        if not billed:
            lines.append(_line(cal, r, (meter_id, group), p, amount=r.amount, quantity=r.quantity, adjustment=None))
            continue
        before = billed.get(k, {"quantity": "0", "amount": 0})
        delta = r.amount.amount - int(before["amount"])
        if delta or Decimal(before["quantity"]) != r.quantity:
            units = max(r.quantity - Decimal(before["quantity"]), Decimal(0))
            amount = Money(delta, r.amount.currency)
            lines.append(
                _line(cal, r, (meter_id, group), p, amount=amount, quantity=units, adjustment=before["quantity"])
            )
    return lines, now_billed


DEFAULT_SCHEDULE = Schedule(Anchor(dt.datetime(2000, 1, 1), "UTC"), Cadence(Unit.MONTH))


def _meter(doc: dict[str, Any]) -> Meter:
    return Meter.model_validate({k: v for k, v in doc.items() if k != "created_at"})


def _calendar(snap: Any) -> Calendar | None:
    return Calendar.model_validate(snap.to_dict()) if snap.exists else None


def _split(blob: bytes) -> Iterable[bytes]:
    b = bytes(blob)
    return (b[i : i + 12] for i in range(0, len(b), 12))


def _iso(t: dt.datetime) -> str:
    return t.astimezone(dt.UTC).isoformat().replace("+00:00", "Z")


def usage_lines(cal: Calendar, meters: dict[str, Meter], totals: Totals) -> list[tuple[tuple[str, str], Rated]]:
    """Each metered item's quantity per group, rated: THE computation of both the estimate and the close."""
    out = []
    for it in cal.items:
        qs = quantities(meters[it.meter], totals) or {"": Decimal(0)}
        for group, q in qs.items():
            out.append(((it.meter, group), rate(it.price, q)))
    return out


def _line(
    cal: Calendar,
    r: Rated,
    key: tuple[str, str],
    p: Period,
    *,
    amount: Money,
    quantity: Decimal,
    adjustment: str | None,
) -> ChargeLine:
    price = next(i.price for i in cal.items if i.price.id == r.price_id)
    what, how = _usage_label(price, *key), r.describe()
    if adjustment is None:
        text = f"Usage {what}: {r.quantity:f} units, {how}"
    else:
        text = f"Late usage adjustment {what}: {adjustment} -> {r.quantity:f} units, {how}"
    return _usage_line(price, text, p, kind=LineKind.RECURRING, quantity=quantity, amount=amount)


def _usage_label(price: Price, meter_id: str, group: str) -> str:
    """How a usage line names what it bills: the product, the meter and the group."""
    return f"{price.nickname or price.product_id} ({meter_id}{f', {group}' if group else ''})"


def _usage_line(price: Price, text: str, p: Period, *, kind: LineKind, quantity: Decimal, amount: Money) -> ChargeLine:
    """A line of ``price`` over the usage period ``p`` (its tax category and behaviour go with it)."""
    return ChargeLine(
        description=text[:500],
        kind=kind,
        price_id=price.id,
        product_id=price.product_id,
        tax_category=price.tax_category,
        tax_behavior=price.tax_behavior,
        quantity=quantity,
        amount=amount,
        period_start=p.start,
        period_end=p.end,
    )
