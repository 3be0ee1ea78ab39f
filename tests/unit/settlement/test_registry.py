"""The settlement registry: one parser/puller per PSP source, and bucket names mapped or refused."""

from __future__ import annotations

import inspect

import pytest

from shared.settlement.registry import CLIENTS, PULLERS, REPORT_PARSERS, detect


def test_every_psp_has_its_real_sources() -> None:
    assert set(REPORT_PARSERS) == {"stripe", "adyen", "paypal", "checkout"}
    assert set(PULLERS) == {"stripe", "gocardless", "braintree", "checkout"}
    assert set(REPORT_PARSERS) | set(PULLERS) == {"stripe", "adyen", "paypal", "gocardless", "braintree", "checkout"}
    assert set(CLIENTS) == set(PULLERS)
    for parser in REPORT_PARSERS.values():
        assert list(inspect.signature(parser).parameters) == ["data", "account", "source"]
    for puller in PULLERS.values():
        assert list(inspect.signature(puller).parameters) == ["client", "account", "since", "until"]


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("settlement/adyen/default/settlement_detail_report_batch_42.csv", ("adyen", "default")),
        ("settlement/paypal/eu-2/STL-20260302.01.009.CSV", ("paypal", "eu-2")),
        ("settlement/stripe/us/payout_reconciliation.itemized.5.csv", ("stripe", "us")),
        ("settlement/checkout/default/settlement-breakdown_ent_x_20260302.csv", ("checkout", "default")),
    ],
)
def test_detect_maps_bucket_names(name: str, expected: tuple[str, str]) -> None:
    assert detect(name) == expected


@pytest.mark.parametrize(
    "name",
    [
        "settlement/unknownpsp/default/file.csv",
        "settlement/gocardless/default/export.csv",  # API-only PSP: no file source
        "settlement/adyen/default/../stripe/x.csv",
        "settlement/adyen/../default/x.csv",
        "settlement/adyen/Default/x.csv",
        "settlement/adyen/default/sub/x.csv",
        "settlement/adyen/default/",
        "settlement/adyen/default/.hidden.csv",
        "settlement/adyen/default/x..csv",
        "invoices/adyen/default/x.csv",
        "/settlement/adyen/default/x.csv",
        "settlement/adyen/default/x y.csv",
        "settlement/adyen/default/x.csv\n",
        "",
    ],
)
def test_detect_refuses_anything_else(name: str) -> None:
    assert detect(name) is None


def test_source_for_gives_the_puller_with_its_client_built_for_the_account(monkeypatch: pytest.MonkeyPatch) -> None:
    import stripe as stripe_sdk

    from shared.settlement.adapters import checkout, stripe
    from shared.settlement.registry import NoSource, source_for

    monkeypatch.setenv("STRIPE_API_KEY__EU", "rk_test_not_a_secret")
    monkeypatch.setenv("CHECKOUT_SECRET_KEY__EU", "sk_sbox_not_a_secret")
    puller, client = source_for("stripe", "eu")
    assert puller is stripe.pull
    assert isinstance(client, stripe_sdk.StripeClient)
    puller, client = source_for("checkout", "eu")
    assert puller is checkout.pull
    assert isinstance(client, checkout.ReportsClient)
    assert client.secret_key == "sk_sbox_not_a_secret"
    for psp in ("adyen", "paypal", "nope"):  # file-only PSPs and unknown names have no API source
        with pytest.raises(NoSource):
            source_for(psp, "eu")
