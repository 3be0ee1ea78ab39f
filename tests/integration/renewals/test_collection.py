"""Collector and outcomes on the emulators, with the Stripe SDK talking to a local stub."""

from __future__ import annotations

import concurrent.futures
import datetime as dt
from typing import Any

import pytest

from shared.events.billing import RenewalDue
from shared.events.payments import OurRefs, PaymentEvent, PaymentFailed, PaymentSucceeded
from shared.idempotency import Claims
from shared.renewals import planner, repository
from shared.renewals.config import renewal_settings
from shared.renewals.deps import Deps
from shared.renewals.entry import handle_push
from shared.renewals.messages import ChargeRetryDue
from tests.fixtures.renewals import Env, Interrupted, deliver_until_acked, finalized_for, new_sub, push
from tests.helpers import T0


def bill(env: Env, now: dt.datetime = T0) -> list[RenewalDue]:
    cfg = renewal_settings()
    for shard in range(cfg.shards):
        planner.run_shard(shard, now, cfg)
    return [RenewalDue.model_validate(b) for a, b in env.pull("renewals-due") if a["event_type"] == "renewal.due"]


def doc(sub_id: str) -> dict[str, Any]:
    return repository.subs().document(sub_id).get().to_dict() or {}


def facts(env: Env) -> list[tuple[dict[str, str], dict[str, Any]]]:
    return env.pull("payment-events")


def deliver_facts(env: Env) -> list[tuple[dict[str, str], dict[str, Any]]]:
    """Feed what the collector published on payment-events back to the function, like the push would."""
    got = facts(env)
    for attrs, body in got:
        classes: dict[str, type[PaymentEvent]] = {
            "payment.succeeded": PaymentSucceeded,
            "payment.failed": PaymentFailed,
        }
        cls = classes.get(attrs["event_type"])
        if cls is not None:
            handle_push(push(cls.model_validate(body), attrs["idempotency_key"]))
    return got


def transitions(env: Env) -> list[dict[str, Any]]:
    return [b for _, b in env.pull("subscription-events")]


def test_duplicate_and_concurrent_invoice_finalized_charge_once(env: Env) -> None:
    new_sub("sub_dup")
    (due,) = bill(env)
    inv = finalized_for(due, "inv_dup")
    event = push(inv, f"{inv.invoice_id}:finalized")
    with concurrent.futures.ThreadPoolExecutor(8) as pool:
        list(pool.map(lambda _: deliver_until_acked(lambda: handle_push(event)), range(8)))
    handle_push(push(inv, f"{inv.invoice_id}:finalized"))  # a late redelivery
    assert env.stripe.charges() == 1
    (sent,) = {r["key"]: r for r in env.stripe.requests}.values()
    assert sent["key"] == "renewal-inv_dup-1"
    assert sent["form"]["amount"] == "1000"
    assert sent["form"]["off_session"] == "true"
    assert sent["form"]["metadata[subscription_id]"] == "sub_dup"
    got = facts(env)
    assert {a["event_type"] for a, _ in got} == {"payment.succeeded"}
    assert len({a["event_id"] for a, _ in got}) == 1  # re-announcements are the same fact
    assert {a["idempotency_key"] for a, _ in got} == {f"stripe:default:{got[0][1]['psp_payment_id']}:payment.succeeded"}


def test_sync_success_advances_the_period_once(env: Env) -> None:
    new_sub("sub_ok")
    transitions(env)
    (due,) = bill(env)
    handle_push(push(finalized_for(due, "inv_ok"), "inv_ok:finalized"))
    got = deliver_facts(env)
    for attrs, body in got:  # duplicates of the fact change nothing
        handle_push(push(PaymentSucceeded.model_validate(body), attrs["idempotency_key"]))
    d = doc("sub_ok")
    assert (d["status"], d["paid_index"], d["version"]) == ("active", 0, 2)
    assert d["due_at"] == dt.datetime(2026, 2, 28, 9, 0, tzinfo=dt.UTC)
    ts = transitions(env)
    assert [(t["version"], t["reason"]) for t in ts][:1] == [(2, "renewed")]
    assert {t["version"] for t in ts} == {2}  # re-announced at most, never a new version
    # The next period is billed at its boundary, exactly once.
    (nxt,) = bill(env, dt.datetime(2026, 2, 28, 9, 0, tzinfo=dt.UTC))
    assert nxt.request_id == "sub_ok:2026-02-28T09:00:00Z"


