"""The contract every PSP adapter fulfils, and the errors it raises.

Why a protocol: the webhook service (``shared.webhooks``) knows nothing about any PSP. An adapter turns
one raw HTTP delivery into verified, parsed notifications and each notification into at most one
canonical :class:`~shared.events.payments.PaymentEvent`. Adding a PSP is one module implementing
:class:`Adapter`, its fixtures, and one line in :mod:`shared.psp.registry`.

Errors carry the HTTP status the PSP must see; the service never guesses one.
"""

from __future__ import annotations

import datetime as dt
import functools
import hmac
from collections.abc import Mapping
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from typing import TYPE_CHECKING, Any, ClassVar, Protocol

from shared.domain.money import MAX_MAJOR_DIGITS, CurrencyError, Money, max_minor
from shared.events.payments import OurRefs, PaymentEvent

if TYPE_CHECKING:
    from shared.domain.declines import Decline

MAX_BODY_BYTES = 1024 * 1024


class WebhookError(Exception):
    """A delivery we refuse; ``status`` and ``code`` are what the PSP gets back."""

    default_status: ClassVar[int] = 400
    code: ClassVar[str] = "bad_request"

    def __init__(self, detail: str, *, status: int | None = None) -> None:
        super().__init__(detail)
        self.detail = detail
        self.status = self.default_status if status is None else status


class MalformedPayload(WebhookError):
    """Not the shape the PSP sends (bad JSON, missing field, bad form): 400."""

    default_status = 400
    code = "malformed_payload"


class InvalidSignature(WebhookError):
    """Authentication failed: 401, or what the PSP's scheme asks for (GoCardless: 498)."""

    default_status = 401
    code = "invalid_signature"


class ModeMismatch(WebhookError):
    """Authentic, but a test-mode event on a live endpoint (or the reverse): refused, never stored."""

    default_status = 400
    code = "livemode_mismatch"


class OutOfBounds(WebhookError):
    """Authentic and well-formed, but a value consumers cannot hold (an absurd or negative amount).

    Not a refusal: the service archives the notification as ``rejected`` with the reason, publishes
    nothing and answers 200, so the PSP stops retrying something that will never become acceptable.
    """

    default_status = 200
    code = "out_of_bounds"


@dataclass(frozen=True, slots=True)
class Delivery:
    """One HTTP request as received: the raw bytes are what signatures cover."""

    body: bytes
    headers: Mapping[str, str]  # case-insensitive (werkzeug Headers in production)
    content_type: str
    received_at: dt.datetime

    def header(self, name: str) -> str | None:
        value = self.headers.get(name)
        if value is None:
            lower = name.lower()
            value = next((v for k, v in self.headers.items() if k.lower() == lower), None)
        return value


@dataclass(frozen=True, slots=True)
class PspConfig:
    """Secrets and settings of one (psp, account), read from the environment."""

    psp: str
    account: str
    livemode: bool
    values: Mapping[str, str]

    def get(self, name: str) -> str:
        return self.values.get(name, "")

    def secrets(self, name: str) -> tuple[str, ...]:
        """A comma-separated list (several active secrets during a rotation)."""
        return _split(self.get(name))

    def keys(self, name: str) -> tuple[bytes, ...]:
        """:meth:`secrets` as HMAC keys (UTF-8 bytes)."""
        return _split_keys(self.get(name))


# Cached by the raw value: the split is redone on every delivery otherwise, and a rotated value is a new key.
@functools.lru_cache(maxsize=64)
def _split(raw: str) -> tuple[str, ...]:
    return tuple(s.strip() for s in raw.split(",") if s.strip())


@functools.lru_cache(maxsize=64)
def _split_keys(raw: str) -> tuple[bytes, ...]:
    return tuple(s.encode() for s in _split(raw))


@dataclass(frozen=True, slots=True)
class Notification:
    """One verified PSP notification (a batch delivery holds several)."""

    event_id: str  # the PSP's own id of the notification: the dedupe key with (psp, account)
    event_type: str
    payload: Mapping[str, Any] = field(repr=False)
    raw: str = field(repr=False, default="")  # the item's own text, for batch deliveries


class Adapter(Protocol):
    """One PSP's webhook scheme."""

    # Read-only members (class attributes of the adapters satisfy them).
    @property
    def name(self) -> str: ...
    @property
    def content_types(self) -> tuple[str, ...]: ...
    @property
    def required_env(self) -> tuple[str, ...]:
        """Without all of these an account is not configured (404)."""
        ...

    @property
    def optional_env(self) -> tuple[str, ...]: ...
    @property
    def headers_of_interest(self) -> tuple[str, ...]:
        """Archived with the payload (never signatures or credentials)."""
        ...

    @property
    def invalid_signature_status(self) -> int: ...
    @property
    def ack_body(self) -> str:
        """What a 2xx answer says (Adyen: ``[accepted]``)."""
        ...

    @property
    def ack_mimetype(self) -> str: ...

    def verify(self, delivery: Delivery, config: PspConfig) -> list[Notification]:
        """Authenticate the raw delivery and split it into notifications; raise WebhookError."""
        ...

    def normalise(self, note: Notification, config: PspConfig) -> PaymentEvent | None:
        """The canonical event, or None for a type we do not map (archived, acknowledged)."""
        ...


# -- helpers shared by adapters ----------------------------------------------------------------


