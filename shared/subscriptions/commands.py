"""The subscriptions API's commands: bounded request models, validated before anything is read or written.

Bounds (ids, prices, periods, times, string sizes) keep every stored subscription far below Firestore's
limits and every period computable; the rules are documented in the README (Promises of the API).
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    RootModel,
    StringConstraints,
    field_validator,
    model_validator,
)

from shared.domain.calendar import CalendarError, zone
from shared.domain.money import CurrencyError, Money, exponent, max_minor
from shared.edge import BoundedDatetime, Code, FirestoreId, Name, Text
from shared.events.billing import CollectionMethod, Party, PaymentMethodRef
from shared.subscriptions.ids import subscription_id_problem

# The longest period a plan may have: 10 years. Beyond it period arithmetic soon runs past year 9999.
MAX_INTERVAL_COUNT = {"day": 3660, "week": 522, "month": 120, "year": 10}


def _subscription_id(value: str) -> str:
    problem = subscription_id_problem(value)
    if problem:
        raise ValueError(problem)
    return value


SubscriptionId = Annotated[FirestoreId, AfterValidator(_subscription_id)]
AccountName = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$")]
ZoneName = Annotated[str, StringConstraints(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_+/-]+$")]
Ref = Annotated[str, StringConstraints(min_length=1, max_length=255)]


class _In(BaseModel):
    # defer_build: validators are built on first use, not at import (cold start, README).
    model_config = ConfigDict(frozen=True, extra="forbid", defer_build=True)


class PlanLine(_In):
    description: Text = Field(min_length=1)
    quantity: int = Field(default=1, ge=1, le=1_000_000)
    unit_amount: Money
    tax_category: Code = "standard"


class PlanIn(_In):
    id: FirestoreId
    currency: str = Field(pattern=r"^[A-Z]{3}$")
    interval: Literal["day", "week", "month", "year"]
    interval_count: int = Field(default=1, ge=1, le=max(MAX_INTERVAL_COUNT.values()))
    lines: tuple[PlanLine, ...] = Field(min_length=1, max_length=100)

    @model_validator(mode="after")
    def _one_currency(self) -> PlanIn:
        try:
            exponent(self.currency)
        except CurrencyError as exc:
            raise ValueError(str(exc)) from exc
        if self.interval_count > MAX_INTERVAL_COUNT[self.interval]:
            raise ValueError(f"a period is at most {MAX_INTERVAL_COUNT[self.interval]} {self.interval}s (10 years)")
        bound, total = max_minor(self.currency), 0
        for line in self.lines:
            if line.unit_amount.currency != self.currency:
                raise ValueError(f"line {line.description!r} is not in the plan currency {self.currency}")
            if line.unit_amount.amount < 0:
                raise ValueError("plan prices cannot be negative")
            total += line.unit_amount.amount * line.quantity
            if total > bound:  # line x quantity and the sum: consumers add them up (int64 in Firestore)
                raise ValueError(f"the plan total must be at most {bound} minor units of {self.currency}")
        return self

    def total(self) -> Money:
        acc = Money.zero(self.currency)
        for line in self.lines:
            acc = acc + line.unit_amount.times(line.quantity)
        return acc


class CustomerIn(Party):
    """The buyer with every field bounded (the stored subscription must stay far below 1 MiB)."""

    id: FirestoreId
    name: Name
    vat_id: Annotated[str, StringConstraints(min_length=1, max_length=32)] | None = None
    email: Annotated[str, StringConstraints(min_length=3, max_length=254)] | None = None
    address_lines: tuple[Name, ...] = Field(default=(), max_length=10)


class PaymentMethodIn(PaymentMethodRef):
    """A stored payment method; ``psp`` must name a charging adapter (checked at creation)."""

    psp: Code
    account: AccountName = "default"
    customer_ref: Ref | None = Field(default=None, description="PSP customer id / shopperReference")
    method_ref: Ref = Field(description="payment method id / recurringDetailReference / mandate")


class CreateSubscription(_In):
    subscription_id: SubscriptionId | None = None
    customer: CustomerIn
    seller_entity: Code
    plan: PlanIn
    anchor_zone: ZoneName = "Etc/UTC"
    start_at: BoundedDatetime | None = Field(default=None, description="test clock only: when it starts")
    trial_days: int = Field(default=0, ge=0, le=730)
    collection: CollectionMethod = "charge_automatically"
    payment_method: PaymentMethodIn | None = None

    @field_validator("anchor_zone")
    @classmethod
    def _zone(cls, v: str) -> str:
        try:
            zone(v)
        except CalendarError as exc:
            raise ValueError(str(exc)) from exc
        return v

    @model_validator(mode="after")
    def _method(self) -> CreateSubscription:
        if self.collection == "charge_automatically" and self.payment_method is None:
            raise ValueError("charge_automatically needs a payment_method")
        if self.start_at is not None and self.start_at.tzinfo is None:
            raise ValueError("start_at needs a time zone")
        return self


class CancelSubscription(_In):
    at_period_end: bool = False
    at: BoundedDatetime | None = Field(default=None, description="test clock only")


class ChangePlan(_In):
    plan: PlanIn
    at: BoundedDatetime | None = Field(default=None, description="test clock only")


# -- subscriptions with items (priced from the catalog) -----------------------------------------------------------
MAX_DAYS_UNTIL_DUE = 365
PromotionCodeText = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9-]{1,50}$")]


class ItemRef(_In):
    """A catalog price (recurring) and how many of it."""

    price: FirestoreId
    quantity: int = Field(default=1, ge=1, le=1_000_000)


def _distinct(items: tuple[ItemRef, ...]) -> tuple[ItemRef, ...]:
    if len({i.price for i in items}) != len(items):
        raise ValueError("a price appears once per subscription (change its quantity instead)")
    return items


Items = Annotated[tuple[ItemRef, ...], Field(min_length=1, max_length=20), AfterValidator(_distinct)]


class DiscountIn(_In):
    """A coupon, or a promotion code a customer typed (exactly one)."""

    coupon: FirestoreId | None = None
    promotion_code: PromotionCodeText | None = None

    @model_validator(mode="after")
    def _one(self) -> DiscountIn:
        if (self.coupon is None) == (self.promotion_code is None):
            raise ValueError("give exactly one of coupon and promotion_code")
        return self


class CreateItemsSubscription(_In):
    """A subscription of catalog prices with quantities for a billing customer: one anchor, one invoice a period."""

    subscription_id: SubscriptionId | None = None
    customer: FirestoreId = Field(description="a billing customer (POST /customers); its currency is the invoices'")
    seller_entity: Code
    items: Items
    discount: DiscountIn | None = None
    anchor_zone: ZoneName | None = Field(default=None, description="default: the customer's time zone")
    start_at: BoundedDatetime | None = Field(default=None, description="test clock only: when it starts")
    trial_days: int = Field(default=0, ge=0, le=730)
    collection: CollectionMethod = "charge_automatically"
    days_until_due: int | None = Field(default=None, ge=0, le=MAX_DAYS_UNTIL_DUE)
    payment_method: PaymentMethodIn | None = Field(default=None, description="default: the customer's default")

    @field_validator("anchor_zone")
    @classmethod
    def _zone(cls, v: str | None) -> str | None:
        if v is not None:
            try:
                zone(v)
            except CalendarError as exc:
                raise ValueError(str(exc)) from exc
        return v

    @model_validator(mode="after")
    def _collection(self) -> CreateItemsSubscription:
        if (self.collection == "send_invoice") != (self.days_until_due is not None):
            raise ValueError("days_until_due is given for, and only for, send_invoice")
        if self.start_at is not None and self.start_at.tzinfo is None:
            raise ValueError("start_at needs a time zone")
        return self


class ChangeItems(_In):
    """The subscription's items from now on (the whole set): added, removed and re-quantified items are prorated."""

    items: Items
    at: BoundedDatetime | None = Field(default=None, description="test clock only")


class MigratePrice(_In):
    """Move the item of ``from_price`` to ``to_price`` (a new price of the catalog) from the next period on."""

    from_price: FirestoreId
    to_price: FirestoreId
    dry_run: bool = Field(default=False, description="answer the before/after (items, upcoming invoice), write nothing")
    at: BoundedDatetime | None = Field(default=None, description="test clock only")


class ApplyDiscount(DiscountIn):
    at: BoundedDatetime | None = Field(default=None, description="test clock only")


class CreateAnySubscription(RootModel[CreateSubscription | CreateItemsSubscription]):
    """POST /subscriptions: a plan of lines (``plan``) or catalog items (``items``); extra fields are refused."""
