"""The allocators' turn rule (who gets the series' lease next), without I/O."""

from __future__ import annotations

import datetime as dt

from hypothesis import given
from hypothesis import strategies as st

from shared.domain.numbering import SeriesDef
from shared.invoicing.allocator import QUEUE, TURNS, NumberAllocator, encode_create, numbered_write
from shared.invoicing.documents import build_invoice_doc
from shared.invoicing.entities import seller
from tests.fixtures.invoices import renewal
from tests.helpers import T0

ids = st.lists(st.sampled_from([f"a{i}" for i in range(8)]), max_size=10)


def _alloc(name: str) -> NumberAllocator:
    a = NumberAllocator(None)
    a.instance_id = name
    return a


@given(ids, st.sampled_from(["a0", "a1", "a9"]), st.one_of(st.none(), st.sampled_from(["a2", "a3"])), st.booleans())
def test_the_lease_goes_to_another_waiting_allocator_and_the_ring_stays_a_set(
    turns: list[str], me: str, stale: str | None, stay: bool
) -> None:
    after, pass_to = _alloc(me)._turns_after({TURNS: turns}, stale, stay=stay)
    others = [t for t in dict.fromkeys(turns) if t not in (me, stale)]
    if not others:  # nobody else waits: no ring, the holder keeps or releases the lease itself
        assert (after, pass_to) == ([], None)
        return
    assert pass_to in others
    assert len(after) == len(set(after))
    assert stale not in after
    assert set(after) - {me} == set(others)
    assert (me in after) == stay


@given(st.lists(st.sampled_from([f"a{i}" for i in range(8)]), min_size=2, max_size=8, unique=True))
def test_passing_the_lease_round_the_ring_gives_every_member_one_turn(members: list[str]) -> None:
    """Each holder numbers something (it stays) and passes on: n passes visit all n members once, in order."""
    allocs = {m: _alloc(m) for m in members}
    doc = {TURNS: list(members)}
    holder, seen = members[0], []
    for _ in members:
        seen.append(holder)
        turns, nxt = allocs[holder]._turns_after(doc, None, stay=True)
        assert nxt is not None
        doc, holder = {TURNS: turns}, nxt
    assert seen == members
    assert holder == members[0]


def test_a_turn_that_finds_nothing_leaves_the_ring_and_a_newcomer_queues_at_the_end() -> None:
    assert _alloc("b")._turns_after({TURNS: ["a", "b", "c"]}, None, stay=False) == (["a", "c"], "c")
    assert _alloc("n")._turns_after({TURNS: ["a", "b"]}, None, stay=True) == (["a", "b", "n"], "a")
    assert _alloc("a")._turns_after({TURNS: ["dead", "a", "b"]}, "dead", stay=True) == (["a", "b"], "b")
    assert _alloc("a")._turns_after({TURNS: ["a"]}, None, stay=True) == ([], None)
    assert _alloc("a")._turns_after({}, None, stay=True) == ([], None)


@given(
    st.integers(1, 10**9),
    st.datetimes(dt.datetime(2000, 1, 1), dt.datetime(2100, 1, 1), timezones=st.just(dt.UTC)),
)
def test_a_create_encoded_by_the_request_then_numbered_is_the_librarys_own_create(seq: int, at: dt.datetime) -> None:
    """The holder only adds the numbering fields to the write the request encoded: the result is exactly what
    ``WriteBatch.create`` would send for the numbered document (queue field left out)."""
    from google.auth.credentials import AnonymousCredentials
    from google.cloud import firestore
    from google.cloud.firestore_v1 import _helpers

    db = firestore.Client(project="demo-unit", credentials=AnonymousCredentials())  # type: ignore[no-untyped-call]
    r = renewal("enc:2026-03")
    doc = {**build_invoice_doc(r, "in_x", seller("acme-fr"), T0, "hash"), QUEUE: "acme-fr.INV.2026"}
    s = SeriesDef("acme-fr", "invoice", "INV")
    fields = {"seq": seq, "number": s.format(seq, at), "status": "open", "finalized_at": at, "series_id": "x"}
    encoded = encode_create(db, "invoices/in_x", doc)
    assert encoded is not None
    ours = numbered_write(encoded, fields)
    ref = db.document("invoices/in_x")
    [library] = _helpers.pbs_for_create(ref._document_path, {**{k: v for k, v in doc.items() if k != QUEUE}, **fields})
    assert ours == library
    assert QUEUE not in ours.update.fields
    assert numbered_write(encoded, fields) == ours  # the encoded write is copied, never changed in place
    assert encode_create(object(), "invoices/in_x", doc) is None  # not the library's client: built at commit time


def test_versions_of_the_series_document_are_ordered_by_update_time_not_by_a_local_count() -> None:
    """A local copy that counted one commit too many must not make the next real versions look older (the
    lease passed to us would go unseen until it ran out)."""
    from shared.invoicing.allocator import _Series

    t = [dt.datetime(2026, 3, 1, 0, 0, s, tzinfo=dt.UTC) for s in range(4)]
    s = _Series("x", "invoices")
    with s.cond:
        s.observe({"counter": 5, "commits": 9, "lease_owner": "me"}, 10, t[1])
        s.observe({"counter": 5, "commits": 8, "lease_owner": "you"}, 10, t[2])  # newer, though it counts fewer
        assert (s.doc or {})["lease_owner"] == "you"
        s.observe({"counter": 5, "commits": 99, "lease_owner": "stale"}, 10, t[0])  # a late event: older
        assert (s.doc or {})["lease_owner"] == "you"
        s.observe({"counter": 5, "commits": 8, "lease_owner": "no version"}, 10)  # no update_time: by the count
        assert (s.doc or {})["lease_owner"] == "no version"


class _Aborting:
    """A series document whose updates the server aborts ``aborts`` times (contention), then accepts."""

    def __init__(self, aborts: int) -> None:
        self.aborts, self.updates = aborts, 0

    def collection(self, _name: str) -> _Aborting:
        return self

    def document(self, _name: str) -> _Aborting:
        return self

    def update(self, _fields: dict[str, object]) -> None:
        from google.api_core.exceptions import Aborted

        self.updates += 1
        if self.updates <= self.aborts:
            raise Aborted("too much contention on these documents")  # type: ignore[no-untyped-call]


def test_a_join_of_the_turns_aborted_by_contention_is_sent_again_and_given_up_after_three_tries() -> None:
    from shared.invoicing.allocator import _Series

    for aborts, written, tries in ((2, True, 3), (3, False, 3)):
        db = _Aborting(aborts)
        alloc = NumberAllocator(db)
        alloc.instance_id = "a1"
        assert alloc._turns_write(_Series("s", "invoices"), ["a1"]) is written
        assert (db.updates, alloc.stats.turn_writes) == (tries, int(written))
