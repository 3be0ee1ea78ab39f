"""PayPal certificate fetching: no redirects, failures backed off, no fetch before every cheap check passed."""

from __future__ import annotations

import base64
import datetime as dt
import http.server
import threading
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from cryptography import x509

from shared.config import reset_settings
from shared.psp.base import Delivery, PspConfig, WebhookError
from shared.psp.paypal import (
    FAILURE_BUDGET,
    CertificateCache,
    CertificateError,
    PayPalAdapter,
    fetch_url,
    local_cert_dir,
)
from shared.psp.signing import paypal_test_pki
from tests.fixtures.psp import raw
from tests.unit.webhooks.helpers import config, delivery

WEBHOOK_ID = "8PT597110X687430LKGECATA"
CFG = config("paypal", PAYPAL_WEBHOOK_ID=WEBHOOK_ID)
BODY = raw("paypal_capture_completed.json")
PKI = paypal_test_pki()
ROOTS = [x509.load_pem_x509_certificate(PKI.root_pem)]


class Clock:
    def __init__(self) -> None:
        self.now = dt.datetime.now(dt.UTC)

    def __call__(self) -> dt.datetime:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += dt.timedelta(seconds=seconds)


class CountingFetcher:
    """Fails (like a network outage) until told to serve the certificate."""

    def __init__(self, serve: bool = False) -> None:
        self.calls: list[str] = []
        self.serve = serve

    def __call__(self, url: str) -> bytes:
        self.calls.append(url)
        if not self.serve:
            raise OSError("connection refused")
        return PKI.chain_pem


def _adapter(fetcher: Callable[[str], bytes], clock: Clock | None = None) -> PayPalAdapter:
    return PayPalAdapter(CertificateCache(fetcher=fetcher, roots=lambda: ROOTS, clock=clock or Clock()))


def _signed(clock: Clock, url: str | None = None) -> Delivery:
    headers = PKI.headers(BODY, WEBHOOK_ID)
    if url:
        headers["PAYPAL-CERT-URL"] = url
    return delivery(BODY, headers, at=clock.now)


# -- redirects --------------------------------------------------------------------------------------


@pytest.fixture
def local_server(monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[str, list[str]]]:
    """http://127.0.0.1:<port>: ``/v1/notifications/certs/*`` answers 302 to ``/pem``, which serves a cert."""
    for k in ("http_proxy", "HTTP_PROXY", "https_proxy", "HTTPS_PROXY", "all_proxy", "ALL_PROXY"):
        monkeypatch.delenv(k, raising=False)
    monkeypatch.setenv("no_proxy", "*")
    hits: list[str] = []

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            hits.append(self.path)
            if self.path == "/pem":
                self.send_response(200)
                self.send_header("Content-Length", str(len(PKI.chain_pem)))
                self.end_headers()
                self.wfile.write(PKI.chain_pem)
                return
            self.send_response(302)
            self.send_header("Location", "/pem")
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *args: object) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", hits
    finally:
        server.shutdown()
        server.server_close()


def test_fetch_serves_a_plain_answer_but_never_follows_a_redirect(local_server: tuple[str, list[str]]) -> None:
    base, hits = local_server
    assert fetch_url(base + "/pem") == PKI.chain_pem  # the server works: the refusal below is the redirect's
    with pytest.raises(CertificateError, match="302; redirects are not followed"):
        fetch_url(base + "/v1/notifications/certs/CERT-1")
    assert hits == ["/pem", "/v1/notifications/certs/CERT-1"]  # /pem was not requested a second time


def test_redirecting_certificate_url_is_refused_and_not_refetched(local_server: tuple[str, list[str]]) -> None:
    base, hits = local_server
    clock = Clock()
    # The allow-listed PayPal URL is answered by the local server (as a hijacked or misbehaving host would).
    a = _adapter(lambda url: fetch_url(base + url.split("paypal.com", 1)[1]), clock)
    for _ in range(3):
        with pytest.raises(CertificateError):
            a.verify(_signed(clock), CFG)
    assert hits == ["/v1/notifications/certs/" + PKI.cert_url.rsplit("/", 1)[1]]


# -- failure backoff --------------------------------------------------------------------------------


def test_repeated_failures_fetch_once_per_backoff_window() -> None:
    clock = Clock()
    f = CountingFetcher()
    a = _adapter(f, clock)

    def attempts(n: int) -> None:
        for _ in range(n):
            with pytest.raises(CertificateError):
                a.verify(_signed(clock), CFG)

    attempts(5)
    assert len(f.calls) == 1
    clock.advance(29)
    attempts(5)
    assert len(f.calls) == 1  # first window: 30 s
    clock.advance(1)
    attempts(5)
    assert len(f.calls) == 2
    clock.advance(59)
    attempts(3)
    assert len(f.calls) == 2  # second window doubled: 60 s
    clock.advance(1)
    f.serve = True  # PayPal is back: the next allowed fetch succeeds and is cached
    for _ in range(3):
        assert a.verify(_signed(clock), CFG)
    assert len(f.calls) == 3


