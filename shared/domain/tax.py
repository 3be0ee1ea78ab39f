"""Which VAT applies to an invoice line, and how much: pure, no I/O.

Why a table and not an API: tax must be reproducible from the invoice alone (an auditor re-computes
it), so the rates the invoices function applies are data in this module, reviewed like code.

Treatment, decided once per invoice from the seller's and the buyer's country:

* ``exempt``          the customer is tax exempt (``Party.tax_exempt``): rate 0, wording on the PDF;
* ``reverse_charge``  EU seller, EU buyer in another member state with a *well-formed* VAT id of its own
                      country (format only: a VIES lookup is a network call and belongs in onboarding):
                      rate 0, the buyer accounts for the VAT (art. 196 Directive 2006/112/EC);
* ``domestic``        same country: the seller country's rate;
* ``eu_b2c``          EU seller, EU consumer elsewhere: the buyer country's rate (OSS destination rule);
* ``export``          anything else across a border (outside the scope of the seller's VAT): rate 0.

THE rounding rule (one, everywhere): tax is computed **per line** as ``net * rate`` rounded
**half-up (away from zero)** to the currency's minor unit (:data:`TAX_ROUNDING`); the invoice's tax is
the exact sum of its line taxes, so every total equals the sum of its parts.
"""

from __future__ import annotations

import enum
import re
from dataclasses import dataclass
from decimal import Decimal

from shared.domain.money import Money, Rounding

TAX_ROUNDING = Rounding.HALF_UP

_EU_CODES = "AT BE BG CY CZ DE DK EE ES FI FR GR HR HU IE IT LT LU LV MT NL PL PT RO SE SI SK"
EU = frozenset(_EU_CODES.split(" "))

# Standard and reduced rates (percent) in force on 2026-01-01. A change of rate is a reviewed edit.
_RATES: dict[str, dict[str, str]] = {
    "AT": {"standard": "20", "reduced": "10"},
    "BE": {"standard": "21", "reduced": "6"},
    "BG": {"standard": "20", "reduced": "9"},
    "CY": {"standard": "19", "reduced": "5"},
    "CZ": {"standard": "21", "reduced": "12"},
    "DE": {"standard": "19", "reduced": "7"},
    "DK": {"standard": "25"},
    "EE": {"standard": "24", "reduced": "9"},
    "ES": {"standard": "21", "reduced": "10"},
    "FI": {"standard": "25.5", "reduced": "14"},
    "FR": {"standard": "20", "reduced": "5.5"},
    "GR": {"standard": "24", "reduced": "13"},
    "HR": {"standard": "25", "reduced": "13"},
    "HU": {"standard": "27", "reduced": "5"},
    "IE": {"standard": "23", "reduced": "13.5"},
    "IT": {"standard": "22", "reduced": "10"},
    "LT": {"standard": "21", "reduced": "9"},
    "LU": {"standard": "17", "reduced": "8"},
    "LV": {"standard": "21", "reduced": "12"},
    "MT": {"standard": "18", "reduced": "7"},
    "NL": {"standard": "21", "reduced": "9"},
    "PL": {"standard": "23", "reduced": "8"},
    "PT": {"standard": "23", "reduced": "6"},
    "RO": {"standard": "21", "reduced": "11"},
    "SE": {"standard": "25", "reduced": "12"},
    "SI": {"standard": "22", "reduced": "9.5"},
    "SK": {"standard": "23", "reduced": "19"},
    "GB": {"standard": "20", "reduced": "5"},
    "CH": {"standard": "8.1", "reduced": "2.6"},
    "NO": {"standard": "25", "reduced": "15"},
    "JP": {"standard": "10", "reduced": "8"},
    "BH": {"standard": "10"},
    "KW": {"standard": "0"},  # Kuwait levies no VAT
    "US": {"standard": "0"},  # sales tax is out of scope of this table
}

