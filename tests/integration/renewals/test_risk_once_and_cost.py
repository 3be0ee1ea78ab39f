"""The risk step on the charge path, on the emulators: what it costs, and that each charge counts once."""

from __future__ import annotations

import concurrent.futures
import datetime as dt
from collections.abc import Iterator
from typing import Any

import pytest

from shared import clients, usage
from shared.charging import ChargeUnavailable
from shared.config import reset_settings
from shared.events.payments import PaymentSucceeded
from shared.renewals import repository
from shared.renewals.deps import utcnow
from shared.renewals.entry import handle_push
from shared.risk.base import Decision
from shared.risk.step import PROFILES, RECORDS, ProfileRead, entry_key
from tests.fixtures.renewals import Env, deliver_until_acked, finalized_for, new_sub, push
from tests.integration.renewals.test_collection import bill, facts
from tests.integration.renewals.test_declines_and_risk import Model, model  # noqa: F401 (fixture)


def profile(customer: str) -> tuple[dict[str, Any], Any]:
    snap = clients.firestore().collection(PROFILES).document(f"c:{customer}").get()
    return snap.to_dict() or {}, snap.update_time


def attempt(attempt_id: str) -> dict[str, Any]:
    return repository.attempt_record(attempt_id)  # the claim with its result (kept on the subscription)


@pytest.fixture
def metered(env: Env, monkeypatch: pytest.MonkeyPatch) -> Iterator[Env]:
    monkeypatch.setenv("USAGE_METERING", "1")
    reset_settings()
    yield env
    reset_settings()
    usage._background.drain()


def test_a_renewal_charge_costs_the_risk_step_one_read_and_one_write(
    metered: Env, monkeypatch: pytest.MonkeyPatch
) -> None:
    subs = ["sub_off_1", "sub_on", "sub_off_2"]
    for s in subs:
        new_sub(s)
    dues = {d.subscription_id: d for d in bill(metered)}
    cost: dict[str, tuple[int, int]] = {}
    for s in subs:
        monkeypatch.setenv("RISK_SCORER", "rules" if s == "sub_on" else "off")
        inv = finalized_for(dues[s], f"inv_{s}")
        with usage.track() as u:
            handle_push(push(inv, f"{inv.invoice_id}:finalized"))
        cost[s] = (u.reads, u.writes)
    on, off = cost["sub_on"], cost["sub_off_1"]
    assert cost["sub_off_2"] == off
    assert (on[0] - off[0], on[1] - off[1]) == (1, 1), cost
    rec = attempt("inv_sub_on:1")["risk"]
    assert (rec["stage"], rec["key"], rec["decision"]["verdict"]) == ("charge", "inv_sub_on:1", "allow")
    assert "risk" not in attempt("inv_sub_off_1:1")


def test_a_charge_enters_the_profile_once_under_concurrent_redelivery_and_its_report_adds_nothing(env: Env) -> None:
    new_sub("sub_c")
    (due,) = bill(env)
    inv = finalized_for(due, "inv_sub_c")
    message = push(inv, "inv_sub_c:finalized")
    with concurrent.futures.ThreadPoolExecutor(4) as pool:
        list(pool.map(lambda _: deliver_until_acked(lambda: handle_push(message)), range(4)))
    handle_push(push(inv, "inv_sub_c:finalized"))  # a late redelivery
    assert env.stripe.charges() == 1
    doc, version = profile("cus-sub_c")
    (entry,) = doc["events"].values()
    assert entry_key("inv_sub_c:1") in doc["events"]
    assert (entry["kind"], entry["outcome"], entry["amount"], entry["d"]["verdict"]) == (
        "attempt",
        "succeeded",
        1000,
        "allow",
    )
    rec = attempt("inv_sub_c:1")["risk"]  # the decision with the features it used, on the attempt
    assert rec["features"]["amount_minor"] == 1000
    assert rec["features"]["customer_attempts_24h"] == 0
    # The PSP's report of the same fact (and the collector's own, fed back): the charge's decision, no write.
    reported = {a["event_id"]: b for a, b in facts(env) if a["event_type"] == "payment.succeeded"}
    (succeeded,) = reported.values()  # re-announced by each late copy: the same event
    fact = PaymentSucceeded.model_validate(succeeded)
    for _ in range(2):
        handle_push(push(fact, fact.fact_key()))
    assert profile("cus-sub_c")[1] == version
    assert list(clients.firestore().collection(RECORDS).stream()) == []


class FailsOnce:
    """A charger whose first call dies after the request may have reached the PSP; then the real one."""

    def __init__(self, real: Any) -> None:
        self.real, self.calls = real, 0

    def charge(self, req: Any) -> Any:
        self.calls += 1
        if self.calls == 1:
            raise ChargeUnavailable("connection reset after sending")
        return self.real.charge(req)


