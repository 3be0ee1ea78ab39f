"""Several allocator instances taking turns at one series' lease, on the Firestore emulator."""

from __future__ import annotations

import datetime
import threading
import time
from typing import Any

import pytest

from shared import clients
from shared.invoicing.allocator import QUEUE, TURNS, NumberingPending
from shared.invoicing.allocator import SERIES as SERIES_COLL
from shared.invoicing.repository import INVOICES, invoice_id_for
from shared.invoicing.service import InvoiceService
from shared.ops.invoices import audit_series
from tests.fixtures.invoices import drafts, due_msg, renewal
from tests.integration.invoices.conftest import Env

SERIES = "acme-fr.INV.2026"


def _issue(svc: InvoiceService, prefix: str, n: int, errors: list[BaseException]) -> None:
    """One request thread of an instance: issue ``n`` invoices one after the other (a sustained load)."""
    for i in range(n):
        r = renewal(f"{prefix}_{i}:2026-03")
        try:
            svc.issuing.issue_numbered(r, invoice_id_for(r.request_id))
        except BaseException as exc:  # collected and asserted by the test
            errors.append(exc)


def _load(instances: list[InvoiceService], threads: int, each: int, tag: str = "t") -> list[BaseException]:
    errors: list[BaseException] = []
    jobs = [
        threading.Thread(target=_issue, args=(svc, f"{tag}{k}_{j}", each, errors))
        for k, svc in enumerate(instances)
        for j in range(threads)
    ]
    for t in jobs:
        t.start()
    for t in jobs:
        t.join(timeout=120)
    return errors


def _stored() -> list[Any]:
    return list(clients.firestore().collection(INVOICES).stream())


def test_instances_under_a_sustained_load_each_create_their_own_invoices_with_their_numbers(env: Env) -> None:
    """Four instances, eight request threads each, one series: every instance gets turns at the lease and
    creates its invoices numbered (one write each: none stored queued for another instance to number)."""
    instances = [env.service(spill_s=60.0) for _ in range(4)]  # no spill, however slow the machine
    assert _load(instances, threads=8, each=5) == []
    docs = _stored()
    assert sorted(int((s.to_dict() or {})["seq"]) for s in docs) == list(range(1, 161))
    assert all(s.create_time == s.update_time for s in docs), "an invoice was written before its number"
    assert not any(QUEUE in (s.to_dict() or {}) for s in docs)
    assert all(i.alloc.stats.counter_writes > 0 for i in instances), "an instance never had a turn"
    assert [i.alloc.stats.spilled for i in instances] == [0, 0, 0, 0]
    assert sum(i.alloc.stats.turn_writes for i in instances) > 0, "no instance ever waited behind another's lease"
    # each instance's last request took it out of the turns before returning (an idle instance may be stopped)
    series = clients.firestore().collection(SERIES_COLL).document(SERIES).get().to_dict() or {}
    assert series.get(TURNS) == []
    assert sum(i.alloc.stats.numbered for i in instances) == 160
    assert audit_series(clients.firestore(), SERIES).ok


def test_a_lease_passed_to_a_dead_instance_runs_out_and_it_is_dropped_from_the_turns(env: Env) -> None:
    """The previous holder passed the lease to an instance that died before its turn: the others wait the
    lease out, the first to take it over drops the dead one from the turns, and the numbers stay gapless."""
    db = clients.firestore()
    until = datetime.datetime.now(datetime.UTC) + datetime.timedelta(seconds=1)
    series = db.collection(SERIES_COLL).document(SERIES)
    series.set({"counter": 0, "commits": 1, "lease_owner": "dead", "lease_until": until, TURNS: ["dead"]})
    a, b = env.service(lease_s=1.0, spill_s=60.0), env.service(lease_s=1.0, spill_s=60.0)
    assert _load([a, b], threads=3, each=2) == []
    docs = _stored()
    assert sorted(int((s.to_dict() or {})["seq"]) for s in docs) == list(range(1, 13))
    assert all(s.create_time == s.update_time for s in docs)
    assert "dead" not in ((series.get().to_dict() or {}).get(TURNS) or [])
    assert audit_series(db, SERIES).ok


