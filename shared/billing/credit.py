"""Customer credit balances: an immutable ledger per customer (``customers/{id}/balance_entries/{entry_id}``).

Every movement is one entry of the domain's :mod:`shared.domain.credit` (grant by an operator, credit from a
credit note, application to an invoice, reversal) whose id is its idempotency key (``application:<invoice_id>``,
``credit_note:<note_id>``, ``reversal:<entry_id>``, a grant's id from the request). Each entry is written by ONE
compare-and-set that reads the customer document and the whole ledger, lets the domain decide
(:func:`~shared.domain.credit.application`, :func:`~shared.domain.credit.reversal`), checks the resulting ledger
(:func:`~shared.domain.credit.check_ledger`: never negative, every reversal mirrors its entry), ``create()``s the
entry and moves the customer's ``balance`` by its amount in one batch conditioned on the customer's
``update_time``. Concurrent writers serialise on the customer document (the loser decides again on the new ledger),
so credit is never applied twice and the balance never goes negative; a redelivered application finds its entry and
returns the first decision.

The balance is held in the customer's currency; credit never pays an invoice in another currency (0 applied).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints

from shared.billing.customers import COLLECTION as CUSTOMERS
from shared.billing.deps import DEFAULT_DEPS, BillingDeps, BillingError, iso
from shared.billing.pagination import Page, PageRequest, list_page
from shared.domain import credit as ledger
from shared.domain.credit import CreditEntry, CreditError, EntryKind
from shared.domain.money import Money
from shared.edge import Amount, firestore_id_problem

ENTRIES = "balance_entries"
MAX_REF_CHARS = 100  # invoice and credit-note ids inside entry ids stay far below Firestore's id limit


class CreateCreditGrant(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    amount: Amount = Field(description="positive, in the customer's currency")
    reason: Annotated[str, StringConstraints(min_length=1, max_length=500)] | None = None


class ReverseEntry(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    reason: Annotated[str, StringConstraints(min_length=1, max_length=500)] | None = None


class BalanceEntryOut(BaseModel):
    object: Literal["balance_entry"] = "balance_entry"
    id: str
    customer: str
    kind: EntryKind
    amount: Money = Field(description="signed: credit added (+) or used / taken back (-)")
    balance_after: Money
    at: dt.datetime
    invoice_id: str | None
    credit_note_id: str | None
    reverses: str | None
    reason: str | None
    created_at: dt.datetime


class CreateCreditNote(BaseModel):
    """A credit note on a paid invoice whose amount goes to the customer's balance (not refunded)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    amount: Amount | None = Field(default=None, description="tax included, in the invoice's currency; default: all")
    reason: Annotated[str, StringConstraints(min_length=1, max_length=500)]


class CreditNoteOut(BaseModel):
    object: Literal["credit_note"] = "credit_note"
    id: str
    number: str
    invoice: str
    customer: str
    total: Money
    credited_to: Literal["balance"] = "balance"
    balance_entry: BalanceEntryOut


def entry_view(doc: dict[str, Any]) -> dict[str, Any]:
    e = doc["entry"]
    out = {"object": "balance_entry", **e, "customer": e["customer_id"], "balance_after": doc["balance_after"]}
    out.pop("customer_id")
    out["created_at"] = doc["created_at"]
    return dict(iso(out))


def _ref_id(value: str, what: str) -> str:
    problem = firestore_id_problem(value)
    if problem or len(value) > MAX_REF_CHARS:
        raise BillingError(422, f"invalid_{what}", f"{what} {problem or 'is too long'}")
    return value


Decide = Callable[[list[CreditEntry], dict[str, Any], dt.datetime], "tuple[Any, CreditEntry | None]"]