def test_a_replay_after_a_failed_charge_reuses_the_decision(
    env: Env,
    model: Model,  # noqa: F811 (the imported fixture)
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from shared.charging import charger_for as real

    wrapped: dict[str, FailsOnce] = {}
    monkeypatch.setattr(
        "shared.renewals.collector.charger_for", lambda psp, acc: wrapped.setdefault(psp, FailsOnce(real(psp, acc)))
    )
    model.score = 0.6  # review
    new_sub("sub_p")
    (due,) = bill(env)
    inv = finalized_for(due, "inv_sub_p")
    with pytest.raises(ChargeUnavailable):
        handle_push(push(inv, "inv_sub_p:finalized"))
    model.score = 0.97  # would block now: the first try may have charged, so its decision must stand
    handle_push(push(inv, "inv_sub_p:finalized"))
    assert len(model.requests) == 1  # decided once
    assert env.stripe.charges() == 1
    rec = attempt("inv_sub_p:1")
    assert (rec["status"], rec["risk"]["decision"]["verdict"]) == ("succeeded", "review")
    (entry,) = profile("cus-sub_p")[0]["events"].values()
    assert (entry["outcome"], Decision.from_dict(entry["d"]).verdict) == ("succeeded", "review")


def test_the_early_profile_read_answers_what_a_get_answers_and_is_billed_once(metered: Env) -> None:
    db = clients.firestore()
    ref = db.collection(PROFILES).document("c:cus-early")
    ref.set({"events": {"e": {"kind": "attempt", "amount": 5}}, "billing_country": "DE"})
    with usage.track() as u:
        early = ProfileRead(db, ref)
        assert early._call is not None  # sent on the channel at once, not by the fallback
        assert early.result() == ref.get().to_dict()
        assert ProfileRead(db, db.collection(PROFILES).document("c:nobody")).result() is None
    assert u.reads == 3


def test_a_charge_carrying_a_fresh_profile_reads_nothing_for_risk_and_decides_from_it(
    metered: Env, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The read moved to the invoices function (``snapshot_for``): the charge path only writes; overall
    still one read and one write per renewal charge. A stale snapshot is read again, as an older message."""
    from shared.events.billing import RiskSnapshot
    from shared.risk.base import method_key
    from shared.risk.gate import snapshot_for

    subs = ["sub_k_off", "sub_k_on", "sub_k_stale"]
    for s in subs:
        new_sub(s)
    dues = {d.subscription_id: d for d in bill(metered)}
    m = dues["sub_k_on"].payment_method
    assert m is not None
    key = method_key(m.psp, m.account, m.method_ref)
    earlier = {"t": utcnow(), "kind": "attempt", "outcome": "failed", "m": key, "amount": 1, "currency": "EUR"}
    for s in subs:
        clients.firestore().collection(PROFILES).document(f"c:cus-{s}").set({"events": {"old": earlier}})
    cost: dict[str, tuple[int, int]] = {}
    for s in subs:
        monkeypatch.setenv("RISK_SCORER", "off" if s == "sub_k_off" else "rules")
        inv = finalized_for(dues[s], f"inv_{s}")
        method = inv.payment_method.model_dump() if inv.payment_method else None
        with usage.track() as upstream:  # what the invoices function does when it finalizes
            snap = snapshot_for(inv.customer_id, method, inv.amount_due.amount, utcnow())
        assert (upstream.reads, upstream.writes) == ((0, 0) if s == "sub_k_off" else (1, 0))
        if snap is not None:
            if s == "sub_k_stale":
                snap["read_at"] -= dt.timedelta(minutes=11)
            inv = inv.model_copy(update={"risk": RiskSnapshot.model_validate(snap)})
        with usage.track() as u:
            handle_push(push(inv, f"{inv.invoice_id}:finalized"))
        cost[s] = (u.reads, u.writes)
    off = cost["sub_k_off"]
    assert (cost["sub_k_on"][0] - off[0], cost["sub_k_on"][1] - off[1]) == (0, 1), cost
    assert (cost["sub_k_stale"][0] - off[0], cost["sub_k_stale"][1] - off[1]) == (1, 1), cost
    for s in ("sub_k_on", "sub_k_stale"):
        rec = attempt(f"inv_{s}:1")["risk"]  # decided from the carried profile: it saw the earlier attempt
        assert (rec["features"]["customer_attempts_24h"], rec["features"]["method_attempts_24h"]) == (1, 1)
        assert rec["features"]["customer_declines_7d"] == 1
        doc, _ = profile(f"cus-{s}")
        assert set(doc["events"]) == {"old", entry_key(f"inv_{s}:1")}
