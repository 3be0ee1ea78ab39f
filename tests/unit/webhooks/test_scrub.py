"""Card data never reaches the archive: PANs (Luhn-valid 13-19 digits) and security codes."""

from __future__ import annotations

import json

from hypothesis import given
from hypothesis import strategies as st

from shared.psp.scrub import luhn_ok, scrub
from tests.fixtures.psp import raw


def _with_check_digit(prefix: str) -> str:
    for d in "0123456789":
        if luhn_ok(prefix + d):
            return prefix + d
    raise AssertionError


@given(st.text("0123456789", min_size=12, max_size=18), st.sampled_from(["", " ", "-"]))
def test_any_luhn_valid_pan_is_removed(prefix: str, sep: str) -> None:
    pan = _with_check_digit(prefix)
    shown = sep.join(pan[i : i + 4] for i in range(0, len(pan), 4))
    out = scrub(f'{{"number":"{shown}","x":1}}')
    assert pan not in out.replace(" ", "").replace("-", "")
    assert "[PAN]" in out


def test_known_fields_are_scrubbed_in_json_xml_and_forms() -> None:
    stripe = scrub(raw("stripe_payment_intent_succeeded.json").decode())
    assert "4242 4242 4242 4242" not in stripe
    assert '"cvc": "[CVC]"' in stripe
    assert "pi_3Pm0aXJ2eZvKYlo21uE2hG4m" in stripe  # ids survive
    bt = scrub(raw("braintree_transaction_settled.xml").decode())
    assert "4111111111111111" not in bt
    assert "<cvv>[CVC]</cvv>" in bt
    assert scrub("a=1&cvc=123&b=2") == "a=1&cvc=[CVC]&b=2"
    assert scrub('{"securityCode": 737}') == '{"securityCode": "[CVC]"}'


def test_amounts_ids_and_non_luhn_numbers_survive() -> None:
    text = '{"amount": 2000, "reference": "1234567890123", "created": 1722855600}'
    assert scrub(text) == text


SEPARATORS = ["", " ", "  ", "-", ".", "/", "\u00a0", "%20", "+"]


@given(st.text("0123456789", min_size=12, max_size=15), st.sampled_from(SEPARATORS))
def test_luhn_invalid_numbers_survive_under_any_separator(digits: str, sep: str) -> None:
    """13-16 digits in groups of four: the whole number is the only candidate, and it fails Luhn."""
    digits = "5" + digits
    if luhn_ok(digits):
        digits = digits[:-1] + str((int(digits[-1]) + 1) % 10)
    shown = sep.join(digits[i : i + 4] for i in range(0, len(digits), 4))
    text = f'{{"reference":"{shown}","n":{digits}}}'
    assert scrub(text) == text


@given(st.text("0123456789", min_size=11, max_size=17), st.sampled_from(SEPARATORS))
def test_any_luhn_valid_pan_is_masked_under_any_separator_and_json_stays_valid(prefix: str, sep: str) -> None:
    pan = _with_check_digit("4" + prefix)
    shown = sep.join(pan[i : i + 4] for i in range(0, len(pan), 4))
    out = scrub(f'{{"d":"card {shown} x","n":{pan}}}')
    assert json.loads(out) == {"d": "card [PAN] x", "n": "[PAN]"}


def test_ids_amounts_dates_and_results_survive() -> None:
    text = json.dumps(
        {
            "sha": "4f1a0c2e9b7d3a5c1234567890123456789abcdef0123456789abcdef0123456",
            "sub": "sub_4111111111111111ab",
            "dates": "2024-08-05/2024-09-05 2026-11-20 10:00:00",
            "amount": "1234567.89",
            "cvc_check": "pass",
            "cvcResult": "1 Matches",
            "created": 1722855600,
            "phone": "+49 170 1234567",
        }
    )
    assert scrub(text) == text


def test_ibans_are_masked_to_the_last_four_and_invalid_ones_kept() -> None:
    assert scrub("to DE89 3704 0044 0532 0130 00 now") == "to [IBAN ending 3000] now"
    assert scrub("GB82WEST12345698765432") == "[IBAN ending 5432]"
    assert scrub("GB82WEST12345698765433") == "GB82WEST12345698765433"  # mod-97 fails
    assert scrub("PM0001234567ABCD") == "PM0001234567ABCD"  # not an IBAN country


def test_scrubbing_is_idempotent_and_keeps_clean_payloads_byte_for_byte() -> None:
    for name in ("stripe_payment_intent_succeeded.json", "braintree_transaction_settled.xml", "adyen_batch.json"):
        once = scrub(raw(name).decode())
        assert scrub(once) == once
    clean = raw("checkout_payment_captured.json").decode()
    assert scrub(clean) == clean
