"""One decline taxonomy for every PSP: what a refusal means, whether retrying can succeed, and when.

Why: each PSP speaks its own codes (Stripe ``decline_code``/``code``, Adyen ``refusalReasonCode`` /
``refusalReason`` / raw acquirer responses, PayPal processor responses and capture denial reasons,
GoCardless failure causes and scheme reason codes, Braintree processor response codes and gateway
rejections, Checkout.com response codes). Dunning must not know any of them: it asks one question,
:func:`classify`, and gets a :class:`Decline` with a canonical :class:`Category`, a retry class and the
advised earliest retry time. Pure: no I/O, no clock; the one side effect is a structured log line for a
code nobody mapped yet (reviewed, then added here).

Retry classes:

* ``hard``: another attempt with the same credentials cannot succeed (or is forbidden by network rules):
  dunning stops at once;
* ``customer``: only the customer can unblock it (authentication required): dunning asks them
  (``payment.action_required``) and never retries blindly;
* ``soft``: a later attempt may succeed; :meth:`Decline.retry_at` is the earliest sensible time (e.g.
  insufficient funds: after the next typical pay day, at most 3 days; processing error: hours).

Unknown codes map to ``unknown``: soft, on the standard schedule (no advice), logged with psp and code.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from enum import StrEnum
from typing import Any, Literal


class Category(StrEnum):
    INSUFFICIENT_FUNDS = "insufficient_funds"
    LIMIT_EXCEEDED = "limit_exceeded"
    DO_NOT_HONOR = "do_not_honor"
    TRY_AGAIN_LATER = "try_again_later"
    PROCESSING_ERROR = "processing_error"
    CONFIGURATION_ERROR = "configuration_error"
    AUTHENTICATION_REQUIRED = "authentication_required"
    EXPIRED_CARD = "expired_card"
    LOST_OR_STOLEN = "lost_or_stolen"
    FRAUD_SUSPECTED = "fraud_suspected"
    INVALID_ACCOUNT = "invalid_account"
    INVALID_AMOUNT = "invalid_amount"
    CARD_NOT_SUPPORTED = "card_not_supported"
    AUTHORIZATION_REVOKED = "authorization_revoked"
    RETRY_NOT_PERMITTED = "retry_not_permitted"
    MANDATE_INVALID = "mandate_invalid"
    ACCOUNT_CLOSED = "account_closed"
    BLOCKED_BY_RISK = "blocked_by_risk"
    UNKNOWN = "unknown"


RetryClass = Literal["soft", "hard", "customer"]


def next_payday(after: dt.datetime) -> dt.datetime:
    """The first typical pay day (the 1st or the 15th of a month, 06:00 UTC) strictly after ``after``."""
    t = after.astimezone(dt.UTC)
    for months in range(3):
        y, m = t.year + (t.month - 1 + months) // 12, (t.month - 1 + months) % 12 + 1
        for day in (1, 15):
            cand = dt.datetime(y, m, day, 6, tzinfo=dt.UTC)
            if cand > t:
                return cand
    raise AssertionError("unreachable: a pay day falls within any three months")


def _after_payday(failed_at: dt.datetime) -> dt.datetime:
    """Insufficient funds: after the next pay day at least a day away, but never later than 3 days."""
    return min(failed_at + dt.timedelta(days=3), next_payday(failed_at + dt.timedelta(days=1)))


def _delay(**kw: float) -> Callable[[dt.datetime], dt.datetime]:
    d = dt.timedelta(**kw)
    return lambda failed_at: failed_at + d


@dataclass(frozen=True, slots=True)
class Advice:
    """How a category is retried; ``earliest`` maps the failure time to the advised earliest retry."""

    retry: RetryClass
    earliest: Callable[[dt.datetime], dt.datetime] | None = None
    summary: str = ""


ADVICE: dict[Category, Advice] = {
    Category.INSUFFICIENT_FUNDS: Advice("soft", _after_payday, "after the next pay day (1st/15th), 1 to 3 days"),
    Category.LIMIT_EXCEEDED: Advice("soft", _delay(days=1), "1 day (limits reset daily)"),
    Category.DO_NOT_HONOR: Advice("soft", _delay(days=1), "1 day"),
    Category.TRY_AGAIN_LATER: Advice("soft", _delay(hours=4), "4 hours"),
    Category.PROCESSING_ERROR: Advice("soft", _delay(hours=2), "2 hours"),
    Category.CONFIGURATION_ERROR: Advice("soft", None, "standard schedule (an operator must fix the account)"),
    Category.UNKNOWN: Advice("soft", None, "standard schedule; logged for review"),
    Category.AUTHENTICATION_REQUIRED: Advice("customer", None, "never blindly: the customer is asked"),
    Category.EXPIRED_CARD: Advice("hard", None, "never"),
    Category.LOST_OR_STOLEN: Advice("hard", None, "never"),
    Category.FRAUD_SUSPECTED: Advice("hard", None, "never"),
    Category.INVALID_ACCOUNT: Advice("hard", None, "never"),
    Category.INVALID_AMOUNT: Advice("hard", None, "never"),
    Category.CARD_NOT_SUPPORTED: Advice("hard", None, "never"),
    Category.AUTHORIZATION_REVOKED: Advice("hard", None, "never"),
    Category.RETRY_NOT_PERMITTED: Advice("hard", None, "never"),
    Category.MANDATE_INVALID: Advice("hard", None, "never"),
    Category.ACCOUNT_CLOSED: Advice("hard", None, "never"),
    Category.BLOCKED_BY_RISK: Advice("hard", None, "never"),
}


@dataclass(frozen=True, slots=True)
class Decline:
    """A PSP refusal in canonical terms; ``code`` is the PSP code it was recognised from (None: unknown)."""

    category: Category
    psp: str
    code: str | None = None

    @property
    def advice(self) -> Advice:
        return ADVICE[self.category]

    @property
    def retryable(self) -> bool:
        """A later automatic attempt may succeed (soft)."""
        return self.advice.retry == "soft"

    @property
    def action_required(self) -> bool:
        """Only the customer can unblock it (authentication): ask them, never retry blindly."""
        return self.advice.retry == "customer"

    def retry_at(self, failed_at: dt.datetime) -> dt.datetime | None:
        """The advised earliest retry; None for hard and customer declines, or no advice (standard schedule)."""
        fn = self.advice.earliest
        return fn(failed_at) if fn is not None and self.retryable else None

    def event_fields(self, failed_at: dt.datetime) -> dict[str, Any]:
        """The canonical fields of a ``payment.failed`` fact (``retryable``, ``category``, ``retry_at``)."""
        return {"retryable": self.retryable, "category": self.category.value, "retry_at": self.retry_at(failed_at)}


# -- the tables ------------------------------------------------------------------------------------
Table = dict[str, Category]
C = Category


def _group(table: Table, category: Category, codes: str) -> None:
    """``codes`` whitespace-separated (``|`` separates codes that contain spaces)."""
    parts = codes.split("|") if "|" in codes else codes.split()
    for code in parts:
        key = _norm(code)
        if key:
            assert key not in table, f"{code!r} mapped twice"
            table[key] = category


def _norm(code: str) -> str:
    return " ".join(code.strip().lower().split())


# Stripe: decline codes (docs.stripe.com/declines/codes) and the error codes a failed PaymentIntent carries.
STRIPE: Table = {}
_group(STRIPE, C.INSUFFICIENT_FUNDS, "insufficient_funds balance_insufficient")
_group(STRIPE, C.LIMIT_EXCEEDED, "card_velocity_exceeded withdrawal_count_exceeded")
_group(
    STRIPE,
    C.DO_NOT_HONOR,
    "do_not_honor generic_decline call_issuer card_declined no_action_taken approve_with_id not_permitted "
    "payment_method_provider_decline payment_method_customer_decline bank_account_declined refer_to_customer "
    "requires_payment_method canceled",
)
_group(
    STRIPE,
    C.TRY_AGAIN_LATER,
    "try_again_later issuer_not_available reenter_transaction duplicate_transaction card_decline_rate_limit_exceeded "
    "payment_method_provider_timeout payment_intent_payment_attempt_failed payment_intent_payment_attempt_expired",
)
_group(STRIPE, C.PROCESSING_ERROR, "processing_error")
_group(STRIPE, C.CONFIGURATION_ERROR, "testmode_decline payment_method_not_available payment_method_unexpected_state")
_group(
    STRIPE,
    C.AUTHENTICATION_REQUIRED,
    "authentication_required payment_intent_authentication_failure payment_intent_action_required offline_pin_required "
    "online_or_offline_pin_required incorrect_pin invalid_pin pin_try_exceeded invoice_payment_intent_requires_action "
    "requires_action",
)
_group(STRIPE, C.EXPIRED_CARD, "expired_card expired_payment_method")
_group(STRIPE, C.LOST_OR_STOLEN, "lost_card stolen_card pickup_card")
_group(STRIPE, C.FRAUD_SUSPECTED, "fraudulent merchant_blacklist security_violation")
_group(
    STRIPE,
    C.INVALID_ACCOUNT,
    "incorrect_number invalid_number incorrect_cvc invalid_cvc invalid_expiry_month invalid_expiry_year "
    "invalid_account incorrect_zip incorrect_address new_account_information_available no_account "
    "account_number_invalid "
    "routing_number_invalid bank_account_unusable bank_account_restricted payment_method_unactivated "
    "payment_method_restricted account_invalid",
)
_group(STRIPE, C.INVALID_AMOUNT, "invalid_amount invalid_charge_amount amount_too_large amount_too_small")
_group(
    STRIPE,
    C.CARD_NOT_SUPPORTED,
    "card_not_supported currency_not_supported transaction_not_allowed service_not_allowed restricted_card "
    "invalid_card_type payment_method_currency_mismatch payment_method_unsupported_type sepa_unsupported_account",
)
_group(
    STRIPE,
    C.AUTHORIZATION_REVOKED,
    "revocation_of_authorization revocation_of_all_authorizations stop_payment_order debit_not_authorized",
)
_group(STRIPE, C.RETRY_NOT_PERMITTED, "do_not_try_again")
_group(
    STRIPE,
    C.MANDATE_INVALID,
    "payment_intent_mandate_invalid billing_invalid_mandate india_recurring_payment_mandate_canceled",
)
_group(STRIPE, C.ACCOUNT_CLOSED, "account_closed")

# Adyen: refusalReasonCode numbers and refusalReason texts (docs.adyen.com/development-resources/refusal-reasons).
ADYEN: Table = {}
_group(ADYEN, C.INSUFFICIENT_FUNDS, "12|not enough balance")
_group(ADYEN, C.LIMIT_EXCEEDED, "28|29|withdrawal amount exceeded|withdrawal count exceeded")
_group(ADYEN, C.DO_NOT_HONOR, "2|3|15|27|refused|referral|cancelled|declined non generic")
_group(ADYEN, C.TRY_AGAIN_LATER, "9|issuer unavailable")
_group(ADYEN, C.PROCESSING_ERROR, "4|21|acquirer error|not submitted")
_group(
    ADYEN,
    C.AUTHENTICATION_REQUIRED,
    "11|16|17|18|19|33|36|37|38|39|40|41|42|43|44|45|3d not authenticated|shopper cancelled|invalid pin|"
    "pin tries exceeded|pin validation not possible|card requires online pin|mobile pin required|contactless fallback|"
    "authentication required|rreq not received from ds|current aid is in penalty box.|current aid is in penalty box|"
    "cvm required restart payment|3ds authentication error|online pin required|try another interface|"
    "chip downgrade mode",
)
_group(ADYEN, C.EXPIRED_CARD, "6|expired card")
_group(ADYEN, C.LOST_OR_STOLEN, "5|blocked card|card lost|card stolen|lost card|stolen card")
_group(ADYEN, C.FRAUD_SUSPECTED, "14|20|31|acquirer fraud|fraud|issuer suspected fraud")
_group(ADYEN, C.BLOCKED_BY_RISK, "22|fraud-cancelled")
_group(
    ADYEN,
    C.INVALID_ACCOUNT,
    "8|24|32|34|35|invalid card number|cvc declined|avs declined|no checking account available on card|"
    "no savings account available on card",
)
_group(ADYEN, C.INVALID_AMOUNT, "7|invalid amount")
_group(ADYEN, C.CARD_NOT_SUPPORTED, "10|23|25|not supported|transaction not permitted|restricted card")
_group(ADYEN, C.AUTHORIZATION_REVOKED, "26|revocation of auth")
_group(ADYEN, C.RETRY_NOT_PERMITTED, "46|transaction blocked by adyen to prevent excessive retry fees")
_group(ADYEN, C.PROCESSING_ERROR, "capture_failed")

# ISO 8583 issuer response codes, as found at the start of Adyen's raw acquirer response (refusalReasonRaw,
# "05 : Do not honor") and in Visa/Mastercard answers generally.
ISO8583: Table = {}
_group(ISO8583, C.INSUFFICIENT_FUNDS, "51")
_group(ISO8583, C.LIMIT_EXCEEDED, "61 65 6P")
_group(ISO8583, C.DO_NOT_HONOR, "01 02 05 06 12 21 57 62 70 79 82 83")
_group(ISO8583, C.TRY_AGAIN_LATER, "19 68 91 96 94")
_group(ISO8583, C.PROCESSING_ERROR, "30 92")
_group(ISO8583, C.CONFIGURATION_ERROR, "03")
_group(ISO8583, C.AUTHENTICATION_REQUIRED, "1A 55 75 86 O5 P5 P6")
_group(ISO8583, C.EXPIRED_CARD, "33 54")
_group(ISO8583, C.LOST_OR_STOLEN, "04 07 41 43")
_group(ISO8583, C.FRAUD_SUSPECTED, "34 59 63")
_group(ISO8583, C.INVALID_ACCOUNT, "14 15 56 N7 78 80")
_group(ISO8583, C.INVALID_AMOUNT, "13")
_group(ISO8583, C.CARD_NOT_SUPPORTED, "58 93")
_group(ISO8583, C.AUTHORIZATION_REVOKED, "R0 R1 R3")
_group(ISO8583, C.ACCOUNT_CLOSED, "46")
_RAW = re.compile(r"^\s*([0-9A-Z]{2})\b\s*[:\-]", re.IGNORECASE)

# PayPal: processor_response.response_code (Orders v2 / Payments v2) and capture status_details.reason.
PAYPAL: Table = {}
_group(PAYPAL, C.INSUFFICIENT_FUNDS, "5120")
_group(PAYPAL, C.LIMIT_EXCEEDED, "5710 PPEL PPNL PPAX PPDT")
_group(PAYPAL, C.DO_NOT_HONOR, "0100 0500 0580 5100 5160 5210 9100 9530 9540 10BR 1393 0R00 PPAB 5900 DENIED")
_group(PAYPAL, C.TRY_AGAIN_LATER, "0800 0960 5920 8100 8110 8220 PPNT PPER 5200")
_group(PAYPAL, C.PROCESSING_ERROR, "0880 1300 1360 1384 8000 9600 PPTF PPIT PPLS PPS0 PPH1 PPCR PPIF")
_group(
    PAYPAL,
    C.CONFIGURATION_ERROR,
    "1340 1350 1370 8010 8020 8030 PPCE PPMB PPNM PPRR PPAU PPMD PPPI PPUA PPDC PPNC PPUE PPUI PPUP PPUR PPTT PPVT "
    "PPQC PPAG PPBG PPRE PPRF PPGR PPFE PPLR 5800 1317 1390 PPII PPIM PPFV PPVE PPTI PPSD PPSC PPAR PPDV PPS1 PPS2 "
    "PPS3 PPPH PCNR",
)
_group(PAYPAL, C.AUTHENTICATION_REQUIRED, "5650 7700 7710 PPD3 0890 5130 5135 5500 7900")
_group(PAYPAL, C.EXPIRED_CARD, "5400 PPEF")
_group(PAYPAL, C.LOST_OR_STOLEN, "5150 9520")
_group(PAYPAL, C.FRAUD_SUSPECTED, "9500 9510")
_group(
    PAYPAL,
    C.INVALID_ACCOUNT,
    "0390 1330 1380 1382 5110 5170 5190 5930 5950 6300 7800 00N7 PCVV PPC2 PPAD PPAV PPEX PPFI PPPM PPTE PPTR PPTV "
    "PPS5",
)
_group(PAYPAL, C.INVALID_AMOUNT, "1310 1000 PPAI PPS6")
_group(
    PAYPAL,
    C.CARD_NOT_SUPPORTED,
    "1312 1320 1335 1352 5180 5700 5910 PPAE PPCO PPCT PPCU PPDI PPFR PPMC PPSE PPUC PPVC PPS4",
)
_group(PAYPAL, C.RETRY_NOT_PERMITTED, "PPRN")
_group(PAYPAL, C.ACCOUNT_CLOSED, "5140 PP06")
# Capture status_details.reason (a DENIED or PENDING capture).
_group(PAYPAL, C.BLOCKED_BY_RISK, "DECLINED_BY_RISK_FRAUD_FILTERS")
_group(PAYPAL, C.AUTHENTICATION_REQUIRED, "VERIFICATION_REQUIRED")
_group(PAYPAL, C.CONFIGURATION_ERROR, "RECEIVING_PREFERENCE_MANDATES_MANUAL_ACTION UNILATERAL")
_group(PAYPAL, C.TRY_AGAIN_LATER, "PENDING_REVIEW ECHECK TRANSACTION_APPROVED_AWAITING_FUNDING")
_group(PAYPAL, C.DO_NOT_HONOR, "OTHER")

# GoCardless: details.cause of payments.failed, and details.reason_code (SEPA R-transaction ISO 20022 codes,
# Bacs ARUDD / ADDACS codes as GoCardless prefixes them).
GOCARDLESS: Table = {}
_group(GOCARDLESS, C.INSUFFICIENT_FUNDS, "insufficient_funds AM04 ARUDD-0")
_group(GOCARDLESS, C.DO_NOT_HONOR, "refer_to_payer MS02 MS03 SL01 AG02 ADDACS-0")
_group(GOCARDLESS, C.TRY_AGAIN_LATER, "AM05 ARUDD-8")
_group(GOCARDLESS, C.PROCESSING_ERROR, "FF01 RR01 RR02 RR03 RR04 RC01 BE05 CNOR DNOR ARUDD-9 ARUDD-A")
_group(
    GOCARDLESS,
    C.MANDATE_INVALID,
    "mandate_cancelled mandate_expired authorisation_disputed direct_debit_not_enabled MD01 MD02 MD06 AG01 "
    "ARUDD-1 ARUDD-6 ADDACS-1 ADDACS-D",
)
_group(GOCARDLESS, C.ACCOUNT_CLOSED, "bank_account_closed payer_deceased AC04 MD07 ARUDD-2 ARUDD-B ADDACS-2 ADDACS-B")
_group(GOCARDLESS, C.INVALID_ACCOUNT, "invalid_bank_details AC01 AC06 AC13 ARUDD-5")
_group(GOCARDLESS, C.AUTHORIZATION_REVOKED, "ADDACS-R")
_group(GOCARDLESS, C.INVALID_ACCOUNT, "bank_account_transferred ARUDD-3 ADDACS-3 ADDACS-C ADDACS-E")
# Payment statuses a charge answer can already carry (a payment adopted after an idempotency conflict).
_group(GOCARDLESS, C.MANDATE_INVALID, "cancelled customer_approval_denied")
_group(GOCARDLESS, C.DO_NOT_HONOR, "failed")

# Braintree: processor response codes (2000-2999 declines, 3000 network) and gateway rejection reasons.
BRAINTREE: Table = {}
_group(BRAINTREE, C.INSUFFICIENT_FUNDS, "2001")
_group(BRAINTREE, C.LIMIT_EXCEEDED, "2002 2003 2086 2097 2098 2056")
_group(BRAINTREE, C.DO_NOT_HONOR, "2000 2038 2046 2057 2104 2105 2106 2034 2035 2044 2041 2011 2092")
_group(BRAINTREE, C.TRY_AGAIN_LATER, "2016 3000")
_group(BRAINTREE, C.PROCESSING_ERROR, "2033 2031 2078 2036 2037 2054 2094 2095 2090 2065 2067")
_group(
    BRAINTREE,
    C.CONFIGURATION_ERROR,
    "2023 2024 2025 2026 2028 2030 2040 2042 2045 2055 2058 2063 2066 2068 2071 2072 2073 2079 2080 2081 2082 2083 "
    "2084 2087 2088 2089 2091 2100 2049 2050 2052 2062 2032 2039 2069 application_incomplete token_issuance",
)
_group(BRAINTREE, C.AUTHENTICATION_REQUIRED, "2099 2101 2102 2103 three_d_secure")
_group(BRAINTREE, C.EXPIRED_CARD, "2004")
_group(BRAINTREE, C.LOST_OR_STOLEN, "2012 2013 2047 2053")
_group(BRAINTREE, C.FRAUD_SUSPECTED, "2014 2021 2020")
_group(BRAINTREE, C.BLOCKED_BY_RISK, "2077 2085 fraud risk_threshold")
_group(
    BRAINTREE,
    C.INVALID_ACCOUNT,
    "2005 2006 2007 2008 2009 2010 2022 2029 2051 2059 2060 2061 2074 2075 2076 2093 2107 avs avs_and_cvv cvv",
)
_group(BRAINTREE, C.INVALID_AMOUNT, "2027 2048")
_group(BRAINTREE, C.CARD_NOT_SUPPORTED, "2015 2019 2064 2096")
_group(BRAINTREE, C.AUTHORIZATION_REVOKED, "2017 2018 2070")
_group(BRAINTREE, C.RETRY_NOT_PERMITTED, "2043 excessive_retry")
_group(BRAINTREE, C.ACCOUNT_CLOSED, "2108")
_group(BRAINTREE, C.TRY_AGAIN_LATER, "duplicate")
# Settlement declines (bank debits): the status itself when no settlement code came with it.
_group(BRAINTREE, C.DO_NOT_HONOR, "settlement_declined settlement_failed processor_declined")
_group(BRAINTREE, C.PROCESSING_ERROR, "failed voided gateway_rejected authorization_expired")

# Checkout.com: response codes. Ranges are the PSP's own published semantics (20xxx soft, 30xxx hard, 4xxxx
# risk); the explicit entries refine them.
CHECKOUT: Table = {}
_group(CHECKOUT, C.INSUFFICIENT_FUNDS, "20051 50003 50280")
_group(CHECKOUT, C.LIMIT_EXCEEDED, "20061 20065 200P1 200P9 20121")
_group(CHECKOUT, C.RETRY_NOT_PERMITTED, "30021 30022")
_group(CHECKOUT, C.TRY_AGAIN_LATER, "20009 20019 20028 20068 20090 20091 20092 20096 200E3 20118 200A6")
_group(
    CHECKOUT,
    C.PROCESSING_ERROR,
    "20006 20020 20022 20030 20082 20085 20086 20088 20089 20095 20097 20098 20099 20104 20105 20116 20117 20119 "
    "20153 20159 200A4 200A5 20179",
)
_group(CHECKOUT, C.CONFIGURATION_ERROR, "20003 20102 20112 20156 20157 20113 20120 20123 20197 30404 30405")
_group(
    CHECKOUT,
    C.AUTHENTICATION_REQUIRED,
    "20038 20055 20070 20075 20150 20151 20152 20154 20155 20124 43401",
)
_group(CHECKOUT, C.EXPIRED_CARD, "20054 30033")
_group(CHECKOUT, C.LOST_OR_STOLEN, "30004 30007 30035 30036 30038 30041 30043 20004 20067")
_group(CHECKOUT, C.FRAUD_SUSPECTED, "20059 20063 20066 20183 30034 30037")
_group(
    CHECKOUT,
    C.INVALID_ACCOUNT,
    "20014 20025 20039 20052 20053 20056 20087 200N7 20100 20101 20114 30015 20108 20016 20072 2006P 20107",
)
_group(CHECKOUT, C.INVALID_AMOUNT, "20013 20064 30020 30401 30402 30403")
_group(
    CHECKOUT,
    C.CARD_NOT_SUPPORTED,
    "20015 20057 20058 2005C 20093 20103 20106 200T3 20081 20122 20182 30016 30017 30018 30019 30044 30045",
)
_group(CHECKOUT, C.AUTHORIZATION_REVOKED, "200R1 200R3 2009G")
_group(CHECKOUT, C.ACCOUNT_CLOSED, "30046")
_CHECKOUT_RANGES: tuple[tuple[str, Category], ...] = (
    ("20", C.DO_NOT_HONOR),
    ("30", C.INVALID_ACCOUNT),
    ("4", C.BLOCKED_BY_RISK),
    ("50", C.PROCESSING_ERROR),
)

TABLES: dict[str, Table] = {
    "stripe": STRIPE,
    "adyen": ADYEN,
    "paypal": PAYPAL,
    "gocardless": GOCARDLESS,
    "braintree": BRAINTREE,
    "checkout": CHECKOUT,
}


def lookup(psp: str, code: str | None) -> Category | None:
    """The category of one PSP code, None when this code is not mapped."""
    if not code or not code.strip():
        return None
    key = _norm(code)
    found = TABLES.get(psp, {}).get(key)
    if found is not None:
        return found
    if psp == "adyen" and (m := _RAW.match(code)):
        return ISO8583.get(_norm(m.group(1)))
    if psp == "checkout" and re.fullmatch(r"[0-9][0-9A-Z]{4}", code.strip().upper()):
        for prefix, category in _CHECKOUT_RANGES:
            if code.strip().startswith(prefix):
                return category
    if psp == "braintree" and key.isdigit() and 2000 <= int(key) <= 2999:
        return C.DO_NOT_HONOR  # "2109-2999 Processor Declined": Braintree's published soft default
    return None


def unmapped_log(psp: str, codes: Iterable[str | None]) -> None:
    """The structured review line for codes nobody mapped (psp and codes as fields, never card data)."""
    from shared.log import get_logger

    get_logger(__name__).warning(
        "unmapped decline code; treated as soft on the standard schedule",
        extra={"psp": psp, "decline_codes": [c for c in codes if c], "category": C.UNKNOWN.value},
    )


def classify(psp: str, *codes: str | None, log_unknown: bool = True) -> Decline:
    """The first of ``codes`` (most specific first) this PSP's table knows; else ``unknown`` (logged)."""
    for code in codes:
        category = lookup(psp, code)
        if category is not None:
            return Decline(category, psp, code)
    if log_unknown:
        unmapped_log(psp, codes)
    return Decline(C.UNKNOWN, psp, None)


def blocked_by_risk(psp: str) -> Decline:
    """Our own risk step refused the charge before any PSP call (no retry)."""
    return Decline(C.BLOCKED_BY_RISK, psp, C.BLOCKED_BY_RISK.value)