def test_async_success_after_pending_charge_advances_the_period(env: Env) -> None:
    env.stripe.behaviour["pm_bank_debit"] = "processing"
    new_sub("sub_async", method="pm_bank_debit")
    (due,) = bill(env)
    handle_push(push(finalized_for(due, "inv_async"), "inv_async:finalized"))
    got = deliver_facts(env)
    assert [a["event_type"] for a, _ in got] == ["payment.pending"]
    assert repository.attempts().document("inv_async:1").get().to_dict()["status"] == "claimed"
    attempt = doc("sub_async")["charges"]["inv_async:1"]
    assert attempt["status"] == "pending"
    assert doc("sub_async")["paid_index"] is None  # pending stays pending
    # Days later the webhooks function reports the success (from the PSP's notification).
    later = PaymentSucceeded(
        psp="stripe",
        psp_event_id="evt_1",
        psp_payment_id=attempt["psp_payment_id"],
        livemode=False,
        refs=OurRefs(subscription_id="sub_async", invoice_id="inv_async", attempt_id="inv_async:1"),
        psp_created_at=T0 + dt.timedelta(days=2),
    )
    handle_push(push(later, later.fact_key()))
    d = doc("sub_async")
    assert (d["status"], d["paid_index"]) == ("active", 0)
    assert d["charges"]["inv_async:1"]["status"] == "succeeded"
    assert env.stripe.charges() == 1


def test_failure_duns_then_retry_charges_attempt_two_and_recovers(env: Env) -> None:
    env.stripe.behaviour["pm_tired"] = "declined"
    new_sub("sub_dun", method="pm_tired")
    transitions(env)
    (due,) = bill(env)
    handle_push(push(finalized_for(due, "inv_dun"), "inv_dun:finalized"))
    deliver_facts(env)
    d = doc("sub_dun")
    assert d["status"] == "past_due"
    assert d["dunning"]["failed_attempt"] == 1
    assert d["due_at"] == T0 + dt.timedelta(days=1)
    # Published by the collector and re-announced (same version) when the fact's push came back.
    assert {(t["version"], t["to_status"]) for t in transitions(env)} == {(2, "past_due")}
    # Nothing happens before the retry date; at it the planner asks for attempt 2.
    assert bill(env, T0 + dt.timedelta(hours=23)) == []
    cfg = renewal_settings()
    for shard in range(cfg.shards):
        planner.run_shard(shard, T0 + dt.timedelta(days=1), cfg)
    retries = [b for a, b in env.pull("billing-ticks") if a.get("event_type") == "renewal.charge_retry_due"]
    assert retries == [{"subscription_id": "sub_dun", "invoice_id": "inv_dun", "attempt": 2}]
    env.stripe.behaviour["pm_tired"] = "succeeded"  # the customer topped up
    retry = push(ChargeRetryDue.model_validate(retries[0]), "inv_dun:2")
    handle_push(retry)
    handle_push(retry)
    assert [r["key"] for r in env.stripe.requests] == ["renewal-inv_dun-1", "renewal-inv_dun-2"]
    deliver_facts(env)
    d = doc("sub_dun")
    assert (d["status"], d["paid_index"], d["dunning"]) == ("active", 0, None)
    # The duplicate retry re-announced its fact, which re-announced the same transition (same version).
    assert {(t["version"], t["from_status"], t["to_status"], t["reason"]) for t in transitions(env)} == {
        (3, "past_due", "active", "recovered")
    }
    # The status history on the document: written with each transition, once each despite the re-announcements.
    history = [(t["version"], t["from_status"], t["to_status"], t["reason"]) for t in doc("sub_dun")["transitions"]]
    assert len(history) == len({v for v, *_ in history}), history
    assert [h for h in history if h[0] >= 2] == [
        (2, "active", "past_due", "payment_failed"),
        (3, "past_due", "active", "recovered"),
    ]