def constant_time_in(candidate: str | bytes, expected: tuple[str | bytes, ...]) -> bool:
    """True when ``candidate`` equals any expected value; every comparison runs (no early exit)."""
    cand = candidate.encode() if isinstance(candidate, str) else candidate
    ok = False
    for e in expected:
        ok |= hmac.compare_digest(cand, e.encode() if isinstance(e, str) else e)
    return ok


def money_minor(value: Any, currency: Any) -> Money:
    """Integer minor units from a PSP (Stripe, Adyen, Checkout.com); anything else is malformed."""
    if type(value) is not int or not isinstance(currency, str) or len(currency) > 8:
        raise MalformedPayload(f"amount must be integer minor units with a currency, got {str(value)[:40]!r}")
    try:
        money = Money(value, currency.upper())
    except CurrencyError as exc:
        raise MalformedPayload(str(exc)) from exc
    _bounded(money)
    return money


def _bounded(money: Money) -> None:
    if not 0 <= money.amount <= max_minor(money.currency):
        raise OutOfBounds(f"amount outside 0..{max_minor(money.currency)} minor units of {money.currency}")


def money_decimal(value: Any, currency: Any) -> Money:
    """Major units as a decimal string (PayPal, Braintree); must be exact at the currency's exponent."""
    if not isinstance(value, str) or not isinstance(currency, str) or len(value) > 64 or len(currency) > 8:
        raise MalformedPayload(f"amount must be a short decimal string with a currency, got {str(value)[:40]!r}")
    try:
        d = Decimal(value.strip())
        if not d.is_finite():
            raise ValueError("not finite")
        if int(d.as_tuple().exponent) < -18:  # "1e-999999999" would cost a 10**999999999 denominator
            raise ValueError("too many decimals")
    except (InvalidOperation, ValueError) as exc:
        raise MalformedPayload(f"bad amount {value!r} {currency!r}: {exc}") from exc
    # Before any exact arithmetic: "1e999999999" is a valid Decimal whose integer value would not fit in memory.
    if d < 0 or (d and d.adjusted() >= MAX_MAJOR_DIGITS):
        raise OutOfBounds(f"amount {value[:40]!r} {currency[:8]!r} outside 0..{MAX_MAJOR_DIGITS} digits of major units")
    try:
        money = Money.parse_exact(value.strip(), currency.upper())
    except (InvalidOperation, CurrencyError, ValueError) as exc:
        raise MalformedPayload(f"bad amount {value!r} {currency!r}: {exc}") from exc
    _bounded(money)
    return money


def parse_time(value: Any) -> dt.datetime:
    """RFC 3339 string or unix seconds to an aware UTC datetime."""
    try:
        if isinstance(value, int) and not isinstance(value, bool):
            return dt.datetime.fromtimestamp(value, dt.UTC)
        if isinstance(value, str):
            t = dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
            return t if t.tzinfo else t.replace(tzinfo=dt.UTC)
    except (ValueError, OverflowError, OSError) as exc:
        raise MalformedPayload(f"bad timestamp {value!r}") from exc
    raise MalformedPayload(f"bad timestamp {value!r}")


REF_KEYS = ("customer_id", "subscription_id", "invoice_id", "attempt_id")


def refs_from(metadata: Any, **fallback: str | None) -> OurRefs:
    """Our references from a PSP metadata map (keys ``customer_id``, ``subscription_id``, ...)."""
    md = metadata if isinstance(metadata, Mapping) else {}
    values: dict[str, str | None] = {}
    for k in REF_KEYS:
        v = md.get(k)
        values[k] = str(v) if isinstance(v, str | int) and not isinstance(v, bool) and str(v) else fallback.get(k)
    return OurRefs(**values)


def mapping(value: Any) -> Mapping[str, Any]:
    """The value when it is a JSON object, else an empty one (optional sub-objects)."""
    return value if isinstance(value, Mapping) else {}


def obj(value: Any, what: str) -> Mapping[str, Any]:
    """A JSON object or a MalformedPayload naming what was expected."""
    if not isinstance(value, Mapping):
        raise MalformedPayload(f"{what} must be an object")
    return value


def text(value: Any, what: str) -> str:
    """A non-empty string or a MalformedPayload naming what was expected."""
    if not isinstance(value, str) or not value:
        raise MalformedPayload(f"{what} must be a non-empty string")
    return value


# The decline and dispute taxonomies load with the first failed payment or dispute, not with an adapter: a
# cold instance's first delivery is most often a success, and their tables, enums and dataclasses cost it a
# few milliseconds of CPU (README, "Deploy bundles, configuration rule, cold start").
def classify(psp: str, *codes: str | None, log_unknown: bool = True) -> Decline:
    """:func:`shared.domain.declines.classify`, its module imported on first use."""
    from shared.domain import declines

    return declines.classify(psp, *codes, log_unknown=log_unknown)


def event_fields(
    psp: str,
    *reasons: str | None,
    reason_code: str | None = None,
    due_by: dt.datetime | None = None,
    psp_status: str | None = None,
) -> dict[str, Any]:
    """:func:`shared.domain.disputes.event_fields`, its module imported on first use."""
    from shared.domain import disputes

    return disputes.event_fields(psp, *reasons, reason_code=reason_code, due_by=due_by, psp_status=psp_status)
