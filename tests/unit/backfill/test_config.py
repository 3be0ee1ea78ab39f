"""Backfill settings (accounts, credentials per account, bounds) and the window rule, without I/O."""

from __future__ import annotations

import datetime as dt

import pytest
from hypothesis import given
from hypothesis import strategies as st

from shared.backfill.base import Window
from shared.backfill.config import BackfillSettings, backfill_settings, source_settings
from shared.backfill.runner import window_for
from shared.backfill.state import Progress, progress_of
from shared.config import ConfigError

NOW = dt.datetime(2026, 1, 31, 9, 0, tzinfo=dt.UTC)
CFG = BackfillSettings((), lookback_s=86400, overlap_s=3600, delay_s=300, max_window_s=3 * 86400, page_size=100,
                       max_pages=20, lease_s=360)  # fmt: skip


@pytest.fixture(autouse=True)
def clean(monkeypatch: pytest.MonkeyPatch) -> None:
    names = ("BACKFILL_ACCOUNTS", "BACKFILL_MAX_PAGES", "PSP_MODE", "PSP_MODE__EU", "STRIPE_API_KEY__EU")
    for k in (*names, "STRIPE_API_KEY", "PAYPAL_CLIENT_ID", "PAYPAL_CLIENT_SECRET", "GOCARDLESS_ACCESS_TOKEN"):
        monkeypatch.delenv(k, raising=False)
    monkeypatch.delenv("CHECKOUT_SECRET_KEY", raising=False)


def test_default_accounts_are_the_psps_whose_credentials_are_set(monkeypatch: pytest.MonkeyPatch) -> None:
    assert backfill_settings().accounts == ()
    monkeypatch.setenv("STRIPE_API_KEY", "rk_test_1")
    monkeypatch.setenv("PAYPAL_CLIENT_ID", "id")  # the secret is missing: not configured
    assert backfill_settings().accounts == (("stripe", "default"),)


def test_listed_accounts_use_the_account_suffix_and_their_own_mode(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("BACKFILL_ACCOUNTS", "stripe, Stripe/EU ,stripe")
    monkeypatch.setenv("STRIPE_API_KEY__EU", "rk_live_eu")
    monkeypatch.setenv("PSP_MODE__EU", "live")
    assert backfill_settings().accounts == (("stripe", "default"), ("stripe", "eu"))
    eu = source_settings("stripe", "eu")
    assert eu is not None
    assert eu.livemode
    assert eu.get("STRIPE_API_KEY") == "rk_live_eu"
    assert source_settings("stripe", "default") is None  # no default key set


def test_bad_settings_fail_loudly(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("BACKFILL_ACCOUNTS", "adyen")
    with pytest.raises(ConfigError, match="no event list"):
        backfill_settings()
    monkeypatch.setenv("BACKFILL_ACCOUNTS", "stripe")
    monkeypatch.setenv("BACKFILL_MAX_PAGES", "0")
    with pytest.raises(ConfigError, match="BACKFILL_MAX_PAGES"):
        backfill_settings()


def test_first_window_looks_back_and_leaves_young_events_to_their_webhook() -> None:
    w = window_for(Progress(None, None, None), NOW, CFG)
    assert w == Window(NOW - dt.timedelta(days=1), NOW - dt.timedelta(seconds=300))


def test_a_window_in_progress_is_finished_first() -> None:
    open_window = Window(NOW - dt.timedelta(hours=5), NOW - dt.timedelta(hours=4))
    assert window_for(Progress(NOW - dt.timedelta(hours=5), open_window, "evt_9"), NOW, CFG) == open_window


@given(st.integers(min_value=-10 * 86400, max_value=600))
def test_next_window_overlaps_the_watermark_and_never_reaches_past_the_bound(offset_s: int) -> None:
    mark = NOW + dt.timedelta(seconds=offset_s)
    w = window_for(Progress(mark, None, None), NOW, CFG)
    if w is None:  # nothing old enough to look at yet
        assert mark - dt.timedelta(seconds=CFG.overlap_s) >= NOW - dt.timedelta(seconds=CFG.delay_s)
        return
    assert w.start < w.end == NOW - dt.timedelta(seconds=CFG.delay_s)
    assert w.start >= NOW - dt.timedelta(seconds=CFG.max_window_s)
    assert w.start <= mark - dt.timedelta(seconds=CFG.overlap_s) or w.start == NOW - dt.timedelta(days=3)


def test_progress_ignores_a_cursor_without_its_window() -> None:
    assert progress_of({"cursor": "evt_1"}) == Progress(None, None, None)
    w = Window(NOW - dt.timedelta(hours=1), NOW)
    assert progress_of({"window_start": w.start, "window_end": w.end, "cursor": "evt_1"}) == Progress(None, w, "evt_1")