def test_hard_decline_goes_straight_to_the_final_status(env: Env) -> None:
    env.stripe.behaviour["pm_stolen"] = "stolen"
    new_sub("sub_hard", method="pm_stolen")
    (due,) = bill(env)
    handle_push(push(finalized_for(due, "inv_hard"), "inv_hard:finalized"))
    deliver_facts(env)
    d = doc("sub_hard")
    assert d["status"] == "unpaid"
    assert d["due_at"] is None
    assert d["dunning"]["next_retry_at"] is None


def test_late_failure_after_success_does_not_regress(env: Env) -> None:
    new_sub("sub_late")
    (due,) = bill(env)
    handle_push(push(finalized_for(due, "inv_late"), "inv_late:finalized"))
    deliver_facts(env)
    before = doc("sub_late")
    stale = PaymentFailed(
        psp="stripe",
        psp_event_id="evt_old",
        psp_payment_id="pi_other",
        livemode=False,
        refs=OurRefs(subscription_id="sub_late", invoice_id="inv_late", attempt_id="inv_late:1"),
        psp_created_at=T0 - dt.timedelta(minutes=1),
        retryable=True,
    )
    handle_push(push(stale, stale.fact_key()))
    after = doc("sub_late")
    assert (after["status"], after["version"], after["paid_index"]) == ("active", before["version"], 0)


def test_trial_ends_into_a_first_invoice(env: Env) -> None:
    new_sub("sub_trial", trial_days=14)
    assert bill(env) == []
    end = T0 + dt.timedelta(days=14)
    (due,) = bill(env, end)
    assert due.period_start == end
    handle_push(push(finalized_for(due, "inv_trial"), "inv_trial:finalized"))
    deliver_facts(env)
    assert doc("sub_trial")["status"] == "active"


def test_send_invoice_collection_is_not_charged(env: Env) -> None:
    new_sub("sub_manual")
    (due,) = bill(env)
    inv = finalized_for(due, "inv_manual").model_copy(update={"collection": "send_invoice"})
    handle_push(push(inv, "inv_manual:finalized"))
    assert env.stripe.requests == []


def test_crash_after_charge_before_publish_loses_nothing(env: Env) -> None:
    new_sub("sub_crash_pub")
    transitions(env)
    (due,) = bill(env)
    event = push(finalized_for(due, "inv_crash"), "inv_crash:finalized")
    with pytest.raises(OSError, match="down"):
        handle_push(event, Deps(publisher=Interrupted(OSError("down"))))
    assert doc("sub_crash_pub")["paid_index"] == 0  # applied, but nothing announced yet
    assert facts(env) == []
    handle_push(event)  # Pub/Sub redelivers
    assert env.stripe.charges() == 1
    assert [a["event_type"] for a, _ in facts(env)] == ["payment.succeeded"]
    assert [(t["version"], t["reason"]) for t in transitions(env)] == [(2, "renewed")]


def test_zero_amount_invoice_settles_the_period_without_a_charge(env: Env) -> None:
    new_sub("sub_zero")
    (due,) = bill(env)
    handle_push(push(finalized_for(due, "inv_zero", amount=0), "inv_zero:finalized"))
    assert env.stripe.requests == []
    assert (doc("sub_zero")["status"], doc("sub_zero")["paid_index"]) == ("active", 0)