# VIES formats after the two-letter prefix (Greece uses "EL"). Format only, see the module doc.
_VAT_FORMATS: dict[str, str] = {
    "AT": r"U\d{8}",
    "BE": r"[01]\d{9}",
    "BG": r"\d{9,10}",
    "CY": r"\d{8}[A-Z]",
    "CZ": r"\d{8,10}",
    "DE": r"\d{9}",
    "DK": r"\d{8}",
    "EE": r"\d{9}",
    "EL": r"\d{9}",
    "ES": r"[A-Z0-9]\d{7}[A-Z0-9]",
    "FI": r"\d{8}",
    "FR": r"[A-HJ-NP-Z0-9]{2}\d{9}",
    "HR": r"\d{11}",
    "HU": r"\d{8}",
    "IE": r"\d[A-Z0-9+*]\d{5}[A-W][A-I]?",
    "IT": r"\d{11}",
    "LT": r"\d{9}|\d{12}",
    "LU": r"\d{8}",
    "LV": r"\d{11}",
    "MT": r"\d{8}",
    "NL": r"\d{9}B\d{2}",
    "PL": r"\d{10}",
    "PT": r"\d{9}",
    "RO": r"[1-9]\d{1,9}",
    "SE": r"\d{10}01",
    "SI": r"\d{8}",
    "SK": r"\d{10}",
}
_VAT_RE = {prefix: re.compile(rf"^{prefix}(?:{body})$") for prefix, body in _VAT_FORMATS.items()}


class TaxError(ValueError):
    """No rate for this country or category: the request cannot be invoiced until the table says."""


class Treatment(enum.StrEnum):
    DOMESTIC = "domestic"
    EU_B2C = "eu_b2c"
    REVERSE_CHARGE = "reverse_charge"
    EXPORT = "export"
    EXEMPT = "exempt"


# The wording a tax auditor expects on the document, by treatment (None: nothing special to say).
WORDING: dict[Treatment, str | None] = {
    Treatment.DOMESTIC: None,
    Treatment.EU_B2C: None,
    Treatment.REVERSE_CHARGE: "Reverse charge: VAT to be accounted for by the recipient "
    "(art. 196 Council Directive 2006/112/EC).",
    Treatment.EXPORT: "Supply outside the scope of the seller's VAT (place of supply: buyer's country).",
    Treatment.EXEMPT: "Exempt customer: no VAT charged.",
}


@dataclass(frozen=True, slots=True)
class TaxDecision:
    """The treatment of one invoice and the country whose rates apply (None: every rate is 0)."""

    treatment: Treatment
    rate_country: str | None

    @property
    def wording(self) -> str | None:
        return WORDING[self.treatment]

    def rate(self, category: str) -> Decimal:
        """The rate as a fraction (``Decimal("0.2")`` for 20 %)."""
        if self.rate_country is None:
            return Decimal(0)
        return rate(self.rate_country, category)


def _vat_prefix(country: str) -> str:
    return "EL" if country == "GR" else country


def normalize_vat_id(vat_id: str) -> str:
    return re.sub(r"[\s.\-]", "", vat_id).upper()


def vat_id_well_formed(vat_id: str | None, country: str) -> bool:
    """True if ``vat_id`` has the VIES format of ``country`` (and that country's prefix)."""
    if not vat_id:
        return False
    pattern = _VAT_RE.get(_vat_prefix(country))
    return bool(pattern and pattern.match(normalize_vat_id(vat_id)))


def rate(country: str, category: str) -> Decimal:
    """Rate of ``category`` in ``country`` as a fraction; a missing entry is an error, never 0."""
    try:
        percent = _RATES[country][category]
    except KeyError:
        raise TaxError(f"no {category!r} VAT rate for {country}") from None
    return Decimal(percent) / 100


def decide(seller_country: str, buyer_country: str, *, vat_id: str | None, tax_exempt: bool) -> TaxDecision:
    """The treatment of a sale; see the module doc for the rules in order of precedence."""
    if seller_country not in _RATES:
        raise TaxError(f"no VAT rates for seller country {seller_country}")
    if tax_exempt:
        return TaxDecision(Treatment.EXEMPT, None)
    if seller_country == buyer_country:
        return TaxDecision(Treatment.DOMESTIC, seller_country)
    if seller_country in EU and buyer_country in EU:
        if vat_id_well_formed(vat_id, buyer_country):
            return TaxDecision(Treatment.REVERSE_CHARGE, None)
        return TaxDecision(Treatment.EU_B2C, buyer_country)
    return TaxDecision(Treatment.EXPORT, None)


def line_tax(net: Money, rate_fraction: Decimal) -> Money:
    """Tax of one line under THE rounding rule (half-up to the minor unit, per line)."""
    return net.multiply(rate_fraction, rounding=TAX_ROUNDING)


def format_rate(rate_fraction: Decimal) -> str:
    """``Decimal("0.055")`` -> ``"5.5%"`` for documents."""
    pct = (rate_fraction * 100).normalize()
    return f"{pct:f}%"
