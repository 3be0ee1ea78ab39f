"""Gapless numbering under concurrency, duplicates, reordering and crashes, on the real emulators."""

from __future__ import annotations

import datetime
import random
import threading
from collections import Counter
from typing import Any

import pytest

from shared import clients
from shared.domain.numbering import SeriesDef
from shared.invoicing import service as service_mod
from shared.invoicing import storage
from shared.invoicing.allocator import QUEUE, SERIES_DEF, NumberingPending, counter_commits
from shared.invoicing.allocator import SERIES as SERIES_COLL
from shared.invoicing.entities import seller
from shared.invoicing.repository import INVOICES, invoice_id_for
from shared.ops.invoices import audit_series
from shared.ops.invoices import main as ops_main
from tests.fixtures.invoices import drafts, due_msg, renewal
from tests.integration.invoices.conftest import Env

SERIES = "acme-fr.INV.2026"


def _run_threads(jobs: list[Any]) -> list[BaseException]:
    """Start every job at once (a barrier) on its own thread; return the exceptions raised."""
    errors: list[BaseException] = []
    barrier = threading.Barrier(len(jobs))

    def run(job: Any) -> None:
        barrier.wait()
        try:
            job()
        except BaseException as exc:  # collected and asserted by the caller
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(j,)) for j in jobs]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    return errors


def _numbers() -> dict[str, int]:
    return {s.id: int((s.to_dict() or {})["seq"]) for s in clients.firestore().collection(INVOICES).stream()}


def test_200_concurrent_finalizations_number_1_to_200(env: Env) -> None:
    """Numbering step of 200 finalizations at once, spread over four instances (their own allocators)."""
    services = [env.service() for _ in range(4)]
    ids = drafts(env.svc, "c", 200)
    errors = _run_threads([lambda i=i, inv=inv: services[i % 4].number(inv) for i, inv in enumerate(ids)])
    assert errors == []
    nums = _numbers()
    assert sorted(nums.values()) == list(range(1, 201))
    docs = [s.to_dict() or {} for s in clients.firestore().collection(INVOICES).stream()]
    assert {d["number"] for d in docs} == {f"INV-2026-{i:06d}" for i in range(1, 201)}
    assert {d["status"] for d in docs} == {"open"}
    counter, commits = counter_commits(clients.firestore(), SERIES)
    assert counter == 200
    assert commits < 200 / 4, f"{commits} counter writes for 200 invoices: group commit is not grouping"
    assert audit_series(clients.firestore(), SERIES).ok


def test_duplicate_and_reordered_deliveries_still_number_1_to_n(env: Env) -> None:
    services = [env.service() for _ in range(4)]
    ids = drafts(env.svc, "d", 200)
    rnd = random.Random(7)
    deliveries = [inv for inv in ids for _ in range(rnd.choice((2, 3)))]  # every one at least twice
    rnd.shuffle(deliveries)
    errors = _run_threads([lambda i=i, inv=inv: services[i % 4].number(inv) for i, inv in enumerate(deliveries)])
    assert errors == []
    first = _numbers()
    assert sorted(first.values()) == list(range(1, 201))
    late = list(ids)  # a late redelivery of everything, reordered again: nothing moves, nothing new
    rnd.shuffle(late)
    for inv in late:
        services[0].number(inv)
    assert _numbers() == first
    assert counter_commits(clients.firestore(), SERIES)[0] == 200


def test_full_finalization_under_concurrent_duplicates_publishes_once_per_invoice(env: Env) -> None:
    """The whole path (number, PDF, publish) with 12 invoices delivered 3 times each, at once, shuffled."""
    services = [env.service() for _ in range(2)]
    reqs = [renewal(f"full_{i}:2026-03") for i in range(12)]
    deliveries = reqs * 3
    random.Random(3).shuffle(deliveries)
    errors = _run_threads(
        [lambda i=i, r=r: services[i % 2].on_renewal_due(due_msg(r)) for i, r in enumerate(deliveries)]
    )
    assert errors == []
    assert sorted(_numbers().values()) == list(range(1, 13))
    docs = [s.to_dict() or {} for s in clients.firestore().collection(INVOICES).stream()]
    assert all(d["pdf_sha256"] and d["published"] == ["finalized"] for d in docs)
    ids = Counter(a["event_id"] for a, _ in env.events() if a["event_type"] == "invoice.finalized")
    assert len(ids) == 12  # a racing duplicate may publish again, always with the same event id


