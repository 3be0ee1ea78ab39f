"""PayPal: RSA verification with a test CA, the cert URL allow-list (no fetch elsewhere), cache, validity."""

from __future__ import annotations

import datetime as dt

import pytest

from shared.domain.money import Money
from shared.events.payments import DisputeWon, PaymentSucceeded
from shared.psp.base import InvalidSignature, ModeMismatch
from shared.psp.paypal import CertificateCache, CertificateError, PayPalAdapter, cert_url_mode
from shared.psp.signing import PayPalPki, paypal_test_pki
from tests.fixtures.psp import raw
from tests.unit.webhooks.helpers import config, delivery

WEBHOOK_ID = "8PT597110X687430LKGECATA"
CFG = config("paypal", PAYPAL_WEBHOOK_ID=WEBHOOK_ID)
BODY = raw("paypal_capture_completed.json")
PKI = paypal_test_pki()


class Fetcher:
    def __init__(self, *pkis: PayPalPki) -> None:
        self.by_url = {p.cert_url: p.chain_pem for p in pkis}
        self.calls: list[str] = []

    def __call__(self, url: str) -> bytes:
        self.calls.append(url)
        return self.by_url[url]


def adapter(*pkis: PayPalPki, roots: tuple[PayPalPki, ...] | None = None, clock=None) -> tuple[PayPalAdapter, Fetcher]:
    from cryptography import x509

    f = Fetcher(*pkis)
    trusted = [x509.load_pem_x509_certificate(p.root_pem) for p in (roots if roots is not None else pkis)]
    cache = CertificateCache(fetcher=f, roots=lambda: trusted, **({"clock": clock} if clock else {}))
    return PayPalAdapter(cache), f


def test_valid_signature_verifies_and_maps() -> None:
    a, _ = adapter(PKI)
    [note] = a.verify(delivery(BODY, PKI.headers(BODY, WEBHOOK_ID)), CFG)
    ev = a.normalise(note, CFG)
    assert isinstance(ev, PaymentSucceeded)
    assert (ev.amount, ev.psp_payment_id) == (Money(5700, "USD"), "42311647XV020574X")
    assert (ev.refs.invoice_id, ev.refs.attempt_id) == ("INV-2026-000300", "attempt-300-1")


def test_certificate_is_fetched_once_and_cached() -> None:
    a, f = adapter(PKI)
    for _ in range(3):
        a.verify(delivery(BODY, PKI.headers(BODY, WEBHOOK_ID)), CFG)
    assert f.calls == [PKI.cert_url]


@pytest.mark.parametrize(
    "url",
    [
        "http://api.paypal.com/v1/notifications/certs/CERT-1",
        "https://evil.example/v1/notifications/certs/CERT-1",
        "https://api.paypal.com.evil.example/v1/notifications/certs/CERT-1",
        "https://api.paypal.com@evil.example/v1/notifications/certs/CERT-1",
        "https://user:pw@api.paypal.com/v1/notifications/certs/CERT-1",
        "https://api.paypal.com:8443/v1/notifications/certs/CERT-1",
        "https://api.paypal.com/v1/other/CERT-1",
        "https://api.paypal.com/v1/notifications/certs/../../x",
        "https://127.0.0.1/v1/notifications/certs/CERT-1",
        "https://www.paypal.com/v1/notifications/certs/CERT-1",
        "file:///etc/passwd",
        "https://[::1",
    ],
)
def test_foreign_cert_urls_are_rejected_without_any_fetch(url: str) -> None:
    a, f = adapter(PKI)
    headers = {**PKI.headers(BODY, WEBHOOK_ID), "PAYPAL-CERT-URL": url}
    with pytest.raises(InvalidSignature):
        a.verify(delivery(BODY, headers), CFG)
    assert f.calls == []


