"""The renewal charge outcome lines carry what the monitoring metrics count: the charge failure rate per
PSP and decline code, and the first attempt's lateness (the renewals billed-on-time SLO)."""

from __future__ import annotations

from shared.renewals.entry import handle_push
from tests.fixtures.renewals import Env, finalized_for, new_sub, push
from tests.infra.monitoring import counted, log_metrics
from tests.integration.renewals.test_collection import bill
from tests.logcapture import captured_lines


def test_charge_lines_feed_the_charge_metrics(env: Env) -> None:
    metrics = log_metrics()
    env.stripe.behaviour["pm_tired"] = "declined"
    new_sub("sub_ok_line")
    new_sub("sub_declined_line", method="pm_tired")
    dues = {d.subscription_id: d for d in bill(env)}
    with captured_lines() as lines:
        for sub_id, inv in (("sub_ok_line", "inv_line_ok"), ("sub_declined_line", "inv_line_ko")):
            handle_push(push(finalized_for(dues[sub_id], inv), f"{inv}:finalized"))

    charges = counted(metrics["renewal_charges"], lines)
    assert sorted((c["status"], metrics["renewal_charges"].labels_of(c)["psp"]) for c in charges) == [
        ("failed", "stripe"),
        ("succeeded", "stripe"),
    ]
    (failed,) = [c for c in charges if c["status"] == "failed"]
    assert metrics["renewal_charges"].labels_of(failed) == {
        "psp": "stripe",
        "status": "failed",
        "decline_code": "generic_decline",  # what the stub answers for "declined"
    }
    lateness = counted(metrics["renewal_first_charge_lateness"], lines)
    assert len(lateness) == 2  # both first attempts, whatever their outcome
    for line in lateness:
        assert isinstance(line["lateness_s"], int)
        assert line["lateness_s"] >= 0
        assert metrics["renewal_first_charge_lateness"].labels_of(line) == {"psp": "stripe"}