def test_late_duplicate_after_the_charges_map_was_trimmed_never_reaches_the_psp(env: Env) -> None:
    """No result is ever dropped: a duplicate ``invoice.finalized`` arriving after the subscription's
    ``charges`` map has moved the attempt's result to its archive (12 kept) re-announces, never re-charges."""
    from shared.renewals.outcomes import archive_id

    new_sub("sub_late")
    transitions(env)
    (due,) = bill(env)
    first = push(finalized_for(due, "inv_late"), "inv_late:finalized")
    handle_push(first)
    attempt = repository.attempt_record("inv_late:1")
    assert (attempt["claim"], attempt["status"], attempt["result"]["status"]) == ("charged", "succeeded", "succeeded")
    (fact_attrs, _), *_ = facts(env)
    # The map keeps the latest 12 results; later charges move the older ones to the archive. Move it the same way.
    charges = doc("sub_late")["charges"]
    moved = {"inv_late:1": charges.pop("inv_late:1")}
    repository.charge_results("sub_late").document(archive_id(moved)).set({"results": moved})
    repository.subs().document("sub_late").update({"charges": charges, "charges_archived": 1})
    repository.attempts().document("inv_late:1").update({"lease_until": T0})  # days later: lease long over
    transitions(env)
    facts(env)
    calls = len(env.stripe.requests)
    handle_push(push(finalized_for(due, "inv_late"), "inv_late:finalized"))  # the late duplicate
    assert len(env.stripe.requests) == calls  # zero PSP calls
    [(again, _)] = facts(env)
    assert again["event_id"] == fact_attrs["event_id"]  # the same fact, re-announced
    assert [(t["version"], t["reason"]) for t in transitions(env)] == [(2, "renewed")]  # and its transition


def test_a_taken_over_attempt_adopts_the_result_its_webhook_recorded(env: Env, monkeypatch: pytest.MonkeyPatch) -> None:
    """The charging process dies after the PSP answered; the PSP's webhook records the result on the
    subscription; the redelivery after the lease takes the attempt over and adopts it, no PSP call."""
    from shared.renewals import collector

    new_sub("sub_adopt")
    (due,) = bill(env)
    event = push(finalized_for(due, "inv_adopt"), "inv_adopt:finalized")
    # A context of its own: undoing it must not undo the fixtures' patches (the emulator variables).
    with monkeypatch.context() as m:
        m.setattr(collector, "_complete", lambda *a, **k: (_ for _ in ()).throw(OSError("process died")))
        m.setattr(Claims, "release", lambda self, claimed: None)  # a crash releases nothing
        with pytest.raises(OSError, match="process died"):
            handle_push(event)
    psp_id = env.stripe._answers["renewal-inv_adopt-1"][1]["id"]
    late = PaymentSucceeded(
        psp="stripe",
        psp_event_id="evt_adopt",
        psp_payment_id=psp_id,
        livemode=False,
        refs=OurRefs(subscription_id="sub_adopt", invoice_id="inv_adopt", attempt_id="inv_adopt:1"),
        psp_created_at=T0,
    )
    handle_push(push(late, late.fact_key()))
    assert doc("sub_adopt")["paid_index"] == 0
    repository.attempts().document("inv_adopt:1").update({"lease_until": T0})  # the lease has run out
    facts(env)
    handle_push(event)
    assert env.stripe.charges() == 1
    assert len(env.stripe.requests) == 1
    attempt = repository.attempts().document("inv_adopt:1").get().to_dict() or {}
    assert (attempt["claim"], attempt["result"]["psp_payment_id"]) == ("charged", psp_id)
    assert [a["idempotency_key"] for a, _ in facts(env)] == [late.fact_key()]


def test_zero_amount_send_invoice_settles_the_period_too(env: Env) -> None:
    """Credits can cover a send_invoice invoice entirely: nobody will ever pay it, so it settles like a charge."""
    new_sub("sub_zero_si")
    (due,) = bill(env)
    zero = finalized_for(due, "inv_zero_si", amount=0).model_copy(update={"collection": "send_invoice"})
    handle_push(push(zero, "inv_zero_si:finalized"))
    assert env.stripe.requests == []
    assert (doc("sub_zero_si")["status"], doc("sub_zero_si")["paid_index"]) == ("active", 0)