def test_crash_after_the_counter_commit_leaves_no_gap(env: Env, monkeypatch: pytest.MonkeyPatch) -> None:
    """The process dies right after its numbers are committed (before PDF and publish); Pub/Sub redelivers."""
    reqs = [renewal(f"crash_{i}:2026-03") for i in range(6)]
    env.svc.on_renewal_due(due_msg(reqs[0]))

    real_put = storage.put_once
    crashes = {"n": 0}

    def crash_once(name: str, data: bytes, content_type: str = "application/pdf", **kw: Any) -> Any:
        if crashes["n"] == 0:
            crashes["n"] += 1
            raise RuntimeError("simulated crash after the counter commit")
        return real_put(name, data, content_type, **kw)

    monkeypatch.setattr(storage, "put_once", crash_once)
    with pytest.raises(RuntimeError, match="simulated crash"):
        env.svc.on_renewal_due(due_msg(reqs[1]))
    crashed = env.doc(INVOICES, invoice_id_for(reqs[1].request_id))
    assert crashed["seq"] == 2
    assert not crashed.get("pdf_sha256")
    assert "finalized" not in crashed["published"]
    for r in reqs[2:]:
        env.svc.on_renewal_due(due_msg(r))
    env.svc.on_renewal_due(due_msg(reqs[1]))  # the redelivery
    again = env.doc(INVOICES, invoice_id_for(reqs[1].request_id))
    assert again["seq"] == 2
    assert again["pdf_sha256"]
    assert "finalized" in again["published"]
    assert sorted(_numbers().values()) == list(range(1, 7))
    assert audit_series(clients.firestore(), SERIES).ok


def test_allocator_crash_holding_the_lease_is_taken_over(env: Env) -> None:
    """An allocator dies after a committed batch while holding the lease; others wait it out, no gap."""

    def die(series_id: str, n: int) -> None:
        raise RuntimeError("allocator process died after its commit")

    crashing = env.service(batch_size=2, lease_s=1.0, after_batch=die)
    healthy = env.service(batch_size=2, lease_s=1.0)
    reqs = [renewal(f"lease_{i}:2026-03") for i in range(5)]
    for r in reqs:  # drafts (queued for their numbers as they are created), nobody allocating yet
        healthy.create_draft(r, invoice_id_for(r.request_id))
    with pytest.raises(RuntimeError, match="allocator process died"):
        crashing.finalize(invoice_id_for(reqs[0].request_id))
    assert counter_commits(clients.firestore(), SERIES)[0] == 2  # first batch committed, lease still held
    for r in reqs:
        healthy.on_renewal_due(due_msg(r))  # redeliveries, after the lease runs out
    assert sorted(_numbers().values()) == [1, 2, 3, 4, 5]
    assert audit_series(clients.firestore(), SERIES).ok


def test_gap_audit_reports_a_corrupted_series(env: Env, capsys: pytest.CaptureFixture[str]) -> None:
    reqs = [renewal(f"audit_{i}:2026-03") for i in range(6)]
    for r in reqs:
        env.svc.on_renewal_due(due_msg(r))
    assert ops_main(["audit", "--series", SERIES]) == 0
    assert "OK: gapless" in capsys.readouterr().out
    db = clients.firestore()
    by_seq = {v: k for k, v in _numbers().items()}
    db.collection(INVOICES).document(by_seq[3]).update({"seq": 5})  # 3 missing, 5 twice
    db.collection(INVOICES).document(by_seq[6]).delete()  # counter 6, no document 6
    assert ops_main(["audit", "--series", SERIES]) == 1
    out = capsys.readouterr().out
    assert "GAP 3" in out
    assert "GAP 6" in out
    assert "DUPLICATE 5 seen 2 times" in out
    report = audit_series(db, SERIES)
    assert report.gaps == ((3, 3), (6, 6))
    assert report.duplicates == ((5, 2),)


def test_a_request_that_waits_too_long_nacks_and_its_redelivery_gets_the_number(env: Env) -> None:
    """Another allocator holds the lease (say it hangs): the request gives up (Pub/Sub redelivers), the
    document stays queued, and once the lease is gone the redelivery numbers it."""
    db = clients.firestore()
    until = datetime.datetime.now(datetime.UTC) + datetime.timedelta(seconds=60)
    db.collection(SERIES_COLL).document(SERIES).set({"counter": 0, "lease_owner": "hung", "lease_until": until})
    impatient = env.service(wait_s=0.5)
    [iid] = drafts(impatient, "nack", 1)
    with pytest.raises(NumberingPending):
        impatient.number(iid)
    assert env.doc(INVOICES, iid)[QUEUE] == SERIES
    db.collection(SERIES_COLL).document(SERIES).update({"lease_until": datetime.datetime.now(datetime.UTC)})
    assert impatient.number(iid)["number"] == "INV-2026-000001"
    assert QUEUE not in env.doc(INVOICES, iid)


def test_a_draft_written_without_queue_fields_is_queued_once(env: Env) -> None:
    from google.cloud import firestore as fs

    [iid] = drafts(env.svc, "legacy", 1)
    clients.firestore().collection(INVOICES).document(iid).update({QUEUE: fs.DELETE_FIELD})
    assert env.svc.number(iid)["seq"] == 1
    doc = env.doc(INVOICES, iid)
    env.svc.alloc.enqueue(SERIES, service_mod._pending(f"{INVOICES}/{iid}", doc, "open"))  # late duplicate
    assert QUEUE not in env.doc(INVOICES, iid)
    [other] = drafts(env.svc, "after", 1)
    assert env.svc.number(other)["seq"] == 2


