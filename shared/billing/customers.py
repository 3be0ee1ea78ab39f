"""Customers as their own documents (``customers/{id}``): who is billed, where, in which currency, how they pay.

A customer is the buyer every subscription and invoice names; an invoice freezes a copy of it at finalization
(:meth:`Customer.party`), so editing a customer never rewrites an issued invoice. Tax ids are checked for their
format as the tax rules read them (:func:`shared.domain.tax.vat_id_well_formed`; a VIES lookup is onboarding's job),
the time zone is an IANA name, the currency an active ISO 4217 code (the customer's credit balance is held in it,
so it never changes), and each PSP account carries the PSP's customer id and the stored payment methods, one of
which may be the default.
"""

from __future__ import annotations

import datetime as dt
import uuid
from dataclasses import dataclass
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    ValidationError,
    field_validator,
    model_validator,
)

from shared.billing.deps import DEFAULT_DEPS, BillingDeps, BillingError, iso
from shared.billing.pagination import Page, PageRequest, list_page
from shared.domain.calendar import CalendarError, zone
from shared.domain.money import CurrencyError, exponent
from shared.domain.tax import EU, normalize_vat_id, vat_id_well_formed
from shared.edge import FirestoreId, Name
from shared.events.billing import Party, PaymentMethodRef

COLLECTION = "customers"
ID_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.:-]{0,99}$"  # the catalog's id rule: a Firestore id and a path segment


def _currency(value: str) -> str:
    try:
        exponent(value)
    except CurrencyError as exc:
        raise ValueError(str(exc)) from exc
    return value


def _zone(value: str) -> str:
    try:
        zone(value)
    except CalendarError as exc:
        raise ValueError(str(exc)) from exc
    return value


