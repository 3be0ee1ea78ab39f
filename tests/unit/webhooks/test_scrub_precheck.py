"""The scrubber's pre-check skips the full rules only where they would mask nothing.

The reference is the former pre-check (13 digits anywhere mean "run every rule"); the faster one must
give the same output for any text, and skip the JSON parse for a typical payload of ids and timestamps.
"""

from __future__ import annotations

import json
import re

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from shared import scrub as scrub_module
from shared.scrub import scrub


def _former_pre_check(text: str) -> bool:
    if scrub_module._cvc_hint(text) or "\\u" in text or "&#" in text or "%" in text:
        return True
    digits = sum(map(text.count, "0123456789"))
    return len(text) >= 13 and (digits >= 13 or scrub_module._IBAN_HINT.search(text) is not None)


def _reference(text: str, monkeypatch: pytest.MonkeyPatch) -> str:
    with monkeypatch.context() as m:
        m.setattr(scrub_module, "_may_hold_card_data", _former_pre_check)
        return scrub(text)


# Pieces that make up card data, its disguises and its look-alikes: digits, every separator and escape
# the rules know, ids glued to letters, field names, JSON and form punctuation, base64.
PIECES = st.sampled_from(
    [
        *"0123456789",
        "4242",
        "4111111111111111",
        "5555 5555 5555 4444",
        "378282246310005",
        " ",
        "-",
        ".",
        "/",
        "+",
        "\u00a0",
        "%20",
        "\\u0020",
        "\\u0034",
        "&#52;",
        "&nbsp;",
        "\\/",
        "\\n",
        '"',
        "{",
        "}",
        "[",
        "]",
        ":",
        ",",
        "=",
        "&",
        "evt_",
        "pi_3Pm0aXJ2",
        "a",
        "Z",
        "cvc",
        "DE89",
        "GB82WEST12345698765432",
        "NDI0MjQyNDI0MjQyNDI0Mg==",
        "a1b2c3d4e5f6a7b8c9d0e1f2",
        "4242\\/4242\\/4242\\/4242",
    ]
)


@settings(max_examples=400, deadline=None)
@given(st.lists(PIECES, max_size=40).map("".join))
@example("bt_payload=NDI0MjQyNDI0MjQyNDI0Mg==&id=evt_1a2b3c4d5e6f7a8b9c0d1e2f3a")  # base64 PAN, digits scattered
@example('{"n":"4242\\/4242\\/4242\\/4242","id":"x1y2z3"}')  # JSON-escaped "/" between groups
@example("INV-2026-000123 4111 1111 1111 1111")  # a short run, then a PAN in the same stretch
@example("2026-000123-4111111111111111 1 2 3")  # a PAN glued to a short run by separators
@example("evt_0953856375754a x4111111111111111-4111111111111111")  # glued digits, then a PAN after a separator
def test_same_output_as_running_every_rule(text: str) -> None:
    with pytest.MonkeyPatch.context() as mp:
        expected = _reference(text, mp)
    assert scrub(text) == expected


@settings(max_examples=100, deadline=None)
@given(st.lists(PIECES, max_size=12).map("".join))
def test_same_output_inside_json_documents(value: str) -> None:
    text = json.dumps({"id": "evt_1f2e3d4c5b6a79880011", "created": 1733300000, "note": value, "n": [value]})
    with pytest.MonkeyPatch.context() as mp:
        expected = _reference(text, mp)
    assert scrub(text) == expected


def test_a_payload_of_ids_and_timestamps_is_not_parsed(monkeypatch: pytest.MonkeyPatch) -> None:
    payload = json.dumps(
        {
            "id": "evt_bench_5f0c3a1e9b8d47c6a2e1f0d9c8b7a6e5",
            "created": 1733300000,
            "data": {"object": {"id": "pi_bench_7_3f2e1d0c", "amount_received": 2000, "currency": "eur"}},
        }
    )
    assert sum(map(payload.count, "0123456789")) >= 13

    def no_parse(text: str) -> None:
        raise AssertionError("parsed")

    monkeypatch.setattr(scrub_module, "_scrub_json", no_parse)
    assert scrub(payload) == payload
    card = payload.replace("2000", "4242424242424242")
    with pytest.raises(AssertionError, match="parsed"):
        scrub(card)
    assert re.search(r"\d{13}", card)


def test_a_payload_with_our_invoice_number_is_not_parsed(monkeypatch: pytest.MonkeyPatch) -> None:
    """Our invoice numbers (``INV-2026-000123``) are candidate runs of the PAN rule, but of 10 digits: the
    rule skips them, so the pre-check must not send such a payload through the full rules either."""
    payload = json.dumps(
        {
            "id": "evt_3Pm0aXJ2eZvKYlo21a4Jx8Qk",
            "created": 1733300000,
            "data": {"object": {"id": "pi_3Pm0aXJ2eZvKYlo21uE2hG4m", "metadata": {"invoice_id": "INV-2026-000123"}}},
        }
    )

    def no_parse(text: str) -> None:
        raise AssertionError("parsed")

    monkeypatch.setattr(scrub_module, "_scrub_json", no_parse)
    assert scrub(payload) == payload
    with pytest.raises(AssertionError, match="parsed"):
        scrub(payload.replace("INV-2026-000123", "INV-2026-4111 1111 1111 1111"))