def test_allowed_hosts_and_their_modes() -> None:
    base = "/v1/notifications/certs/CERT-1"
    assert cert_url_mode(f"https://api.paypal.com{base}") is True
    assert cert_url_mode(f"https://api-m.paypal.com{base}") is True
    assert cert_url_mode(f"https://api.sandbox.paypal.com{base}") is False
    assert cert_url_mode(f"https://api-m.sandbox.paypal.com{base}") is False


def test_wrong_webhook_id_or_tampered_body_fails() -> None:
    a, _ = adapter(PKI)
    with pytest.raises(InvalidSignature):
        a.verify(delivery(BODY, PKI.headers(BODY, "OTHER-WEBHOOK")), CFG)
    with pytest.raises(InvalidSignature):
        a.verify(delivery(BODY + b" ", PKI.headers(BODY, WEBHOOK_ID)), CFG)


def test_untrusted_ca_is_rejected() -> None:
    other = paypal_test_pki()
    a, _ = adapter(PKI, roots=(other,))
    with pytest.raises(CertificateError, match="not trusted"):
        a.verify(delivery(BODY, PKI.headers(BODY, WEBHOOK_ID)), CFG)


def test_certificate_for_another_name_is_rejected() -> None:
    pki = paypal_test_pki(dns_name="evil.example")
    a, _ = adapter(pki)
    with pytest.raises(CertificateError, match=r"paypal\.com"):
        a.verify(delivery(BODY, pki.headers(BODY, WEBHOOK_ID)), CFG)


def test_expired_certificate_is_rejected_even_from_cache() -> None:
    pki = paypal_test_pki(valid_days=2)
    now = [dt.datetime.now(dt.UTC)]
    a, _ = adapter(pki, clock=lambda: now[0])
    a.verify(delivery(BODY, pki.headers(BODY, WEBHOOK_ID)), CFG)
    now[0] += dt.timedelta(days=5)
    with pytest.raises(CertificateError, match="validity"):
        a.verify(delivery(BODY, pki.headers(BODY, WEBHOOK_ID)), CFG)


def test_not_yet_valid_certificate_is_rejected() -> None:
    pki = paypal_test_pki(valid_from=dt.datetime.now(dt.UTC) + dt.timedelta(days=3))
    a, _ = adapter(pki)
    with pytest.raises(CertificateError):
        a.verify(delivery(BODY, pki.headers(BODY, WEBHOOK_ID)), CFG)


def test_wrong_algorithm_and_missing_headers() -> None:
    a, f = adapter(PKI)
    with pytest.raises(InvalidSignature, match="ALGO"):
        a.verify(delivery(BODY, {**PKI.headers(BODY, WEBHOOK_ID), "PAYPAL-AUTH-ALGO": "SHA1withRSA"}), CFG)
    with pytest.raises(InvalidSignature, match="missing"):
        a.verify(delivery(BODY, {}), CFG)
    assert f.calls == []


def test_sandbox_certificate_on_live_endpoint_is_a_mode_mismatch() -> None:
    a, _ = adapter(PKI)
    with pytest.raises(ModeMismatch):
        a.verify(
            delivery(BODY, PKI.headers(BODY, WEBHOOK_ID)), config("paypal", livemode=True, PAYPAL_WEBHOOK_ID=WEBHOOK_ID)
        )


def test_fetch_failure_is_a_rejection_not_a_crash() -> None:
    def broken(url: str) -> bytes:
        raise OSError("network down")

    a = PayPalAdapter(CertificateCache(fetcher=broken, roots=list))
    with pytest.raises(CertificateError, match="fetched"):
        a.verify(delivery(BODY, PKI.headers(BODY, WEBHOOK_ID)), CFG)


def test_dispute_resolved_in_our_favour() -> None:
    body = raw("paypal_dispute_resolved.json")
    a, _ = adapter(PKI)
    [note] = a.verify(delivery(body, PKI.headers(body, WEBHOOK_ID)), CFG)
    ev = a.normalise(note, CFG)
    assert isinstance(ev, DisputeWon)
    assert (ev.dispute_id, ev.psp_payment_id, ev.amount) == ("PP-D-21692", "42311647XV020574X", Money(5700, "USD"))
