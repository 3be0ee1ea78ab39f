"""One backfill tick: for each configured (psp, account), list the PSP's recent events and feed every
one our archive lacks through the webhook pipeline.

Per account and tick (see :mod:`shared.backfill.state` for the stored progress):

1. Take the account's lease; another run holding it means there is nothing to do here.
2. The window: the one in progress (with its cursor), else ``[watermark - overlap, now - delay)``
   (first run: ``now - lookback``), never earlier than ``now - max_window``. ``delay`` leaves the
   youngest events to their webhook; ``overlap`` catches events a PSP lists a little late.
3. Up to ``max_pages`` pages: compare each page's event ids with ``webhook_events`` (one batched read),
   and ingest the missing ones (or ones archived but never published whose lease ran out) through
   :meth:`shared.webhooks.service.WebhookService.ingest`: the same record, canonical event and
   publish as a webhook, marked ``backfilled``. Then save the cursor; the window's last page moves the
   watermark to the window's end.

Every recovered event writes one ``webhook.gap_detected`` log line (labels ``psp``, ``account``;
``outcome``): the log-based metric ``webhook_gap_detected`` counts them per PSP and account. A PSP
API failure (or Firestore/Pub/Sub) keeps the saved cursor, is logged as ``webhook.backfill_failed``
and fails the tick after the other accounts ran, so Pub/Sub redelivers it and it resumes there.
"""

from __future__ import annotations

import datetime as dt
from collections import Counter
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from shared.backfill import state
from shared.backfill.base import EventSource, SourceError, Window
from shared.backfill.config import BackfillSettings, SourceSettings, backfill_settings, source_settings
from shared.backfill.registry import SOURCES
from shared.log import bind, get_logger
from shared.psp.base import Notification, PspConfig
from shared.webhooks import store
from shared.webhooks.service import Outage, WebhookService

log = get_logger(__name__)

RECOVERED = ("published", "ignored", "rejected")


class BackfillFailed(Exception):
    """At least one account could not be backfilled: the tick is nacked and retried."""


def window_for(progress: state.Progress, now: dt.datetime, cfg: BackfillSettings) -> Window | None:
    if progress.window is not None:
        return progress.window
    end = now - dt.timedelta(seconds=cfg.delay_s)
    if progress.watermark is None:
        start = now - dt.timedelta(seconds=cfg.lookback_s)
    else:
        start = progress.watermark - dt.timedelta(seconds=cfg.overlap_s)
    start = max(start, now - dt.timedelta(seconds=cfg.max_window_s))
    return Window(start, end) if start < end else None


def _missing(doc: Mapping[str, Any] | None, now: dt.datetime) -> bool:
    """No record, or one archived but never finished whose lease ran out (its PSP may have given up)."""
    if doc is None:
        return True
    lease = doc.get("lease_until")
    return doc.get("state") == store.RECEIVED and not (isinstance(lease, dt.datetime) and lease > now)


@dataclass
class Backfill:
    service: WebhookService
    db: Callable[[], Any]
    sources: Mapping[str, EventSource] = field(default_factory=lambda: dict(SOURCES))
    clock: Callable[[], dt.datetime] = lambda: dt.datetime.now(dt.UTC)

    def run_tick(self, cfg: BackfillSettings | None = None) -> dict[str, dict[str, int]]:
        """Every configured account once; raises :class:`BackfillFailed` after all ran if any failed."""
        cfg = cfg or backfill_settings()
        results: dict[str, dict[str, int]] = {}
        failed: list[str] = []
        for psp, account in cfg.accounts:
            with bind(psp=psp, account=account):
                try:
                    results[f"{psp}/{account}"] = self.run_account(psp, account, cfg)
                except (SourceError, Outage, state.LeaseLost) as exc:
                    log.error(
                        "backfill failed; the tick is retried from the saved cursor",
                        extra={"event": "webhook.backfill_failed", "error": f"{type(exc).__name__}: {exc}"[:500]},
                    )
                    failed.append(f"{psp}/{account}")
        if failed:
            raise BackfillFailed(f"backfill failed for {', '.join(failed)}")
        return results

    def run_account(self, psp: str, account: str, cfg: BackfillSettings) -> dict[str, int]:
        source = self.sources[psp]
        settings = source_settings(psp, account)
        if settings is None:
            raise SourceError(f"{psp}/{account}: API credentials are not configured")
        now = self.clock()
        run = state.acquire(self.db(), psp, account, now, cfg.lease_s)
        if run is None:
            log.info("backfill of this account is running elsewhere")
            return {"skipped": 1}
        window = window_for(run.progress, now, cfg)
        counts: Counter[str] = Counter()
        if window is None:
            state.save(run, {"last_run_at": now}, release=True)
            return dict(counts)
        cursor = run.progress.cursor
        try:
            for _ in range(cfg.max_pages):
                page = source.page(settings, window, cursor, cfg.page_size)
                counts["pages"] += 1
                counts.update(self.reconcile(source, settings, page.notes))
                cursor = page.cursor
                if cursor is None:
                    break
                state.save(run, {"window_start": window.start, "window_end": window.end, "cursor": cursor})
        except Exception as exc:
            try:
                state.save(run, {"last_error": f"{type(exc).__name__}: {exc}"[:500], "last_run_at": now}, release=True)
            except Exception:  # noqa: S110 - the lease then simply runs out; the original error matters
                pass
            raise
        done = cursor is None
        final: dict[str, Any] = {"last_run_at": now, "last_error": None}
        if done:
            final.update(watermark=window.end, window_start=None, window_end=None, cursor=None)
        state.save(run, final, release=True)
        summary = {
            "event": "webhook.backfill",
            "window_start": window.start.isoformat(),
            "window_end": window.end.isoformat(),
            "caught_up": done,
            **{k: counts[k] for k in ("pages", "listed", "gaps")},
        }
        log.info("backfill run", extra=summary)
        return dict(counts)

    def reconcile(self, source: EventSource, settings: SourceSettings, notes: Iterable[Notification]) -> Counter[str]:
        """Ingest the notes our archive lacks; count them by outcome. Safe to run concurrently: the
        webhook record's claim lets exactly one ingestion publish."""
        psp, account = settings.psp, settings.account
        unique = {n.event_id: n for n in notes}
        counts: Counter[str] = Counter(listed=len(unique))
        if not unique:
            return counts
        db = self.db()
        refs = {eid: db.collection(store.COLLECTION).document(store.record_id(psp, account, eid)) for eid in unique}
        try:
            found = {s.id: s.to_dict() for s in db.get_all(list(refs.values())) if s.exists}
        except Exception as exc:
            raise Outage(f"firestore: {type(exc).__name__}: {exc}") from exc
        now = self.clock()
        cfg = PspConfig(psp=psp, account=account, livemode=settings.livemode, values={})
        adapter = self.service.adapters[psp]
        for eid, note in unique.items():
            if not _missing(found.get(refs[eid].id), now):
                counts["archived"] += 1
                continue
            outcome = self.service.ingest(adapter, cfg, source.full(settings, note))
            counts[outcome] += 1
            if outcome in RECOVERED:
                counts["gaps"] += 1
                log.warning(
                    "missed webhook recovered by the backfill",
                    extra={
                        "event": "webhook.gap_detected",
                        "outcome": outcome,
                        "psp_event_id": eid,
                        "psp_event_type": note.event_type,
                    },
                )
        return counts


def default_backfill() -> Backfill:
    from shared import clients
    from shared.psp.registry import ADAPTERS

    return Backfill(WebhookService(adapters=ADAPTERS, db=clients.firestore), db=clients.firestore)
