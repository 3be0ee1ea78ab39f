"""Card data never reaches the archive: PANs (Luhn-valid 13-19 digits) and security codes."""

from __future__ import annotations

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
