"""``invoice.paid`` recorded with the payment in ONE write, published after it: what a crash in between,
a redelivery and a duplicate on another instance do (same event id every time, the fact applied once)."""

from __future__ import annotations

from typing import Any

import pytest

from shared import usage
from shared.domain.money import Money
from shared.events import Event
from shared.invoicing.repository import INVOICES, invoice_id_for
from tests.fixtures.invoices import due_msg, fact_msg, paid, renewal
from tests.integration.invoices.conftest import Env


class _DiesOnPublish:
    """A publisher port whose process dies before Pub/Sub accepts the message (nothing is sent)."""

    def publish(self, event: Event, **kw: Any) -> str:
        raise RuntimeError(f"simulated crash before publishing {event.EVENT_TYPE}")


def _paid_ids(env: Env) -> list[str]:
    return [a["event_id"] for a, _ in env.events() if a["event_type"] == "invoice.paid"]


def test_a_crash_between_the_payment_write_and_the_publish_is_healed_by_the_redelivery(metered: Env) -> None:
    env = metered
    iid = env.svc.on_renewal_due(due_msg(renewal("ann:1")))["invoice_id"]
    env.events()
    msg = fact_msg(paid(iid, Money(3000, "EUR")))
    dying = env.service()
    dying.deps.publisher = _DiesOnPublish()  # type: ignore[assignment]
    with pytest.raises(RuntimeError, match="simulated crash"):
        dying.on_payment_fact(msg)
    inv = env.doc(INVOICES, iid)
    assert (inv["status"], inv["facts_applied"], inv["published"]) == (
        "paid",
        [msg.envelope.event_id],
        ["finalized", "paid"],
    )
    assert _paid_ids(env) == []  # recorded as announced, not published yet: the delivery was not acknowledged

    fresh = env.service()  # Pub/Sub redelivers the unacknowledged fact, here to another instance
    with usage.track() as u:
        assert (fresh.on_payment_fact(msg) or {})["status"] == "paid"
    assert (u.reads, u.writes, u.published) == (1, 0, 1)  # published again, nothing written
    with usage.track() as u:
        fresh.on_payment_fact(msg)  # a duplicate on the instance that published it
    assert (u.reads, u.writes, u.published) == (1, 0, 0)
    ids = _paid_ids(env)
    assert len(ids) == 1
    assert env.doc(INVOICES, iid)["facts_applied"] == [msg.envelope.event_id]  # applied once


def test_a_duplicate_on_another_instance_publishes_the_same_event_id_and_other_deliveries_nothing(env: Env) -> None:
    r = renewal("ann:2")
    iid = env.svc.on_renewal_due(due_msg(r))["invoice_id"]
    msg = fact_msg(paid(iid, Money(3000, "EUR")))
    env.svc.on_payment_fact(msg)
    other = env.service()
    other.on_payment_fact(msg)  # at-least-once delivery: the same id again, consumers deduplicate
    ids = _paid_ids(env)
    assert len(ids) == 2
    assert len(set(ids)) == 1
    # Deliveries that do not carry the paying fact see "paid" recorded and announce nothing.
    env.service().on_renewal_due(due_msg(r))
    env.service().mark_paid(iid, "bank transfer")
    env.service().on_payment_fact(fact_msg(paid(iid, Money(3000, "EUR"), payment_id="pi_2")))  # paid twice
    assert _paid_ids(env) == []
    assert env.doc(INVOICES, iid)["psp_payment_id"] == "pi_1"


def test_a_payment_recorded_before_the_invoice_is_announced_by_the_finalization_as_before(env: Env) -> None:
    """The rare path (the fact overtook its invoice): applied by the finalization, announced after it."""
    r = renewal("ann:3")
    iid = invoice_id_for(r.request_id)
    msg = fact_msg(paid(iid, Money(3000, "EUR")))
    env.svc.on_payment_fact(msg)
    env.svc.on_renewal_due(due_msg(r))
    inv = env.doc(INVOICES, iid)
    assert (inv["status"], inv["published"]) == ("paid", ["finalized", "paid"])
    assert "paid_fact" not in inv
    env.service().on_payment_fact(msg)  # its redelivery: applied already, announced already
    assert len(_paid_ids(env)) == 1
