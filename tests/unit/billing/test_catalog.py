"""Catalog validation: tiers, no float, bounds, currencies, immutability of used prices, plain-dict round trips."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from shared.domain.calendar import Unit
from shared.domain.catalog import Catalog, CatalogError, Price, Product, Recurring, check_price_update
from shared.domain.tax import rate
from tests.unit.billing.factories import price, tiers


@pytest.mark.parametrize(
    "rows",
    [
        ((10, 1, 0), (5, 1, 0), (None, 1, 0)),  # descending
        ((10, 1, 0), (10, 1, 0), (None, 1, 0)),  # equal bounds
        ((10, 1, 0), (20, 1, 0)),  # last tier bounded
        ((None, 1, 0), (20, 1, 0), (None, 1, 0)),  # open tier in the middle
        ((0, 1, 0), (None, 1, 0)),  # a bound below 1
        (),
    ],
)
def test_tiers_ascending_and_last_open_ended(rows: tuple[tuple[int | None, int, int], ...]) -> None:
    for mode in ("graduated", "volume"):
        with pytest.raises(ValidationError):
            price(tiers(mode, *rows))


@pytest.mark.parametrize(
    "pricing",
    [
        {"model": "per_unit", "unit_amount": 1.5},  # float
        {"model": "per_unit", "unit_amount": True},
        {"model": "per_unit", "unit_amount": "0.0000000000001"},  # 13 places
        {"model": "per_unit", "unit_amount": "-1"},
        {"model": "per_unit", "unit_amount": "1e13"},  # above the bound
        {"model": "per_unit", "unit_amount": "NaN"},
        {"model": "per_unit", "unit_amount": "abc"},
        {"model": "package", "package_size": 2.0, "package_amount": 1},  # a float size
        {"model": "package", "package_size": 0, "package_amount": 1},
        {"model": "graduated", "tiers": [{"up_to": 5.0, "unit_amount": 1}, {"unit_amount": 1}]},
        {"model": "graduated", "tiers": [{"unit_amount": 1, "flat_amount": 0.1}]},
        {"model": "percentage", "rate": "1.5"},  # not a model of ours
    ],
)
def test_no_float_and_bounded_numbers(pricing: dict[str, Any]) -> None:
    with pytest.raises(ValidationError):
        price(pricing)


def test_twelve_decimal_places_are_kept_exactly() -> None:
    p = price({"model": "per_unit", "unit_amount": "0.123456789012"})
    assert p.pricing.unit_amount == Decimal("0.123456789012")  # type: ignore[union-attr]
    assert price({"model": "per_unit", "unit_amount": "1.5000000000000"}).pricing.unit_amount == Decimal("1.5")  # type: ignore[union-attr]


@pytest.mark.parametrize(
    "kw",
    [
        {"currency": "XXX"},  # unknown
        {"currency": "XAU"},  # no minor unit
        {"tax_category": "luxury"},
        {"recurring": {"interval": "month", "interval_count": 37}},
        {"recurring": {"interval": "week", "interval_count": 0}},
        {"recurring": {"interval": "fortnight"}},
        {"id": "has space"},
        {"surprise": 1},
    ],
)
def test_price_fields_are_validated(kw: dict[str, Any]) -> None:
    with pytest.raises(ValidationError):
        price({"model": "per_unit", "unit_amount": 1}, **kw)


def test_tax_categories_are_those_of_the_tax_table() -> None:
    from shared.domain.catalog import TAX_CATEGORIES

    for category in TAX_CATEGORIES:
        assert rate("FR", category) > 0
    assert Recurring(interval=Unit.YEAR, interval_count=3).interval_count == 3


def test_a_used_price_changes_only_its_status_and_nickname() -> None:
    p = price({"model": "per_unit", "unit_amount": "10.5"})
    check_price_update(p, p.model_copy(update={"active": False, "nickname": "legacy"}), used=True)
    check_price_update(p, price({"model": "per_unit", "unit_amount": "10.50"}), used=True)  # same value
    for change in (
        {"pricing": {"model": "per_unit", "unit_amount": "11"}},
        {"currency": "USD"},
        {"tax_behavior": "inclusive"},
        {"tax_category": "reduced"},
        {"recurring": {"interval": "month"}},
    ):
        proposed = Price.model_validate({**p.model_dump(mode="json"), **change})
        check_price_update(p, proposed, used=False)  # a draft price may still be fixed
        with pytest.raises(CatalogError, match="create a new price"):
            check_price_update(p, proposed, used=True)
    with pytest.raises(CatalogError):
        check_price_update(p, p.model_copy(update={"id": "other"}), used=False)


def test_prices_are_immutable_values() -> None:
    p = price({"model": "per_unit", "unit_amount": 1})
    with pytest.raises(ValidationError):
        p.currency = "USD"


def test_a_product_has_a_price_per_currency() -> None:
    monthly = {"interval": "month"}
    cat = Catalog(
        products=(Product(id="prod-1", name="Seats"), Product(id="gone", name="Old", active=False)),
        prices=(
            price({"model": "per_unit", "unit_amount": 1000}, id="eur", recurring=monthly),
            price({"model": "per_unit", "unit_amount": 1500}, id="jpy", currency="JPY", recurring=monthly),
            price({"model": "per_unit", "unit_amount": 3}, id="kwd", currency="KWD", recurring=monthly),
            price({"model": "per_unit", "unit_amount": 900}, id="eur-old", recurring=monthly, active=False),
            price({"model": "per_unit", "unit_amount": 10000}, id="eur-y", recurring={"interval": "year"}),
        ),
    )
    assert cat.currencies("prod-1") == {"EUR", "JPY", "KWD"}
    assert [p.id for p in cat.prices_for("prod-1", "EUR")] == ["eur", "eur-y"]
    assert [p.id for p in cat.prices_for("prod-1", "EUR", recurring=Recurring(interval=Unit.MONTH))] == ["eur"]
    assert cat.prices_for("gone", "EUR") == ()
    assert cat.price("kwd").currency == "KWD"
    with pytest.raises(CatalogError):
        cat.price("nope")
    with pytest.raises(ValidationError):
        Catalog(products=(), prices=(cat.price("eur"),))  # unknown product
    with pytest.raises(ValidationError):
        Catalog(products=cat.products, prices=(cat.price("eur"), cat.price("eur")))


amounts = st.decimals(0, 10**9, places=12).map(str)


@st.composite
def pricings(draw: st.DrawFn) -> dict[str, Any]:
    kind = draw(st.sampled_from(["per_unit", "package", "graduated", "volume"]))
    if kind == "per_unit":
        return {"model": kind, "unit_amount": draw(amounts)}
    if kind == "package":
        return {
            "model": kind,
            "package_size": draw(st.integers(1, 10**6)),
            "package_amount": draw(amounts),
            "rounding": draw(st.sampled_from(["up", "down"])),
            "free_units": draw(st.integers(0, 100)),
        }
    bounds = sorted(draw(st.sets(st.integers(1, 10**9), max_size=4)))
    return tiers(kind, *[(b, draw(amounts), draw(amounts)) for b in [*bounds, None]])


@settings(deadline=None)
@given(pricings(), st.sampled_from(["EUR", "JPY", "KWD"]), st.sampled_from(["exclusive", "inclusive"]))
def test_prices_round_trip_through_plain_json_dicts(pricing: dict[str, Any], currency: str, behavior: str) -> None:
    p = price(pricing, currency=currency, tax_behavior=behavior, recurring={"interval": "month", "interval_count": 3})
    plain = p.model_dump(mode="json")
    assert Price.model_validate(plain) == p
    assert Price.model_validate_json(p.model_dump_json()) == p

    def no_float(v: object) -> None:
        assert not isinstance(v, float)
        for x in v.values() if isinstance(v, dict) else v if isinstance(v, list) else ():
            no_float(x)

    no_float(plain)
