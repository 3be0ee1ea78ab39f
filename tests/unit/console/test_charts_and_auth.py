"""Pure parts of the console: the SVG charts and the CSRF token / identity rules (no I/O)."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from types import SimpleNamespace

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from shared.console import auth, charts
from shared.console.app import diagnose, money
from shared.domain.money import Money
from shared.edge import EdgeError

SECRET = b"s" * 32
SVG = "{http://www.w3.org/2000/svg}"


@settings(max_examples=50)
@given(st.integers(min_value=0, max_value=10**15))
def test_nice_max_is_the_smallest_1_2_5_step_at_or_above(value: int) -> None:
    top = charts.nice_max(value)
    assert top >= max(value, 1)
    digits = str(top)
    assert digits[0] in "125"
    assert set(digits[1:]) <= {"0"}
    smaller = [m * 10**e for e in range(16) for m in (1, 2, 5) if m * 10**e < top]
    assert all(s < value for s in smaller)


@settings(max_examples=50)
@given(
    st.lists(st.text(min_size=1, max_size=12), min_size=1, max_size=10),
    st.dictionaries(st.text(min_size=1, max_size=8), st.integers(0, 10**9), min_size=1, max_size=3),
)
def test_bars_are_well_formed_svg_with_one_bar_per_value_and_escaped_labels(
    labels: list[str], totals: dict[str, int]
) -> None:
    series = {name: [v] * len(labels) for name, v in totals.items()}
    svg = charts.bars("t <&> title", labels, series)
    root = ET.fromstring(svg)  # escaping: any label text leaves well-formed XML
    assert root.get("role") == "img"
    title = root.find(f"{SVG}title")
    assert title is not None
    assert title.text == "t <&> title"
    bars = [r for r in root.iter(f"{SVG}rect") if r.find(f"{SVG}title") is not None]
    assert len(bars) == len(labels) * len(series)
    assert all(float(b.get("height") or "inf") <= charts.HEIGHT - charts.PAD_T - charts.PAD_B + 1e-6 for b in bars)
    assert svg == charts.bars("t <&> title", labels, series)  # deterministic


def test_line_and_empty_charts() -> None:
    days = charts.days("2026-02-27", 3)
    assert days == ["2026-02-27", "2026-02-28", "2026-03-01"]
    root = ET.fromstring(charts.line("revenue", days, {"EUR": [0, 500, 1000]}))
    (poly,) = root.iter(f"{SVG}polyline")
    assert len((poly.get("points") or "").split()) == 3
    assert "no data" in charts.bars("nothing", [], {})


def test_csrf_token_round_trip_and_refusals() -> None:
    token = auth.csrf_token(SECRET, "alice@example.com", now=1_000_000)
    assert auth.csrf_ok(SECRET, "alice@example.com", token, 3600, now=1_000_100)
    assert not auth.csrf_ok(SECRET, "mallory@example.com", token, 3600, now=1_000_100)  # another user's
    assert not auth.csrf_ok(b"x" * 32, "alice@example.com", token, 3600, now=1_000_100)  # another key
    assert not auth.csrf_ok(SECRET, "alice@example.com", token, 3600, now=1_003_601)  # expired
    assert not auth.csrf_ok(SECRET, "alice@example.com", token, 3600, now=999_000)  # from the future
    issued, mac = token.split(".")
    assert not auth.csrf_ok(SECRET, "alice@example.com", f"{int(issued) + 1}.{mac}", 3600, now=1_000_100)
    for bad in ("", ".", "abc.def", f"{issued}.{mac[:-1]}", "1" * 13 + "." + mac):
        assert not auth.csrf_ok(SECRET, "alice@example.com", bad, 3600, now=1_000_100)


def _req(headers: dict[str, str]) -> SimpleNamespace:
    return SimpleNamespace(headers=headers)


def test_identity_comes_from_iap_or_the_dev_identity_only() -> None:
    iap = {auth.IAP_EMAIL_HEADER: "accounts.google.com:alice@example.com"}
    assert auth.identity(_req(iap), None) == "alice@example.com"
    assert auth.identity(_req(iap), "dev@localhost") == "alice@example.com"
    assert auth.identity(_req({}), "dev@localhost") == "dev@localhost"
    for headers in ({}, {auth.IAP_EMAIL_HEADER: "accounts.google.com:"}, {auth.IAP_EMAIL_HEADER: "<script>@x"}):
        with pytest.raises(EdgeError) as exc:
            auth.identity(_req(headers), None)
        assert exc.value.status == 401


def test_money_is_shown_with_the_currency_exponent_and_never_guessed() -> None:
    assert money(1999, "EUR") == str(Money(1999, "EUR"))
    assert money(1999, "JPY") == str(Money(1999, "JPY"))
    assert money(None, "EUR") == money(1.5, "EUR") == money(True, "EUR") == money(5, "XXX?") == "—"


def test_dead_letter_reasons_follow_the_consumer_rule() -> None:
    assert "no event_type" in diagnose({}, b"{}")
    assert "unknown to the contracts" in diagnose({"event_type": "nope.nothing"}, b"{}")
    assert "not supported" in diagnose({"event_type": "probe.requested", "schema_version": "99"}, b"{}")
    assert "refused by the contract" in diagnose({"event_type": "probe.requested", "schema_version": "1"}, b"{}")


def test_the_cloud_needs_a_well_formed_iap_audience_and_the_emulators_may_go_without() -> None:
    from shared.config import ConfigError
    from shared.console.config import load_console_settings

    cloud = {"CONSOLE_CSRF_SECRET": "c" * 32}
    with pytest.raises(ConfigError, match="CONSOLE_IAP_AUDIENCE"):
        load_console_settings(cloud)
    with pytest.raises(ConfigError, match="CONSOLE_IAP_AUDIENCE"):
        load_console_settings(cloud | {"CONSOLE_IAP_AUDIENCE": "my-console"})
    for aud in ("/projects/12/global/backendServices/34", "/projects/12/apps/my-project"):
        got = load_console_settings(cloud | {"CONSOLE_IAP_AUDIENCE": aud})
        assert got.iap_audience == aud
        assert got.dev_identity is None
    local = load_console_settings({"FIRESTORE_EMULATOR_HOST": "localhost:8080"})
    assert local.iap_audience is None
    assert local.dev_identity == "dev@localhost"
