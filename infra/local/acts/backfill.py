"""Act 80: a webhook Stripe sent never arrived; the backfill lists Stripe's events and recovers it, once.

A Stripe-shaped event list (``GET /v1/events``, newest first, ``starting_after`` pages) is served on
127.0.0.1 from this process. All its events but one are delivered as signed webhooks to the running
webhooks function; then one backfill run compares the list with the webhook archive and feeds the
missing event through the webhook pipeline (same record, same canonical event, marked
``backfilled``). A second run lists the same events again (the window's overlap) and recovers nothing.

Why in-process rather than a tick to the backfill function: the functions share one environment and
``STRIPE_API_BASE`` already points at the renewals act's PaymentIntents stub; the backfill runs here
against the same emulators with the same code (:class:`shared.backfill.runner.Backfill`).
"""

from __future__ import annotations

import json
import logging
import os
import time
import urllib.parse
from collections import Counter
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any
from unittest import mock

from infra.local.acts import DemoContext
from infra.local.acts.webhooks import tap
from infra.local.jsonstub import serve_json

if TYPE_CHECKING:
    from shared.backfill.config import BackfillSettings
    from shared.webhooks.service import WebhookService

ORDER = 80
TITLE = "Missed webhooks recovered by the backfill"

API_KEY = "sk_test_backfill_demo_not_a_secret"  # a demo value, obviously fake
ACCOUNT = "default"
TAP = "demo-backfill-tap"

# A POST of one signed delivery (body, headers) -> HTTP status.
Deliver = Callable[[bytes, Mapping[str, str]], int]


class EventList:
    """Stripe's ``GET /v1/events`` on 127.0.0.1: ``created[gte]``/``created[lt]``, ``limit``, ``starting_after``."""

    def __init__(self, events: Sequence[dict[str, Any]], api_key: str = API_KEY) -> None:
        self.events = sorted(events, key=lambda e: -int(e["created"]))
        self.requests = 0
        self._key = api_key
        self.server = serve_json(
            lambda _method, path, headers, _body: self.answer(path, headers.get("Authorization") or ""),
            "stripe-event-list",
            "GET",
        )

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    def answer(self, path: str, authorization: str) -> tuple[int, dict[str, Any]]:
        url = urllib.parse.urlsplit(path)
        if url.path != "/v1/events":
            return 404, {"error": {"type": "invalid_request_error", "message": f"no stub for {url.path}"}}
        if authorization != f"Bearer {self._key}":
            return 401, {"error": {"type": "invalid_request_error", "message": "invalid API key"}}
        self.requests += 1
        q = dict(urllib.parse.parse_qsl(url.query))
        lo, hi = int(q.get("created[gte]", 0)), int(q.get("created[lt]", 2**62))
        listed = [e for e in self.events if lo <= int(e["created"]) < hi]
        if "starting_after" in q:
            ids = [e["id"] for e in listed]
            listed = listed[ids.index(q["starting_after"]) + 1 :] if q["starting_after"] in ids else []
        limit = int(q.get("limit", 10))
        return 200, {"object": "list", "url": "/v1/events", "data": listed[:limit], "has_more": len(listed) > limit}

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def psp_events(run: str, now: int, n: int = 4) -> list[dict[str, Any]]:
    """n ``payment_intent.succeeded`` events, as Stripe lists them (and posts them to the webhook)."""
    out = []
    for i in range(n):
        amount = 1000 + 250 * i
        pi = {
            "id": f"pi_bf_{run}_{i}",
            "object": "payment_intent",
            "amount": amount,
            "amount_received": amount,
            "currency": "eur",
            "status": "succeeded",
            "metadata": {},
        }
        out.append(
            {
                "id": f"evt_bf_{run}_{i}",
                "object": "event",
                "type": "payment_intent.succeeded",
                "created": now - 600 + 60 * i,
                "livemode": False,
                "api_version": "2024-06-20",
                "data": {"object": pi},
            }
        )
    return out


def settings() -> BackfillSettings:
    """One account; the second run's window overlaps the first by an hour, so it lists the same events."""
    from shared.backfill.config import BackfillSettings

    return BackfillSettings(
        accounts=(("stripe", ACCOUNT),),
        lookback_s=3600,
        overlap_s=3600,
        delay_s=30,
        max_window_s=2 * 3600,
        page_size=2,  # two pages of two: the cursor is exercised too
        max_pages=20,
        lease_s=360,
    )


@dataclass(frozen=True, slots=True)
class Recovery:
    events: list[dict[str, Any]]  # what the PSP lists
    statuses: dict[str, int]  # event id -> webhook answer, for those delivered
    archived_before: dict[str, str]  # event id -> record state before the backfill (absent: never arrived)
    first: dict[str, int]  # counts of the first backfill run
    second: dict[str, int]  # counts of the second
    records: dict[str, dict[str, Any]]  # event id -> webhook archive record after both runs

    @property
    def dropped(self) -> list[str]:
        return [e["id"] for e in self.events if e["id"] not in self.statuses]


