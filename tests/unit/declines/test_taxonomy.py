"""The decline taxonomy: every published code of every PSP maps, and the retry advice keeps its promises."""

from __future__ import annotations

import datetime as dt
import logging

import pytest
from hypothesis import given
from hypothesis import strategies as st

from shared.domain.declines import ADVICE, TABLES, Category, Decline, classify, lookup, next_payday
from shared.log import get_logger
from tests.fixtures.declines import PSPS, codes

get_logger(__name__)  # configure the JSON root handler now, so caplog's handler (added per test) stays

T0 = dt.datetime(2026, 1, 31, 9, tzinfo=dt.UTC)
times = st.datetimes(min_value=dt.datetime(2000, 1, 1), max_value=dt.datetime(2099, 1, 1), timezones=st.just(dt.UTC))


@pytest.mark.parametrize("psp", PSPS)
def test_every_published_code_of_every_psp_maps(psp: str) -> None:
    listed = codes(psp)
    assert len(listed) >= 50, f"{psp}: the fixture list looks truncated"
    unmapped = [c for c in listed if lookup(psp, c) is None]
    assert unmapped == [], f"{psp}: add these codes to shared/domain/declines.py"


def test_the_coverage_check_fails_on_an_unmapped_code() -> None:
    assert lookup("stripe", "a_code_stripe_never_published") is None
    assert lookup("braintree", "4999") is None
    assert lookup("checkout", "99999") is None
    assert lookup("adyen", "Refused for a brand new reason") is None
    assert lookup("nopsp", "insufficient_funds") is None


def test_unknown_codes_are_soft_on_the_standard_schedule_and_logged(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING):
        d = classify("stripe", "brand_new_code", None)
    assert d == Decline(Category.UNKNOWN, "stripe", None)
    assert d.retryable
    assert not d.action_required
    assert d.retry_at(T0) is None  # no advice: the configured schedule decides
    (rec,) = [r for r in caplog.records if r.getMessage().startswith("unmapped decline code")]
    fields = vars(rec)
    assert (rec.levelname, fields["psp"], fields["decline_codes"]) == ("WARNING", "stripe", ["brand_new_code"])


def test_the_most_specific_code_wins() -> None:
    # Stripe: decline_code first, then the generic error code.
    assert classify("stripe", "stolen_card", "card_declined").category is Category.LOST_OR_STOLEN
    assert classify("stripe", None, "card_declined").category is Category.DO_NOT_HONOR
    # Adyen: refusalReasonCode, then the text, then the raw acquirer response.
    assert classify("adyen", "12", "Not enough balance").category is Category.INSUFFICIENT_FUNDS
    assert classify("adyen", None, "Expired Card").category is Category.EXPIRED_CARD
    assert classify("adyen", "51 : Insufficient funds").category is Category.INSUFFICIENT_FUNDS
    assert classify("gocardless", "refer_to_payer", "AM04").category is Category.DO_NOT_HONOR
    assert classify("gocardless", None, "AM04").category is Category.INSUFFICIENT_FUNDS


@pytest.mark.parametrize(
    ("psp", "code", "category", "retry"),
    [
        ("stripe", "insufficient_funds", Category.INSUFFICIENT_FUNDS, "soft"),
        ("stripe", "authentication_required", Category.AUTHENTICATION_REQUIRED, "customer"),
        ("stripe", "expired_card", Category.EXPIRED_CARD, "hard"),
        ("stripe", "do_not_try_again", Category.RETRY_NOT_PERMITTED, "hard"),
        ("adyen", "Not enough balance", Category.INSUFFICIENT_FUNDS, "soft"),
        ("adyen", "38", Category.AUTHENTICATION_REQUIRED, "customer"),
        ("adyen", "Card stolen", Category.LOST_OR_STOLEN, "hard"),
        ("adyen", "05 : Do not honor", Category.DO_NOT_HONOR, "soft"),
        ("paypal", "5120", Category.INSUFFICIENT_FUNDS, "soft"),
        ("paypal", "9520", Category.LOST_OR_STOLEN, "hard"),
        ("paypal", "5650", Category.AUTHENTICATION_REQUIRED, "customer"),
        ("gocardless", "insufficient_funds", Category.INSUFFICIENT_FUNDS, "soft"),
        ("gocardless", "mandate_cancelled", Category.MANDATE_INVALID, "hard"),
        ("gocardless", "bank_account_closed", Category.ACCOUNT_CLOSED, "hard"),
        ("braintree", "2001", Category.INSUFFICIENT_FUNDS, "soft"),
        ("braintree", "2004", Category.EXPIRED_CARD, "hard"),
        ("braintree", "2099", Category.AUTHENTICATION_REQUIRED, "customer"),
        ("braintree", "3000", Category.TRY_AGAIN_LATER, "soft"),
        ("braintree", "risk_threshold", Category.BLOCKED_BY_RISK, "hard"),
        ("checkout", "20051", Category.INSUFFICIENT_FUNDS, "soft"),
        ("checkout", "20005", Category.DO_NOT_HONOR, "soft"),
        ("checkout", "30043", Category.LOST_OR_STOLEN, "hard"),
        ("checkout", "20154", Category.AUTHENTICATION_REQUIRED, "customer"),
        ("checkout", "41101", Category.BLOCKED_BY_RISK, "hard"),
    ],
)
def test_landmark_codes(psp: str, code: str, category: Category, retry: str) -> None:
    d = classify(psp, code)
    assert (d.category, d.advice.retry) == (category, retry)


def test_checkout_ranges_keep_their_published_meaning() -> None:
    """30xxx are hard declines and 4xxxx risk responses: none is retried automatically (except our own
    configuration errors, which an operator can fix before the next slot)."""
    for code in codes("checkout"):
        d = classify("checkout", code)
        if code.startswith(("3", "4")) and d.category is not Category.CONFIGURATION_ERROR:
            assert not d.retryable, code


def test_braintree_retry_prohibited_codes_are_never_retried() -> None:
    """Codes after which card networks forbid a retry (Mastercard; recurring) are hard."""
    for code in ("2004", "2005", "2009", "2012", "2015", "2019", "2022", "2047", "2053"):
        assert not classify("braintree", code).retryable, code


def test_every_category_has_advice() -> None:
    assert set(ADVICE) == set(Category)
    assert all(table for table in TABLES.values())


@given(times, st.sampled_from(list(Category)))
def test_retry_advice_is_in_the_future_and_within_three_days(failed_at: dt.datetime, category: Category) -> None:
    d = Decline(category, "stripe", "x")
    at = d.retry_at(failed_at)
    if d.advice.retry != "soft":
        assert at is None  # hard and customer declines are never retried automatically
    elif at is not None:
        assert failed_at < at <= failed_at + dt.timedelta(days=3)


@given(times)
def test_insufficient_funds_waits_for_a_pay_day_or_three_days(failed_at: dt.datetime) -> None:
    at = Decline(Category.INSUFFICIENT_FUNDS, "stripe").retry_at(failed_at)
    assert at is not None
    assert failed_at + dt.timedelta(days=1) < at <= failed_at + dt.timedelta(days=3)
    assert at == failed_at + dt.timedelta(days=3) or (at.day in (1, 15) and at.hour == 6)


@given(times)
def test_next_payday_is_the_first_1st_or_15th_after(t: dt.datetime) -> None:
    p = next_payday(t)
    assert p > t
    assert p.day in (1, 15)
    assert p - t <= dt.timedelta(days=17)
