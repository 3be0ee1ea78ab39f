"""What a renewal charge writes, on the emulators: the claim, the subscription and the risk profile, one
write each; a duplicate writes nothing; results past the kept dozen move to the archive, none is lost."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from typing import Any

import pytest

from shared import usage
from shared.config import reset_settings
from shared.events.billing import RiskSnapshot
from shared.renewals import outcomes, repository
from shared.renewals.deps import utcnow
from shared.renewals.entry import handle_push
from shared.risk.gate import snapshot_for
from shared.subscriptions.service import SubscriptionService
from tests.fixtures.renewals import Env, finalized_for, new_sub, push
from tests.helpers import T0
from tests.integration.renewals.test_collection import bill, doc, facts, transitions


@pytest.fixture
def metered(env: Env, monkeypatch: pytest.MonkeyPatch) -> Iterator[Env]:
    monkeypatch.setenv("USAGE_METERING", "1")
    monkeypatch.setenv("RISK_SCORER", "rules")
    reset_settings()
    yield env
    reset_settings()
    usage._background.drain()


def carrying_its_profile(inv: Any) -> Any:
    """``invoice.finalized`` as the invoices function sends it: with the customer's risk profile."""
    method = inv.payment_method.model_dump() if inv.payment_method else None
    snap = snapshot_for(inv.customer_id, method, inv.amount_due.amount, utcnow())
    assert snap is not None
    return inv.model_copy(update={"risk": RiskSnapshot.model_validate(snap)})


def test_a_renewal_charge_writes_three_documents_once_each(metered: Env) -> None:
    """Claim (the attempt document, written once), subscription (outcome + the PSP's answer + the risk
    decision), risk profile: 3 writes and 1 read (the subscription) per renewal charge."""
    new_sub("sub_w")
    (due,) = bill(metered)
    inv = carrying_its_profile(finalized_for(due, "inv_w"))
    with usage.track() as u:
        handle_push(push(inv, "inv_w:finalized"))
    assert (u.reads, u.writes) == (1, 3)
    assert metered.stripe.charges() == 1
    snap = repository.attempts().document("inv_w:1").get()
    assert snap.create_time == snap.update_time  # the claim is the attempt document's only write
    sub = doc("sub_w")
    assert (sub["paid_index"], sub["charges"]["inv_w:1"]["status"]) == (0, "succeeded")
    assert sub["charges"]["inv_w:1"]["risk"]["decision"]["verdict"] == "allow"
    record = repository.attempt_record("inv_w:1")
    assert (record["claim"], record["status"], record["risk"]["key"]) == ("charged", "succeeded", "inv_w:1")
    assert record["result"]["psp_payment_id"] == sub["charges"]["inv_w:1"]["psp_payment_id"]
    # what listings (the console's payments and renewal outcomes) show of it
    (row,) = repository.with_results([{"_id": snap.id, **(snap.to_dict() or {})}])
    assert (row["status"], row["psp_payment_id"]) == ("succeeded", record["result"]["psp_payment_id"])


def test_a_duplicate_while_the_claim_is_leased_reannounces_without_a_psp_call_or_a_write(metered: Env) -> None:
    new_sub("sub_wd")
    transitions(metered)
    (due,) = bill(metered)
    inv = carrying_its_profile(finalized_for(due, "inv_wd"))
    handle_push(push(inv, "inv_wd:finalized"))
    [(first, _)] = [f for f in facts(metered) if f[0]["event_type"] == "payment.succeeded"]
    assert [t["reason"] for t in transitions(metered)] == ["renewed"]
    calls = len(metered.stripe.requests)
    with usage.track() as u:
        handle_push(push(inv, "inv_wd:finalized"))  # the attempt document still says "charging", leased
    assert len(metered.stripe.requests) == calls
    assert u.writes == 0
    [(again, _)] = facts(metered)
    assert again["event_id"] == first["event_id"]
    assert [t["reason"] for t in transitions(metered)] == ["renewed"]  # the same transition, announced again


def test_results_past_the_kept_dozen_move_together_to_the_archive_and_a_late_duplicate_never_recharges(
    env: Env,
) -> None:
    new_sub("sub_wa")
    (due,) = bill(env)
    handle_push(push(finalized_for(due, "inv_wa"), "inv_wa:finalized"))
    [(first, _)] = [f for f in facts(env) if f[0]["event_type"] == "payment.succeeded"]
    ours = doc("sub_wa")["charges"]["inv_wa:1"]
    later = T0 + dt.timedelta(days=400)

    def result(n: int) -> dict[str, Any]:
        return {**ours, "psp_payment_id": f"pi_later_{n}", "psp_created_at": later + dt.timedelta(days=n)}

    # the map full (24 results: ours and 23 later renewals and retries), then one more charge
    charges = {"inv_wa:1": ours} | {f"inv_later_{n}:1": result(n) for n in range(23)}
    repository.subs().document("sub_wa").update({"charges": charges})
    outcomes.apply("sub_wa", None, None, charge=("inv_later_23:1", result(23)))
    sub = doc("sub_wa")
    kept = sorted(sub["charges"], key=lambda k: sub["charges"][k]["psp_created_at"])
    assert kept == [f"inv_later_{n}:1" for n in range(12, 24)]
    (archive,) = [s.to_dict() or {} for s in repository.charge_results("sub_wa").stream()]
    assert set(archive["results"]) == {"inv_wa:1"} | {f"inv_later_{n}:1" for n in range(12)}
    assert sub["charges_archived"] == 13
    assert repository.attempt_record("inv_wa:1")["result"]["psp_payment_id"] == ours["psp_payment_id"]
    (row,) = SubscriptionService().get("sub_wa", with_attempts=True)["attempts"]  # the API shows it too
    assert (row["status"], row["psp_payment_id"]) == ("succeeded", ours["psp_payment_id"])
    # a year later, long after the PSP forgot its idempotency key: the duplicate finds the archived result
    repository.attempts().document("inv_wa:1").update({"lease_until": T0})
    calls = len(env.stripe.requests)
    handle_push(push(finalized_for(due, "inv_wa"), "inv_wa:finalized"))
    assert len(env.stripe.requests) == calls
    [(again, _)] = facts(env)
    assert again["event_id"] == first["event_id"]