def test_many_failing_urls_pause_fetching_for_a_minute() -> None:
    clock = Clock()
    f = CountingFetcher()
    a = _adapter(f, clock)
    url = "https://api.sandbox.paypal.com/v1/notifications/certs/CERT-{}"
    for i in range(FAILURE_BUDGET + 5):
        with pytest.raises(CertificateError):
            a.verify(_signed(clock, url.format(i)), CFG)
    assert len(f.calls) == FAILURE_BUDGET
    clock.advance(61)
    with pytest.raises(CertificateError, match="fetched"):
        a.verify(_signed(clock, url.format("new")), CFG)
    assert len(f.calls) == FAILURE_BUDGET + 1


def test_untrusted_certificate_is_also_backed_off() -> None:
    other = paypal_test_pki()
    clock = Clock()
    calls: list[str] = []

    def fetch(url: str) -> bytes:
        calls.append(url)
        return other.chain_pem

    a = _adapter(fetch, clock)
    for _ in range(3):
        with pytest.raises(CertificateError):
            a.verify(delivery(BODY, other.headers(BODY, WEBHOOK_ID), at=clock.now), CFG)
    assert len(calls) == 1


# -- cheap checks first -----------------------------------------------------------------------------


def _iso(t: dt.datetime) -> str:
    return t.strftime("%Y-%m-%dT%H:%M:%SZ")


# A header value: a string, None (header removed), or a transmission time as an offset from the delivery's
# receive time. Why offsets and not a time taken at import: the signed headers carry the time they are made,
# and a suite on a loaded machine reaches this module more than the accepted 10 min clock skew after import.
CHEAP_FAILURES: dict[str, tuple[dict[str, str | dt.timedelta | None], bytes, dict[str, str]]] = {
    "missing signature": ({"PAYPAL-TRANSMISSION-SIG": None}, BODY, {}),
    "missing transmission id": ({"PAYPAL-TRANSMISSION-ID": None}, BODY, {}),
    "wrong algorithm": ({"PAYPAL-AUTH-ALGO": "SHA1withRSA"}, BODY, {}),
    "no webhook id configured": ({}, BODY, {"PAYPAL_WEBHOOK_ID": ""}),
    "foreign certificate host": ({"PAYPAL-CERT-URL": "https://evil.example/v1/notifications/certs/C"}, BODY, {}),
    "live certificate on sandbox endpoint": (
        {"PAYPAL-CERT-URL": "https://api.paypal.com/v1/notifications/certs/C"},
        BODY,
        {},
    ),
    "signature not base64": ({"PAYPAL-TRANSMISSION-SIG": "not base64!"}, BODY, {}),
    "signature too short": ({"PAYPAL-TRANSMISSION-SIG": base64.b64encode(b"x" * 16).decode()}, BODY, {}),
    "transmission id too long": ({"PAYPAL-TRANSMISSION-ID": "t" * 200}, BODY, {}),
    "transmission time garbage": ({"PAYPAL-TRANSMISSION-TIME": "yesterday"}, BODY, {}),
    "transmission time in the future": ({"PAYPAL-TRANSMISSION-TIME": dt.timedelta(hours=1)}, BODY, {}),
    "transmission time too old": ({"PAYPAL-TRANSMISSION-TIME": -dt.timedelta(days=5)}, BODY, {}),
    "body not JSON": ({}, b"<xml/>", {}),
    "body a JSON array": ({}, b"[1, 2]", {}),
    "body without event type": ({}, b'{"id": "WH-1"}', {}),
}


@pytest.mark.parametrize("case", list(CHEAP_FAILURES))
def test_no_fetch_when_a_cheap_check_fails(case: str) -> None:
    changes, body, cfg_changes = CHEAP_FAILURES[case]
    headers: dict[str, str] = PKI.headers(body, WEBHOOK_ID)
    now = dt.datetime.now(dt.UTC)
    for k, v in changes.items():
        if v is None:
            headers.pop(k)
        elif isinstance(v, dt.timedelta):
            headers[k] = _iso(now + v)
        else:
            headers[k] = v
    cfg = PspConfig("paypal", "default", False, {"PAYPAL_WEBHOOK_ID": WEBHOOK_ID, **cfg_changes})
    f = CountingFetcher(serve=True)
    a = _adapter(f)
    with pytest.raises(WebhookError):
        a.verify(delivery(body, headers, at=now), cfg)
    assert f.calls == []


def test_the_cheap_checks_let_a_genuine_delivery_through() -> None:
    """The control for the cases above: unchanged, the same delivery fetches once and verifies."""
    f = CountingFetcher(serve=True)
    a = _adapter(f)
    [note] = a.verify(delivery(BODY, PKI.headers(BODY, WEBHOOK_ID), at=dt.datetime.now(dt.UTC)), CFG)
    assert note.event_type == "PAYMENT.CAPTURE.COMPLETED"
    assert f.calls == [PKI.cert_url]


# -- settings ----------------------------------------------------------------------------------------


def test_local_cert_dir_is_a_setting_honoured_only_on_emulators(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GOOGLE_CLOUD_PROJECT", "demo-paypal")
    monkeypatch.setenv("PAYPAL_CERT_DIR", "certs")
    monkeypatch.setenv("FIRESTORE_EMULATOR_HOST", "127.0.0.1:1")
    monkeypatch.delenv("PUBSUB_EMULATOR_HOST", raising=False)
    reset_settings()
    try:
        assert local_cert_dir() == Path("certs")
        monkeypatch.delenv("FIRESTORE_EMULATOR_HOST")
        reset_settings()
        assert local_cert_dir() is None  # in the cloud the setting cannot replace PayPal's certificates
    finally:
        reset_settings()
