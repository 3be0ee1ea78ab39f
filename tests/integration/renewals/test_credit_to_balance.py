"""A credit note that credits the customer's balance instead of a refund, on the emulators (API and CLI).

The note is issued once per key, its total becomes one balance entry, and the balance pays the next invoice
after tax exactly once, however often that invoice's request is redelivered.
"""

from __future__ import annotations

import io
import json

from shared import clients
from shared.billing.credit import ENTRIES, CreateCreditNote, CreditStore
from shared.billing.customers import COLLECTION as CUSTOMERS
from shared.domain.money import Money
from shared.invoicing.repository import CREDIT_NOTES, INVOICES
from tests.fixtures.renewals import Env
from tests.helpers import T0
from tests.integration.billing.conftest import Client
from tests.integration.billing.test_openapi_and_edge import _validate
from tests.integration.renewals.test_items import P1, bill, catalog, invoices_at, issue, subscribe


def entries(customer: str) -> list[tuple[str, int]]:
    ref = clients.firestore().collection(CUSTOMERS).document(customer).collection(ENTRIES)
    return [
        (d["entry"]["kind"], d["entry"]["amount"]["amount"])
        for d in (s.to_dict() for s in ref.order_by("seq").stream())
        if d
    ]


def balance(customer: str) -> int:
    return CreditStore().balance(customer).amount


def test_a_credit_note_credits_the_balance_which_pays_the_next_invoice_once(env: Env) -> None:
    api = Client()
    catalog()
    subscribe("sub_cn", [("seat-eur", 2)])
    inv0 = issue(bill(env, T0)[0], T0)
    iid = inv0["invoice_id"]
    assert inv0["total"] == 2380  # 2 x 10.00 + 19 % VAT

    note = {"amount": {"amount": 595, "currency": "EUR"}, "reason": "goodwill: outage on 2026-02-03"}
    a = api("POST", f"/invoices/{iid}/credit_notes", note, key="cn-1")
    assert (a.status, a.body["error"]) == (409, "invoice_not_paid")  # open: void it or wait for the payment
    invoices_at(T0).mark_paid(iid, "bank transfer 4711")

    a = api("POST", f"/invoices/{iid}/credit_notes", note, key="cn-1")
    assert a.status == 201, a.body
    out = a.body
    assert (out["total"], out["credited_to"], out["customer"]) == (
        {"amount": 595, "currency": "EUR"},
        "balance",
        "cus_items",
    )
    assert (out["balance_entry"]["kind"], out["balance_entry"]["amount"]["amount"]) == ("credit_note", 595)
    cn = clients.firestore().collection(CREDIT_NOTES).document(out["id"]).get().to_dict() or {}
    assert (cn["credited_to"], cn["reason"], cn["total"], cn["tax"]) == ("balance", note["reason"], 595, 95)
    assert cn["number"] == out["number"]
    assert cn["pdf_sha256"]
    _validate(api.ok("GET", "/openapi.json"), "/invoices/{invoice_id}/credit_notes", "POST", a)  # the documented shape
    replay = api("POST", f"/invoices/{iid}/credit_notes", note, key="cn-1")
    assert (replay.status, replay.headers.get("Idempotent-Replayed")) == (201, "true")
    assert replay.body == out
    assert balance("cus_items") == 595
    too_much = {"amount": {"amount": 2380 - 595 + 1, "currency": "EUR"}, "reason": "too much"}
    a = api("POST", f"/invoices/{iid}/credit_notes", too_much, key="cn-2")
    assert (a.status, a.body["error"]) == (422, "invalid_amount")
    assert api("POST", "/invoices/in_ghost/credit_notes", note, key="cn-3").status == 404

    # The next invoice is paid from the balance after tax, once, whatever the redeliveries.
    (due,) = bill(env, P1)
    inv1 = issue(due, P1)
    assert (inv1["total"], inv1["credit_applied"], inv1["amount_due"]) == (2380, 595, 2380 - 595)
    again = issue(due, P1)
    assert (again["credit_applied"], again["amount_due"]) == (595, 1785)
    assert balance("cus_items") == 0
    assert entries("cus_items") == [("credit_note", 595), ("application", -595)]

    # The operator credits the rest of the first invoice by CLI; the same command again issues nothing.
    from shared.ops.billing import main

    for expected in (201, 200):
        buf = io.StringIO()
        assert main(["credit", "note", iid, "--reason", "contract ended"], out=buf) == 0
        shown = json.loads(buf.getvalue())
        assert (shown["http_status"], shown["total"]["amount"]) == (expected, 1785)
    assert balance("cus_items") == 1785
    inv = clients.firestore().collection(INVOICES).document(iid).get().to_dict() or {}
    assert (inv["credited"], len(inv["credit_note_ids"])) == (2380, 2)
    buf = io.StringIO()
    assert main(["credit", "note", iid, "--reason", "more", "--amount", "1"], out=buf) == 1
    assert json.loads(buf.getvalue())["error"] == "invalid_amount"  # nothing left to credit


def test_a_crash_between_the_note_and_the_balance_entry_is_finished_by_the_retry(env: Env) -> None:
    catalog()
    subscribe("sub_crash", [("seat-eur", 1)])
    inv = issue(bill(env, T0)[0], T0)
    invoices_at(T0).mark_paid(inv["invoice_id"], "cheque")
    # The note is issued, then the process dies before the balance entry is written.
    from shared.invoicing.service import InvoiceService

    svc = InvoiceService(db=clients.firestore())
    svc.payments.credit_to_balance(inv["invoice_id"], "k1", Money(119, "EUR"), "goodwill")
    assert balance("cus_items") == 0
    body = CreateCreditNote.model_validate({"amount": {"amount": 119, "currency": "EUR"}, "reason": "goodwill"})
    status, out = CreditStore().credit_invoice(inv["invoice_id"], body, key="k1")
    assert (status, out["total"]["amount"]) == (201, 119)
    status, _ = CreditStore().credit_invoice(inv["invoice_id"], body, key="k1")
    assert status == 200
    assert balance("cus_items") == 119
    assert entries("cus_items") == [("credit_note", 119)]
    notes = clients.firestore().collection(CREDIT_NOTES).stream()
    assert len([n for n in notes if (n.to_dict() or {}).get("invoice_id") == inv["invoice_id"]]) == 1


def test_a_psp_refund_of_an_invoice_with_items_gives_a_numbered_credit_note_with_its_pdf(env: Env) -> None:
    """The refund path shares the credit note's document: a composed invoice's note renders its composed lines."""
    from tests.fixtures.invoices import received, refunded

    catalog(coupon={"id": "half", "percent_off": "50"})
    subscribe("sub_refund", [("seat-eur", 2)], discount={"coupon": "half"})
    inv = issue(bill(env, T0)[0], T0)
    invoices_at(T0).mark_paid(inv["invoice_id"], "bank transfer")
    ev = refunded(inv["invoice_id"], Money(inv["total"], "EUR"), "re_1", full=True)
    for _ in range(2):  # redelivered: one note
        invoices_at(T0).on_payment_fact(received(ev, "evt_refund_1"))
    notes = [
        n.to_dict() or {}
        for n in clients.firestore().collection(CREDIT_NOTES).stream()
        if (n.to_dict() or {}).get("invoice_id") == inv["invoice_id"]
    ]
    assert len(notes) == 1
    (cn,) = notes
    assert (cn["credited_to"], cn["total"], cn["discount"]) == ("refund", inv["total"], inv["discount"])
    assert cn["number"]
    assert cn["pdf_sha256"]