def test_an_instance_killed_in_the_ring_holds_nothing_up_for_long_and_its_redeliveries_get_their_numbers(
    env: Env,
) -> None:
    """One of three instances dies right after one of its numbering commits (its waiting requests fail, as a
    killed process's deliveries would); the others go on (its lease, if passed to it later, runs out), and the
    redelivery of everything it was given numbers what it had not committed, once."""

    dead = threading.Event()

    def die(series_id: str, n: int) -> None:
        dead.set()
        raise RuntimeError("instance killed after its commit")

    dying = env.service(lease_s=1.0, spill_s=60.0, after_batch=die)
    real_wait = dying.alloc._wait

    def wait_unless_dead(*args: Any) -> Any:  # a dead process takes no more requests (no allocator restarts)
        if dead.is_set():
            raise RuntimeError("instance killed")
        return real_wait(*args)

    dying.alloc._wait = wait_unless_dead  # type: ignore[method-assign,assignment]
    healthy = [env.service(lease_s=1.0, spill_s=60.0) for _ in range(2)]
    errors = _load([dying, *healthy], threads=4, each=3, tag="k")
    assert errors
    assert all("killed" in str(e) for e in errors)
    for j in range(4):  # Pub/Sub redelivers the dead instance's requests to a live one
        assert _redeliver(healthy[0], f"k0_{j}", 3) == []
    docs = _stored()
    assert sorted(int((s.to_dict() or {})["seq"]) for s in docs) == list(range(1, 37))
    assert all(s.create_time == s.update_time for s in docs)
    assert audit_series(clients.firestore(), SERIES).ok


def _redeliver(svc: InvoiceService, prefix: str, n: int) -> list[BaseException]:
    errors: list[BaseException] = []
    _issue(svc, prefix, n, errors)
    return errors


def test_behind_a_lease_that_is_never_passed_new_invoices_are_stored_queued_after_spill_s(env: Env) -> None:
    """A holder that keeps the lease (hung, or an allocator that does not take turns) gets our new invoices
    stored queued after ``spill_s``, so its queue query can number them; then a takeover numbers them."""
    db = clients.firestore()
    series = db.collection(SERIES_COLL).document(SERIES)
    until = datetime.datetime.now(datetime.UTC) + datetime.timedelta(seconds=60)
    series.set({"counter": 0, "lease_owner": "old", "lease_until": until})
    svc = env.service(spill_s=0.2, lease_s=1.0)
    errors: list[BaseException] = []
    load = threading.Thread(target=lambda: errors.extend(_load([svc], threads=2, each=1, tag="s")))
    load.start()
    deadline = time.monotonic() + 60  # the lease runs out once both are stored queued (however slow the machine)
    while svc.alloc.stats.spilled < 2 and time.monotonic() < deadline:
        time.sleep(0.02)
    series.update({"lease_until": datetime.datetime.now(datetime.UTC)})
    load.join(timeout=120)
    assert errors == []
    docs = _stored()
    assert sorted(int((s.to_dict() or {})["seq"]) for s in docs) == [1, 2]
    assert svc.alloc.stats.spilled == 2
    assert all(s.create_time != s.update_time for s in docs)  # stored queued, then numbered by an update


def test_an_instance_whose_requests_are_done_leaves_the_turns_before_it_may_be_stopped(env: Env) -> None:
    """Once an instance has no request in flight its CPU may be throttled or its process stopped: its last
    request takes it out of the turns before returning, so a lease is never passed to it afterwards (here
    it would block the series for a minute and the other instance's requests would give up)."""
    quick = env.service(lease_s=60.0, handoff_s=60.0, spill_s=60.0)
    busy = env.service(lease_s=60.0, handoff_s=60.0, spill_s=60.0, wait_s=15.0)
    stopped = threading.Event()

    def frozen(*_a: Any) -> bool:  # a stopped instance never takes a turn again
        stopped.wait()
        return True

    errors: list[BaseException] = []
    quick_jobs = [threading.Thread(target=_issue, args=(quick, f"q_{j}", 3, errors)) for j in range(4)]
    busy_jobs = [threading.Thread(target=_issue, args=(busy, f"b_{j}", 10, errors)) for j in range(4)]
    for t in quick_jobs + busy_jobs:
        t.start()
    for t in quick_jobs:
        t.join(timeout=120)
    quick.alloc._lead = frozen  # type: ignore[method-assign,assignment]
    try:
        for t in busy_jobs:
            t.join(timeout=120)
    finally:
        stopped.set()
    assert errors == []
    assert sorted(int((s.to_dict() or {})["seq"]) for s in _stored()) == list(range(1, 53))