@dataclass(frozen=True, slots=True)
class CreditStore:
    deps: BillingDeps = DEFAULT_DEPS

    def _customer(self, customer_id: str) -> Any:
        return self.deps.db().collection(CUSTOMERS).document(customer_id)

    def _append(self, customer_id: str, decide: Decide) -> Any:
        """Run ``decide(entries, customer, now) -> (answer, entry|None)`` and write its entry atomically.

        Compare-and-set (:func:`shared.idempotency.retry_on_contention`): the entry's ``create()`` and the customer's
        new ``balance``/``balance_seq`` go in one batch conditioned on the customer's ``update_time`` as read, so
        of two concurrent writers one commits and the other decides again on the new ledger. Lock-free: a
        transaction would lock the customer and the whole ledger for every reader.
        """
        from google.api_core.exceptions import AlreadyExists, Conflict

        from shared.idempotency import Stale, precondition, retry_on_contention

        db = self.deps.db()
        cref = self._customer(customer_id)

        def step() -> Any:
            snap = cref.get()
            if not snap.exists:
                raise BillingError(404, "customer_not_found", customer_id)
            customer = snap.to_dict() or {}
            docs = [s.to_dict() or {} for s in cref.collection(ENTRIES).order_by("seq").stream()]
            seq, stored = int(customer.get("balance_seq", 0)), int(customer.get("balance", 0))
            if len(docs) != seq:
                raise Stale  # an entry committed between our two reads: read again
            entries = [CreditEntry.model_validate(d["entry"]) for d in docs]
            currency = str(customer["currency"])
            if ledger.balance(entries, currency).amount != stored:  # the sum IS the balance: never build on a lie
                raise RuntimeError(f"customer {customer_id}: balance {stored} is not the sum of its entries")
            now = self.deps.clock()
            answer, entry = decide(entries, customer, now)
            if entry is None:
                return answer
            try:
                ledger.check_ledger([*entries, entry], currency)
            except CreditError as exc:
                raise BillingError(409, "balance_conflict", str(exc)) from None
            after = stored + entry.amount.amount
            doc = {
                "entry": entry.model_dump(mode="json"),
                "seq": seq + 1,
                "balance_after": {"amount": after, "currency": currency},
                "created_at": now,
            }
            batch = db.batch()
            batch.create(cref.collection(ENTRIES).document(entry.id), doc)
            batch.update(cref, {"balance": after, "balance_seq": seq + 1}, option=precondition(snap.update_time))
            try:
                batch.commit()
            except (AlreadyExists, Conflict):
                raise Stale from None  # the same entry was written concurrently: decide again, it now exists
            return answer

        return retry_on_contention(step, what=cref.path)

    def grant(
        self, customer_id: str, body: CreateCreditGrant, *, entry_id: str | None = None
    ) -> tuple[int, dict[str, Any]]:
        """An operator's grant: 201 with the entry (200 when ``entry_id`` was granted already with this amount)."""
        import uuid

        key = entry_id or f"grant_{uuid.uuid4().hex[:24]}"

        def decide(entries: list[CreditEntry], customer: dict[str, Any], now: dt.datetime) -> Any:
            if body.amount.currency != customer["currency"]:
                raise BillingError(422, "currency_mismatch", f"the balance is in {customer['currency']}")
            if body.amount.amount <= 0:
                raise BillingError(422, "invalid_amount", "a grant is positive")
            existing = next((e for e in entries if e.id == key), None)
            if existing is not None:
                if (existing.kind, existing.amount, existing.reason) != (EntryKind.GRANT, body.amount, body.reason):
                    raise BillingError(409, "resource_exists", f"balance entry {key} exists")
                return 200, None
            return 201, ledger.grant(customer_id, key, body.amount, now, reason=body.reason)

        status = self._append(customer_id, decide)
        return status, self.show_entry(customer_id, key)

    def credit_from_note(self, customer_id: str, note_id: str, amount: Money) -> Money:
        """Credit a credit note's amount to the balance, once per credit note (a redelivery adds nothing)."""
        _ref_id(note_id, "credit_note_id")

        def decide(entries: list[CreditEntry], customer: dict[str, Any], now: dt.datetime) -> Any:
            if amount.currency != customer["currency"]:
                raise BillingError(422, "currency_mismatch", f"the balance is in {customer['currency']}")
            if any(e.id == ledger.credit_note_id(note_id) for e in entries):
                return amount, None
            return amount, ledger.from_credit_note(customer_id, note_id, amount, now)

        result: Money = self._append(customer_id, decide)
        return result

    def credit_invoice(
        self, invoice_id: str, body: CreateCreditNote, *, key: str | None = None
    ) -> tuple[int, dict[str, Any]]:
        """Issue a credit note on a paid invoice and credit its total to the customer's balance, each once per ``key``.

        The customer must be a billing customer billed in the invoice's currency (checked before anything is
        written). The note is created once per key (:meth:`shared.invoicing.payments.PaymentFacts.credit_to_balance`),
        then the balance entry ``credit_note:<note id>`` once per note: a retry with the same key after a crash
        between the two finishes the second, and a replay adds nothing. The balance pays the next invoices
        (:meth:`apply_credit`), each once.
        """
        import uuid

        from shared.invoicing.payments import CreditRefused
        from shared.invoicing.repository import INVOICES
        from shared.invoicing.service import InvoiceService

        _ref_id(invoice_id, "invoice_id")
        db = self.deps.db()
        inv = db.collection(INVOICES).document(invoice_id).get().to_dict()
        if inv is None:
            raise BillingError(404, "invoice_not_found", invoice_id)
        customer_id = str(inv["buyer"]["id"])
        customer = self._customer(customer_id).get().to_dict()
        if customer is None:
            raise BillingError(422, "not_a_billing_customer", f"{customer_id} has no credit balance; refund instead")
        if customer["currency"] != inv["currency"]:
            raise BillingError(422, "currency_mismatch", f"the balance is in {customer['currency']}")
        svc = InvoiceService(db=db, clock=self.deps.clock)
        try:
            note = svc.payments.credit_to_balance(invoice_id, key or uuid.uuid4().hex, body.amount, body.reason)
        except CreditRefused as exc:
            raise BillingError(exc.status, exc.code, exc.detail) from None
        cn_id = note["credit_note_id"]
        existed = self._customer(customer_id).collection(ENTRIES).document(ledger.credit_note_id(cn_id)).get().exists
        self.credit_from_note(customer_id, cn_id, note["total"])
        out = {
            "object": "credit_note",
            "id": cn_id,
            "number": note["number"],
            "invoice": invoice_id,
            "customer": customer_id,
            "total": note["total"].as_dict(),
            "credited_to": "balance",
            "balance_entry": self.show_entry(customer_id, ledger.credit_note_id(cn_id)),
        }
        return (200 if existed else 201), out

    def apply_credit(self, customer_id: str, invoice_id: str, amount_due: Money) -> Money:
        """The credit that pays ``invoice_id`` (``min(balance, amount_due)``), decided once per invoice.

        The invoicing side calls it at finalization; a retry, a redelivery or a concurrent call for the same invoice
        returns the first decision and writes nothing. Credit in another currency than ``amount_due``'s pays nothing.
        """
        _ref_id(invoice_id, "invoice_id")

        def decide(entries: list[CreditEntry], customer: dict[str, Any], now: dt.datetime) -> Any:
            if amount_due.currency != customer["currency"]:
                return Money.zero(amount_due.currency), None
            a = ledger.application(
                entries, customer_id=customer_id, invoice_id=invoice_id, amount_due=amount_due, at=now
            )
            return a.amount, a.entry

        result: Money = self._append(customer_id, decide)
        return result

    def reverse(self, customer_id: str, entry_id: str, *, reason: str | None = None) -> dict[str, Any]:
        """Undo an entry (a voided invoice's application, a mistaken grant while its credit is unspent); once."""

        def decide(entries: list[CreditEntry], customer: dict[str, Any], now: dt.datetime) -> Any:
            if not any(e.id == entry_id for e in entries):
                raise BillingError(404, "balance_entry_not_found", entry_id)
            try:
                return None, ledger.reversal(entries, entry_id, now, reason=reason)
            except CreditError as exc:
                raise BillingError(409, "not_reversible", str(exc)) from None

        self._append(customer_id, decide)
        return self.show_entry(customer_id, ledger.reversal_id(entry_id))

    def balance(self, customer_id: str) -> Money:
        snap = self._customer(customer_id).get()
        if not snap.exists:
            raise BillingError(404, "customer_not_found", customer_id)
        doc = snap.to_dict() or {}
        return Money(int(doc.get("balance", 0)), str(doc["currency"]))

    def show_entry(self, customer_id: str, entry_id: str) -> dict[str, Any]:
        snap = self._customer(customer_id).collection(ENTRIES).document(entry_id).get()
        if not snap.exists:
            raise BillingError(404, "balance_entry_not_found", entry_id)
        return entry_view(snap.to_dict() or {})

    def list_entries(self, customer_id: str, page: PageRequest) -> Page:
        if not self._customer(customer_id).get().exists:
            raise BillingError(404, "customer_not_found", customer_id)
        col = self._customer(customer_id).collection(ENTRIES)
        return list_page(col, f"/customers/{customer_id}/balance_entries", page, entry_view)