def test_numbers_are_printed_by_the_series_definition_the_draft_carries(
    env: Env, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The allocator does not rebuild the format: it asks the stored SeriesDef (here JP, never reset)."""
    printed: list[tuple[SeriesDef, int]] = []
    real_format = SeriesDef.format

    def spy(self: SeriesDef, seq: int, at: datetime.datetime) -> str:
        printed.append((self, seq))
        return real_format(self, seq, at)

    monkeypatch.setattr(SeriesDef, "format", spy)
    r = renewal("jp_1:2026-03", currency="JPY", amounts=(3000,), seller="acme-jp")
    iid = invoice_id_for(r.request_id)
    draft = env.svc.create_draft(r, iid)
    series = seller("acme-jp").series("invoice")
    assert draft[SERIES_DEF] == series.to_fields()
    assert "number_head" not in draft
    assert env.svc.number(iid)["number"] == "JP-000001"
    assert printed == [(series, 1)]
    assert env.doc(INVOICES, iid)["number"] == "JP-000001"


def test_an_instance_that_does_not_lead_gets_its_numbers_from_the_commit_without_reading(env: Env) -> None:
    """Two instances wait while a hung lease blocks the series; once it runs out one leads and numbers
    both documents; the other hears of the commit on the series document and reads no invoice."""
    db = clients.firestore()
    until = datetime.datetime.now(datetime.UTC) + datetime.timedelta(seconds=60)
    db.collection(SERIES_COLL).document(SERIES).set({"counter": 0, "lease_owner": "hung", "lease_until": until})
    a, b = env.service(), env.service()
    [ia], [ib] = drafts(a, "lead_a", 1), drafts(b, "lead_b", 1)
    got: dict[str, dict[str, Any]] = {}
    threads = [threading.Thread(target=lambda s=s, i=i: got.setdefault(i, s.number(i))) for s, i in ((a, ia), (b, ib))]
    for t in threads:
        t.start()
    db.collection(SERIES_COLL).document(SERIES).update({"lease_until": datetime.datetime.now(datetime.UTC)})
    for t in threads:
        t.join(timeout=60)
    assert sorted(d["seq"] for d in got.values()) == [1, 2]
    for iid, d in got.items():
        stored = env.doc(INVOICES, iid)
        assert {k: d[k] for k in ("seq", "number", "status", "finalized_at")} == {
            k: stored[k] for k in ("seq", "number", "status", "finalized_at")
        }
    assert (a.alloc.stats.counter_writes > 0) != (b.alloc.stats.counter_writes > 0)  # exactly one led
    assert a.alloc.stats.docs_read == b.alloc.stats.docs_read == 0


def test_a_renewal_due_that_crashes_before_its_numbering_commit_stores_nothing(env: Env) -> None:
    """The invoice is created in its numbering commit: until then the unacknowledged RenewalDue is its queue
    entry. A process dying before that commit leaves no document and no number; the redelivery issues it."""
    db = clients.firestore()
    dying = env.service()
    dying.on_renewal_due(due_msg(renewal("first:2026-03")))  # the series exists; the lease is free

    def die(*_a: Any, **_kw: Any) -> Any:
        raise RuntimeError("process died before the numbering commit")

    dying.alloc._commit = die  # type: ignore[method-assign]
    r = renewal("unstored:2026-03")
    with pytest.raises(RuntimeError, match="before the numbering commit"):
        dying.on_renewal_due(due_msg(r))
    assert not db.collection(INVOICES).document(invoice_id_for(r.request_id)).get().exists
    assert counter_commits(db, SERIES)[0] == 1
    assert env.svc.on_renewal_due(due_msg(r))["number"] == "INV-2026-000002"
    assert env.svc.on_renewal_due(due_msg(r))["number"] == "INV-2026-000002"  # a late duplicate: the stored one
    assert sorted(_numbers().values()) == [1, 2]


def test_behind_another_instances_lease_a_new_invoice_is_stored_queued_and_numbered_later(env: Env) -> None:
    """Another allocator holds the lease (a sustained load elsewhere, or hung): a waiting new invoice is stored
    queued (so that leader's queue query can number it); the delivery gives up, its redelivery gets the number."""
    db = clients.firestore()
    until = datetime.datetime.now(datetime.UTC) + datetime.timedelta(seconds=60)
    db.collection(SERIES_COLL).document(SERIES).set({"counter": 0, "lease_owner": "hung", "lease_until": until})
    impatient = env.service(wait_s=1.0)
    r = renewal("spilled:2026-03")
    with pytest.raises(NumberingPending):
        impatient.on_renewal_due(due_msg(r))
    stored = env.doc(INVOICES, invoice_id_for(r.request_id))
    assert (stored[QUEUE], stored.get("seq")) == (SERIES, None)
    db.collection(SERIES_COLL).document(SERIES).update({"lease_until": datetime.datetime.now(datetime.UTC)})
    assert impatient.on_renewal_due(due_msg(r))["number"] == "INV-2026-000001"
    assert QUEUE not in env.doc(INVOICES, invoice_id_for(r.request_id))
    assert sorted(_numbers().values()) == [1]
    assert audit_series(db, SERIES).ok