def test_two_instances_in_the_turns_behind_an_expired_lease_get_one_commit_from_whoever_takes_it_over(
    env: Env,
) -> None:
    """Both instances wait behind a hung lease and join the turns before it runs out. The one that takes it
    over numbers both stored drafts in ONE commit and releases the lease instead of passing it: passed, the
    other would have to write the series document with nothing left to number. The other learns its number
    from that commit (no invoice read: rechecks are pushed out of the way)."""
    db = clients.firestore()
    series = db.collection(SERIES_COLL).document(SERIES)
    until = datetime.datetime.now(datetime.UTC) + datetime.timedelta(seconds=60)
    series.set({"counter": 0, "commits": 1, "lease_owner": "hung", "lease_until": until})
    a, b = env.service(recheck_s=600.0), env.service(recheck_s=600.0)
    [ia], [ib] = drafts(a, "turn_a", 1), drafts(b, "turn_b", 1)
    got: dict[str, dict[str, Any]] = {}
    threads = [threading.Thread(target=lambda s=s, i=i: got.setdefault(i, s.number(i))) for s, i in ((a, ia), (b, ib))]
    for t in threads:
        t.start()
    deadline = time.monotonic() + 60
    while len((series.get().to_dict() or {}).get(TURNS) or []) < 2 and time.monotonic() < deadline:
        time.sleep(0.02)  # until both wait in the turns (a condition, not a timing assertion)
    assert sorted((series.get().to_dict() or {}).get(TURNS) or []) == sorted([a.alloc.instance_id, b.alloc.instance_id])
    series.update({"lease_until": datetime.datetime.now(datetime.UTC)})
    for t in threads:
        t.join(timeout=60)
    assert sorted(d["seq"] for d in got.values()) == [1, 2]
    assert (a.alloc.stats.counter_writes > 0) != (b.alloc.stats.counter_writes > 0)  # exactly one wrote the counter
    assert a.alloc.stats.batches + b.alloc.stats.batches == 1
    assert a.alloc.stats.docs_read == b.alloc.stats.docs_read == 0
    after = series.get().to_dict() or {}
    assert (after.get("lease_owner"), after.get(TURNS)) == (None, [])  # released, and both left the turns
    assert audit_series(db, SERIES).ok


def test_a_request_that_gives_up_on_a_new_invoice_leaves_it_stored_queued(env: Env) -> None:
    """Its allocator thread has not stored the invoice queued yet (here it never would: ``spill_s`` is long;
    under load it may simply be late): the request stores it queued before it nacks, so a leader's queue query
    can number it and the redelivery gets that number, however slow the allocator thread was."""
    db = clients.firestore()
    series = db.collection(SERIES_COLL).document(SERIES)
    until = datetime.datetime.now(datetime.UTC) + datetime.timedelta(seconds=60)
    series.set({"counter": 0, "lease_owner": "hung", "lease_until": until})
    impatient = env.service(wait_s=0.5, spill_s=60.0)
    r = renewal("gave_up:2026-03")
    with pytest.raises(NumberingPending):
        impatient.on_renewal_due(due_msg(r))
    stored = clients.firestore().collection(INVOICES).document(invoice_id_for(r.request_id)).get()
    assert stored.exists
    assert ((stored.to_dict() or {}).get(QUEUE), (stored.to_dict() or {}).get("seq")) == (SERIES, None)
    assert impatient.alloc.stats.spilled == 1
    series.update({"lease_until": datetime.datetime.now(datetime.UTC)})
    assert impatient.on_renewal_due(due_msg(r))["number"] == "INV-2026-000001"
    assert QUEUE not in (
        clients.firestore().collection(INVOICES).document(invoice_id_for(r.request_id)).get().to_dict() or {}
    )
    assert audit_series(db, SERIES).ok
