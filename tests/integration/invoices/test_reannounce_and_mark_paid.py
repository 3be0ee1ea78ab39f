"""Re-sent RenewalDue re-announces an open invoice (same event id), never a paid or void one; operator mark-paid."""

from __future__ import annotations

import pytest

from shared.domain.invoices import InvalidTransition
from shared.domain.money import Money
from shared.invoicing.repository import INVOICES, invoice_id_for
from tests.fixtures.invoices import due_msg, fact_msg, paid, renewal
from tests.integration.invoices.conftest import Env


def test_resent_renewal_due_reannounces_an_open_invoice_with_the_same_event_id(env: Env) -> None:
    r = renewal("sub_7:2026-03-01T00:00:00Z", currency="JPY", amounts=(4800,), seller="acme-jp")
    env.svc.on_renewal_due(due_msg(r))
    (first,) = env.events()
    for _ in range(2):  # the planner re-sends the request of an unpaid period
        env.svc.on_renewal_due(due_msg(r))
    again = env.events()
    assert [a["event_type"] for a, _ in again] == ["invoice.finalized", "invoice.finalized"]
    assert {a["event_id"] for a, _ in again} == {first[0]["event_id"]}
    assert {a["idempotency_key"] for a, _ in again} == {f"{invoice_id_for(r.request_id)}:finalized"}
    assert all(body == first[1] for _, body in again)
    assert env.doc(INVOICES, invoice_id_for(r.request_id))["published"] == ["finalized"]


def test_resent_renewal_due_for_a_paid_or_void_invoice_publishes_nothing(env: Env) -> None:
    r_paid, r_void = renewal("sub_8:p1", amounts=(1234,)), renewal("sub_8:p2", amounts=(99,))
    iid = env.svc.on_renewal_due(due_msg(r_paid))["invoice_id"]
    env.svc.on_payment_fact(fact_msg(paid(iid, Money(1481, "EUR"))))
    vid = env.svc.on_renewal_due(due_msg(r_void))["invoice_id"]
    env.svc.void(vid, "issued in error")
    env.events()
    env.svc.on_renewal_due(due_msg(r_paid))
    env.svc.on_renewal_due(due_msg(r_void))
    assert env.events() == []


def test_mark_paid_publishes_invoice_paid_once_and_is_idempotent(env: Env) -> None:
    r = renewal("sub_9:2026-03-01T00:00:00Z", currency="KWD", amounts=(12345,))
    iid = env.svc.on_renewal_due(due_msg(r))["invoice_id"]
    env.events()
    out = env.svc.mark_paid(iid, "bank transfer 4711")
    assert (out["status"], out["number"]) == ("paid", "INV-2026-000001")
    env.svc.mark_paid(iid, "again")
    ((attrs, body),) = env.events()
    assert (attrs["event_type"], attrs["idempotency_key"]) == ("invoice.paid", f"{iid}:paid")
    inv = env.doc(INVOICES, iid)
    assert (inv["paid_by"], inv["paid_reason"], inv["amount_paid"]) == ("operator", "bank transfer 4711", 14814)
    assert body["amount_paid"] == {"amount": 14814, "currency": "KWD"}
    assert (body["paid_by"], body["psp_payment_id"], body["collection"]) == ("operator", None, "charge_automatically")
    # A PSP payment arriving afterwards changes nothing (and is logged as a double payment).
    env.svc.on_payment_fact(fact_msg(paid(iid, Money(14814, "KWD"))))
    assert env.doc(INVOICES, iid)["paid_by"] == "operator"
    assert env.events() == []


def test_mark_paid_refuses_void_and_unknown_invoices(env: Env, capsys: pytest.CaptureFixture[str]) -> None:
    from shared.ops.invoices import main

    iid = env.svc.on_renewal_due(due_msg(renewal("sub_10:p1")))["invoice_id"]
    env.svc.void(iid)
    with pytest.raises(InvalidTransition):
        env.svc.mark_paid(iid, "late cheque")
    assert main(["mark-paid", iid, "--reason", "late cheque"]) == 2
    assert main(["mark-paid", "in_missing", "--reason", "x"]) == 2
    assert "refused" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["mark-paid", iid])  # the reason is required: it is the audit trail