BillingId = Annotated[FirestoreId, StringConstraints(pattern=ID_PATTERN)]
Currency = Annotated[str, StringConstraints(pattern=r"^[A-Z]{3}$"), AfterValidator(_currency)]
Country = Annotated[str, StringConstraints(pattern=r"^[A-Z]{2}$")]
ZoneName = Annotated[str, StringConstraints(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_+/-]+$")]
TimeZone = Annotated[ZoneName, AfterValidator(_zone)]
Email = Annotated[str, StringConstraints(min_length=3, max_length=254, pattern=r"^[^@\s]+@[^@\s]+\.[^@\s]+$")]
AccountName = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$")]
PspName = Annotated[str, StringConstraints(pattern=r"^[a-z][a-z0-9_]{0,31}$")]
Ref = Annotated[str, StringConstraints(min_length=1, max_length=255)]
MethodType = Annotated[str, StringConstraints(pattern=r"^[a-z][a-z0-9_]{0,31}$")]


class _In(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class Address(_In):
    line1: Name
    line2: Name | None = None
    city: Name | None = None
    postal_code: Annotated[str, StringConstraints(min_length=1, max_length=20)] | None = None
    region: Name | None = None


class TaxId(_In):
    """``eu_vat``: an EU VAT id, normalised, whose VIES format matches its country prefix (``EL`` is Greece)."""

    type: Literal["eu_vat"] = "eu_vat"
    value: Annotated[str, StringConstraints(min_length=3, max_length=32)]

    @field_validator("value")
    @classmethod
    def _format(cls, raw: str) -> str:
        value = normalize_vat_id(raw)
        country = "GR" if value[:2] == "EL" else value[:2]
        if country not in EU or not vat_id_well_formed(value, country):
            raise ValueError("not a well-formed EU VAT id (country prefix and that country's format)")
        return value

    @property
    def country(self) -> str:
        return "GR" if self.value[:2] == "EL" else self.value[:2]


class StoredMethod(_In):
    """A payment method stored at the PSP (its id only: card data never reaches us)."""

    method_ref: Ref = Field(description="payment method id / recurringDetailReference / mandate / vault token")
    type: MethodType | None = Field(default=None, description="card, sepa_debit, paypal, ...")


class PspAccount(_In):
    psp: PspName
    account: AccountName = "default"
    customer_ref: Ref | None = Field(default=None, description="the PSP's customer id / shopperReference")
    payment_methods: tuple[StoredMethod, ...] = Field(default=(), max_length=20)

    @model_validator(mode="after")
    def _unique(self) -> PspAccount:
        refs = [m.method_ref for m in self.payment_methods]
        if len(set(refs)) != len(refs):
            raise ValueError("payment methods are listed once each")
        return self


class DefaultMethod(_In):
    psp: PspName
    account: AccountName = "default"
    method_ref: Ref


class _CustomerFields(_In):
    legal_name: Name
    country: Country = Field(description="ISO 3166-1 alpha-2: where the customer is established (tax)")
    address: Address | None = None
    tax_ids: tuple[TaxId, ...] = Field(default=(), max_length=5)
    time_zone: TimeZone = "Etc/UTC"
    invoice_email: Email | None = None
    tax_exempt: bool = False
    psp_accounts: tuple[PspAccount, ...] = Field(default=(), max_length=10)
    default_payment_method: DefaultMethod | None = None

    @model_validator(mode="after")
    def _coherent(self) -> _CustomerFields:
        keys = [(a.psp, a.account) for a in self.psp_accounts]
        if len(set(keys)) != len(keys):
            raise ValueError("a PSP account is listed once")
        d = self.default_payment_method
        if d is not None and not any(
            (a.psp, a.account) == (d.psp, d.account) and any(m.method_ref == d.method_ref for m in a.payment_methods)
            for a in self.psp_accounts
        ):
            raise ValueError("default_payment_method must be one of the stored payment methods")
        return self


class CreateCustomer(_CustomerFields):
    id: BillingId | None = Field(default=None, description="default: generated (cus_...)")
    currency: Currency = Field(description="ISO 4217; invoices and the credit balance are in it; never changes")


class UpdateCustomer(_In):
    """Fields to replace (absent: unchanged; ``null`` clears an optional one). The currency never changes."""

    legal_name: Name | None = None
    country: Country | None = None
    address: Address | None = None
    tax_ids: tuple[TaxId, ...] | None = Field(default=None, max_length=5)
    time_zone: TimeZone | None = None
    invoice_email: Email | None = None
    tax_exempt: bool | None = None
    psp_accounts: tuple[PspAccount, ...] | None = Field(default=None, max_length=10)
    default_payment_method: DefaultMethod | None = None


class MoneyOut(BaseModel):
    amount: int
    currency: str


class CustomerOut(BaseModel):
    object: Literal["customer"] = "customer"
    id: str
    legal_name: str
    country: str
    address: Address | None
    tax_ids: list[TaxId]
    currency: str
    time_zone: str
    invoice_email: str | None
    tax_exempt: bool
    psp_accounts: list[PspAccount]
    default_payment_method: DefaultMethod | None
    balance: MoneyOut = Field(description="credit available (sum of the balance entries), never negative")
    created_at: dt.datetime
    updated_at: dt.datetime


@dataclass(frozen=True, slots=True)
class Customer:
    """A stored customer (the document as read)."""

    doc: dict[str, Any]

    @property
    def id(self) -> str:
        return str(self.doc["id"])

    @property
    def currency(self) -> str:
        return str(self.doc["currency"])

    def party(self) -> Party:
        """The buyer as an invoice freezes it: name, country, the VAT id of its own country, exemption, address."""
        tax_ids = [TaxId.model_validate(t) for t in self.doc.get("tax_ids") or []]
        own = next((t.value for t in tax_ids if t.country == self.doc["country"]), None)
        addr = self.doc.get("address") or {}
        city = " ".join(x for x in (addr.get("postal_code"), addr.get("city")) if x)
        lines = tuple(x for x in (addr.get("line1"), addr.get("line2"), city or None, addr.get("region")) if x)
        return Party(
            id=self.id,
            name=self.doc["legal_name"],
            country=self.doc["country"],
            vat_id=own or (tax_ids[0].value if tax_ids else None),
            tax_exempt=bool(self.doc.get("tax_exempt")),
            email=self.doc.get("invoice_email"),
            address_lines=lines,
        )

    def default_payment_method(self) -> PaymentMethodRef | None:
        """What a renewal charges, with the PSP's customer id of that account."""
        d = self.doc.get("default_payment_method")
        if not d:
            return None
        acct = next(a for a in self.doc["psp_accounts"] if (a["psp"], a["account"]) == (d["psp"], d["account"]))
        return PaymentMethodRef(
            psp=d["psp"], account=d["account"], customer_ref=acct.get("customer_ref"), method_ref=d["method_ref"]
        )


def sync_subscriptions(db: Any, customer: Customer) -> int:
    """Carry a customer's change to its subscriptions with items; -> how many changed.

    The subscription holds the buyer its next invoice freezes (:meth:`Customer.party`: name, address, tax id,
    exemption) and, when it has no method of its own (``payment_method_from == "customer"``), the customer's default
    payment method. Why copied here and not read at each renewal: the planner reads one document per subscription.
    Each subscription is written in a transaction only if this customer version is newer than the one it last
    followed (``customer_synced_at``), so concurrent updates never leave an older version behind. A cleared default
    leaves the subscription with the method it had; an invoice already issued keeps its buyer and method.
    """
    from google.cloud import firestore
    from google.cloud.firestore_v1.base_query import FieldFilter

    from shared.renewals.repository import subs

    method = customer.default_payment_method()
    party = customer.party().model_dump(mode="json")
    version = customer.doc["updated_at"]
    changed = 0
    for snap in subs(db).where(filter=FieldFilter("customer_id", "==", customer.id)).stream():
        if "payment_method_from" not in (snap.to_dict() or {}):
            continue  # a subscription of plan lines carries its own buyer

        @firestore.transactional
        def txn(transaction: Any, ref: Any = snap.reference) -> bool:
            d = ref.get(transaction=transaction).to_dict() or {}
            seen = d.get("customer_synced_at")
            if seen is not None and seen >= version:
                return False
            update: dict[str, Any] = {"customer": party, "customer_synced_at": version}
            if d.get("payment_method_from") == "customer" and method is not None:
                update["payment_method"] = method.model_dump(mode="json")
            transaction.update(ref, update)
            return True

        changed += txn(db.transaction())
    return changed


def view(doc: dict[str, Any]) -> dict[str, Any]:
    out = {
        "object": "customer",
        **{k: doc.get(k) for k in CustomerOut.model_fields if k not in ("object", "balance")},
        "balance": {"amount": int(doc.get("balance", 0)), "currency": doc["currency"]},
    }
    return dict(iso(out))


def check_psps(accounts: tuple[PspAccount, ...]) -> None:
    from shared.charging.registry import known_psps

    for a in accounts:
        if a.psp not in known_psps():
            raise BillingError(422, "unknown_psp", f"no charging adapter for PSP {a.psp!r}")


def new_id(prefix: str) -> str:
    return f"{prefix}_{uuid.uuid4().hex[:24]}"


@dataclass(frozen=True, slots=True)
class CustomerStore:
    deps: BillingDeps = DEFAULT_DEPS

    def collection(self) -> Any:
        return self.deps.db().collection(COLLECTION)

    def create(self, body: CreateCustomer, *, derived_id: str | None = None) -> tuple[int, dict[str, Any]]:
        """201 with the customer; an explicit id that exists is 409 ``resource_exists`` (200 for the same body)."""
        from google.api_core.exceptions import AlreadyExists, Conflict

        from shared.idempotency import payload_hash

        check_psps(body.psp_accounts)
        now = self.deps.clock()
        cid = body.id or derived_id or new_id("cus")
        fields = body.model_dump(mode="json", exclude={"id"})
        doc = {**fields, "id": cid, "balance": 0, "created_at": now, "updated_at": now}
        doc["request_hash"] = payload_hash(fields)
        ref = self.collection().document(cid)
        try:
            ref.create(doc)
        except (AlreadyExists, Conflict):
            existing = ref.get().to_dict() or {}
            if existing.get("request_hash") != doc["request_hash"]:
                raise BillingError(409, "resource_exists", f"customer {cid} exists") from None
            return 200, view(existing)
        return 201, view(doc)

    def get(self, customer_id: str) -> Customer:
        snap = self.collection().document(customer_id).get()
        if not snap.exists:
            raise BillingError(404, "customer_not_found", customer_id)
        return Customer(snap.to_dict() or {})

    def show(self, customer_id: str) -> dict[str, Any]:
        return view(self.get(customer_id).doc)

    def update(self, customer_id: str, body: UpdateCustomer, raw_keys: frozenset[str]) -> dict[str, Any]:
        """Replace the fields present in the request (``raw_keys``), re-checked as a whole (compare-and-set)."""
        from shared.idempotency import update_if_unchanged

        ref = self.collection().document(customer_id)
        changes = {k: v for k, v in body.model_dump(mode="json").items() if k in raw_keys}
        if body.psp_accounts is not None:
            check_psps(body.psp_accounts)
        out: dict[str, Any] = {}

        def change(doc: dict[str, Any] | None) -> dict[str, Any]:
            if doc is None:
                raise BillingError(404, "customer_not_found", customer_id)
            merged = {k: doc.get(k) for k in _CustomerFields.model_fields} | changes
            try:
                checked = _CustomerFields.model_validate({k: v for k, v in merged.items() if v is not None})
            except ValidationError as exc:
                detail = exc.errors(include_url=False, include_context=False, include_input=False)
                raise BillingError(422, "invalid_request", detail) from None
            update = {**checked.model_dump(mode="json"), "updated_at": self.deps.clock()}
            out["doc"] = {**doc, **update}
            return update

        update_if_unchanged(ref, change)
        sync_subscriptions(self.deps.db(), Customer(out["doc"]))
        return view(out["doc"])

    def list(self, page: PageRequest) -> Page:
        return list_page(self.collection(), "/customers", page, view)
