"""Tax treatment and THE rounding rule (half-up per line), without I/O."""

from __future__ import annotations

from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from shared.domain.money import Money
from shared.domain.tax import TaxError, Treatment, decide, line_tax, rate, vat_id_well_formed


@pytest.mark.parametrize(
    ("vat_id", "country", "ok"),
    [
        ("DE123456789", "DE", True),
        ("de 123.456-789", "DE", True),
        ("DE12345678", "DE", False),
        ("FR40303265045", "DE", False),  # another country's id does not make a German buyer a business
        ("FR40303265045", "FR", True),
        ("FRIO303265045", "FR", False),  # I and O are not allowed in the French key
        ("EL123456789", "GR", True),
        ("NL123456789B01", "NL", True),
        ("ATU12345678", "AT", True),
        ("", "DE", False),
        (None, "DE", False),
        ("US123456789", "US", False),
    ],
)
def test_vat_id_format(vat_id: str | None, country: str, ok: bool) -> None:
    assert vat_id_well_formed(vat_id, country) is ok


def test_treatments_in_order_of_precedence() -> None:
    assert decide("FR", "DE", vat_id="DE123456789", tax_exempt=True).treatment == Treatment.EXEMPT
    assert decide("FR", "FR", vat_id="FR40303265045", tax_exempt=False) == decide(
        "FR", "FR", vat_id=None, tax_exempt=False
    )
    assert decide("FR", "FR", vat_id=None, tax_exempt=False).rate("standard") == Decimal("0.2")
    rc = decide("FR", "DE", vat_id="DE123456789", tax_exempt=False)
    assert (rc.treatment, rc.rate("standard")) == (Treatment.REVERSE_CHARGE, Decimal(0))
    assert rc.wording is not None
    assert "Reverse charge" in rc.wording
    b2c = decide("FR", "DE", vat_id="DE1234", tax_exempt=False)  # malformed id: a consumer, OSS rate of DE
    assert (b2c.treatment, b2c.rate("standard")) == (Treatment.EU_B2C, Decimal("0.19"))
    exp = decide("FR", "KW", vat_id=None, tax_exempt=False)
    assert (exp.treatment, exp.rate("standard")) == (Treatment.EXPORT, Decimal(0))
    assert decide("JP", "JP", vat_id=None, tax_exempt=False).rate("standard") == Decimal("0.1")


def test_missing_rate_is_an_error_not_zero() -> None:
    with pytest.raises(TaxError):
        rate("DK", "reduced")
    with pytest.raises(TaxError):
        decide("ZZ", "FR", vat_id=None, tax_exempt=False)


@pytest.mark.parametrize(
    ("net", "currency", "r", "tax"),
    [
        (1999, "EUR", "0.2", 400),  # 399.8 -> 400
        (2, "EUR", "0.25", 1),  # 0.5 -> 1 (half-up)
        (-2, "EUR", "0.25", -1),  # symmetric for credits: away from zero
        (12345, "KWD", "0.1", 1235),  # exponent 3: 1234.5 fils -> 1235
        (999, "JPY", "0.1", 100),  # exponent 0: 99.9 yen -> 100
        (105, "EUR", "0.055", 6),  # 5.775 -> 6
    ],
)
def test_line_tax_rounds_half_up_to_the_minor_unit(net: int, currency: str, r: str, tax: int) -> None:
    assert line_tax(Money(net, currency), Decimal(r)) == Money(tax, currency)


@given(st.integers(min_value=-(10**12), max_value=10**12), st.sampled_from(["0.2", "0.19", "0.055", "0.1", "0"]))
def test_line_tax_is_within_half_a_unit_of_the_exact_value(net: int, r: str) -> None:
    exact = Decimal(net) * Decimal(r)
    assert abs(Decimal(line_tax(Money(net, "EUR"), Decimal(r)).amount) - exact) <= Decimal("0.5")