def _records(ids: Sequence[str]) -> dict[str, dict[str, Any]]:
    from shared import clients
    from shared.webhooks.store import COLLECTION, record_id

    db = clients.firestore()
    refs = {eid: db.collection(COLLECTION).document(record_id("stripe", ACCOUNT, eid)) for eid in ids}
    by_doc = {s.id: s.to_dict() or {} for s in db.get_all(list(refs.values())) if s.exists}
    return {eid: by_doc[ref.id] for eid, ref in refs.items() if ref.id in by_doc}


@contextmanager
def _pointed_at(stub: EventList) -> Iterator[None]:
    """The backfill reads its credentials and API base per run from the environment."""
    with mock.patch.dict(os.environ, {"STRIPE_API_KEY": API_KEY, "STRIPE_API_BASE": stub.url}):
        yield


def recover(run: str, deliver: Deliver, secret: str, service: WebhookService, *, drop: int = 2) -> Recovery:
    """Deliver all the PSP's events but ``events[drop]``, then backfill twice; what happened."""
    from shared import clients
    from shared.backfill.runner import Backfill
    from shared.psp import signing

    events = psp_events(run, int(time.time()))
    statuses: dict[str, int] = {}
    for i, ev in enumerate(events):
        if i != drop:
            body = json.dumps(ev, separators=(",", ":")).encode()
            statuses[ev["id"]] = deliver(body, {"Stripe-Signature": signing.stripe_header(body, secret)})
    ids = [e["id"] for e in events]
    before = {eid: str(rec.get("state")) for eid, rec in _records(ids).items()}
    stub = EventList(events)
    bf = Backfill(service, db=clients.firestore)
    counts: list[dict[str, int]] = []
    try:
        with _pointed_at(stub):
            for _ in range(2):
                counts.append(bf.run_tick(settings())[f"stripe/{ACCOUNT}"])
                if service.finishes is not None:
                    service.finishes.flush()
    finally:
        stub.close()
    return Recovery(events, statuses, before, counts[0], counts[1], _records(ids))


def describe(r: Recovery, canonical: Sequence[Any]) -> list[str]:
    """The act's printout; ``canonical`` holds the parsed payment-events messages of these events."""
    lines = [f"  Stripe lists {len(r.events)} events (GET /v1/events, a stub on 127.0.0.1):"]
    for ev in r.events:
        pi = ev["data"]["object"]
        fate = f"webhook -> {r.statuses[ev['id']]}" if ev["id"] in r.statuses else "webhook lost on the way"
        lines.append(f"    {ev['id']:<20} {ev['type']:<26} {pi['amount']:>6} {pi['currency']}  {fate}")
    had = ", ".join(f"{eid} ({state})" for eid, state in sorted(r.archived_before.items())) or "nothing"
    lines.append(f"  the webhook archive had: {had}")
    if "received" in r.archived_before.values():
        lines.append("    (received: the webhook's final write follows its answer; a live lease, so not a gap)")
    for n, c in (("first", r.first), ("second", r.second)):
        lines.append(
            f"  backfill run ({n}): listed {c.get('listed', 0)} over {c.get('pages', 0)} page(s), "
            f"archived {c.get('archived', 0)}, recovered {c.get('gaps', 0)}"
        )
    for eid in r.dropped:
        rec = r.records.get(eid, {})
        lines.append(f"  recovered {eid}: state {rec.get('state')}, backfilled {rec.get('backfilled', False)}")
    per_fact = Counter(m.event.psp_event_id for m in canonical)
    lines.append(f"  canonical events on payment-events: {len(canonical)} for {len(per_fact)} facts")
    for m in sorted(canonical, key=lambda m: m.event.psp_event_id):
        ev = m.event
        lines.append(f"    {m.envelope.event_type:<18} {ev.psp_event_id:<20} {ev.psp_payment_id:<18} {ev.amount}")
    twice = sorted(k for k, v in per_fact.items() if v > 1)
    lines.append(f"  published more than once: {', '.join(twice) or 'none'}")
    return lines


def play(ctx: DemoContext) -> None:
    from infra.local.acts import webhooks as wh
    from shared import clients
    from shared.events import parse_message
    from shared.psp.registry import ADAPTERS
    from shared.webhooks.service import WebhookService

    base = ctx.stack.function_urls["webhooks"]
    sub, path = tap(ctx.stack.project, TAP)

    def deliver(body: bytes, headers: Mapping[str, str]) -> int:
        return wh.post(base + "/stripe", body, dict(headers))[0]

    run = f"{int(time.time()) % 100000:05d}"
    service = WebhookService(adapters=ADAPTERS, db=clients.firestore)
    logging.disable(logging.WARNING)  # the in-process run's log lines (SDK requests, gap warnings) are below
    try:
        r = recover(run, deliver, wh.STRIPE_SECRET, service)
    finally:
        logging.disable(logging.NOTSET)
    ids = {e["id"] for e in r.events}
    messages = [parse_message(m.data, dict(m.attributes), m.message_id) for m in wh.pull_all(sub, path, len(ids))]
    canonical = [m for m in messages if getattr(m.event, "psp_event_id", None) in ids]
    for line in describe(r, canonical):
        ctx.say(line)
    ctx.facts["backfill"] = r
