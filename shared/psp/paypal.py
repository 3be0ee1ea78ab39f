"""PayPal REST webhooks: RSA (SHA256withRSA) over ``transmission_id|time|webhook_id|crc32(body)``.

The signing certificate's URL arrives in a header, i.e. from whoever sends the request, so fetching it
is the one network call an unauthenticated request can cause. Rules:

* every cheap check runs first (headers present, algorithm, webhook id configured, URL allowed, mode
  of the URL, signature is base64 of a plausible length, transmission time sane, body is a JSON event):
  a request failing any of them never causes a fetch;
* the URL must be https on PayPal's own API hosts (anything else is refused before any network access:
  server-side request forgery), and redirects are never followed (a 3xx is a failure);
* a verified certificate is cached per URL and re-checked for its validity dates on every use: chained
  to a trusted root and issued to a ``*.paypal.com`` name;
* a failure (network, HTTP status, redirect, untrusted chain) is cached too, with a per-URL backoff
  (30 s doubling to 10 min), and after 10 failures within a minute no uncached URL is fetched until
  the minute is over: forged requests cannot make us fetch on every request.

The fetcher, the trust roots and the clock are injectable so tests use their own CA and time.
Live or sandbox is told by the certificate host (``api.sandbox.paypal.com`` / ``api-m.sandbox...``),
which the signature binds to PayPal's own key infrastructure.
"""

from __future__ import annotations

import base64
import datetime as dt
import functools
import json
import threading
import urllib.error
import urllib.request
import zlib
from collections import deque
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from cryptography import x509
from cryptography.exceptions import InvalidSignature as CryptoInvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa

from shared.config import ConfigError, get_settings
from shared.events.payments import (
    DisputeAccepted,
    DisputeEvent,
    DisputeLost,
    DisputeNeedsResponse,
    DisputeOpened,
    DisputePreArbitration,
    DisputeUnderReview,
    DisputeWon,
    PaymentAuthorized,
    PaymentEvent,
    PaymentFailed,
    PaymentMethodRevoked,
    PaymentPending,
    PaymentRefunded,
    PaymentSucceeded,
)
from shared.psp.base import (
    Delivery,
    InvalidSignature,
    MalformedPayload,
    ModeMismatch,
    Notification,
    PspConfig,
    classify,
    event_fields,
    mapping,
    money_decimal,
    obj,
    parse_time,
    refs_from,
    text,
)

LIVE_HOSTS = frozenset({"api.paypal.com", "api-m.paypal.com"})
SANDBOX_HOSTS = frozenset({"api.sandbox.paypal.com", "api-m.sandbox.paypal.com"})
CERT_PATH_PREFIX = "/v1/notifications/certs/"
MAX_CERT_BYTES = 64 * 1024
CACHE_SIZE = 32
FAILURE_BACKOFF = tuple(dt.timedelta(seconds=s) for s in (30, 60, 120, 300, 600))
FAILURE_BUDGET = 10  # failed fetches, any URL, per FAILURE_WINDOW before uncached URLs are refused
FAILURE_WINDOW = dt.timedelta(minutes=1)
MAX_TRANSMISSION_AGE = dt.timedelta(days=4)  # PayPal retries a notification for 3 days
MAX_CLOCK_SKEW = dt.timedelta(minutes=10)
SIGNATURE_BYTES = range(128, 1025)  # RSA 1024 to 8192 bits

Fetcher = Callable[[str], bytes]


class CertificateError(InvalidSignature):
    """The certificate URL or the certificate itself is not acceptable."""


def cert_url_mode(url: str) -> bool:
    """Validate a PAYPAL-CERT-URL without fetching it; returns True for live, False for sandbox."""
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as exc:
        raise CertificateError("unparseable certificate URL") from exc
    host = (parts.hostname or "").lower()
    if parts.scheme != "https" or parts.username or parts.password or port not in (None, 443):
        raise CertificateError("certificate URL must be plain https")
    if host not in LIVE_HOSTS | SANDBOX_HOSTS:
        raise CertificateError(f"certificate host {host!r} is not a PayPal API host")
    if not parts.path.startswith(CERT_PATH_PREFIX) or ".." in parts.path or parts.fragment:
        raise CertificateError("unexpected certificate path")
    return host in LIVE_HOSTS


def local_cert_dir() -> Path | None:
    """``PAYPAL_CERT_DIR`` for the offline local stack: honoured only when running on the emulators.

    Certificates for allow-listed URLs are then read from ``<dir>/<last path segment>`` and trust roots
    from ``<dir>/roots/*.pem`` instead of the network and the system store. In the cloud (no emulator
    variables) the setting is ignored, so it can never weaken production verification.
    """
    try:
        settings = get_settings()
    except ConfigError:
        return None
    if not settings.paypal_cert_dir or not settings.on_emulators:
        return None
    return Path(settings.paypal_cert_dir)


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args: Any, **kwargs: Any) -> None:
        return None  # urllib then raises the 3xx as an HTTPError


def fetch_url(url: str, timeout_s: float = 5.0) -> bytes:
    """GET ``url`` (validated by the caller) without following redirects, with a timeout and a size cap."""
    opener = urllib.request.build_opener(_NoRedirect)
    req = urllib.request.Request(url, headers={"User-Agent": "payments-webhooks"})  # noqa: S310 (allow-listed)
    try:
        with opener.open(req, timeout=timeout_s) as r:
            data: bytes = r.read(MAX_CERT_BYTES + 1)
    except urllib.error.HTTPError as exc:
        exc.close()
        if 300 <= exc.code < 400:
            raise CertificateError(f"certificate URL answered {exc.code}; redirects are not followed") from None
        raise CertificateError(f"certificate URL answered {exc.code}") from None
    if len(data) > MAX_CERT_BYTES:
        raise CertificateError("certificate response too large")
    return data


def https_fetch(url: str) -> bytes:
    """Fetch a certificate (already validated URL): the local directory on the emulators, else PayPal."""
    local = local_cert_dir()
    if local is not None:
        name = urlsplit(url).path.rsplit("/", 1)[-1]
        if not name or name.startswith("."):
            raise CertificateError("bad certificate name")
        try:
            return (local / name).read_bytes()[: MAX_CERT_BYTES + 1]
        except OSError as exc:
            raise CertificateError(f"no local certificate {name}") from exc
    return fetch_url(url)


def default_roots() -> list[x509.Certificate]:
    """The trust roots: the local directory's on the emulators (re-read, it is tiny), else the runtime's."""
    local = local_cert_dir()
    if local is not None:
        return [
            c for f in sorted((local / "roots").glob("*.pem")) for c in x509.load_pem_x509_certificates(f.read_bytes())
        ]
    return list(_system_roots())


@functools.cache
def _system_roots() -> tuple[x509.Certificate, ...]:
    """certifi's bundle when present, else the system's; parsed once per process."""
    import ssl

    path: str | None
    try:
        import certifi

        path = certifi.where()
    except ImportError:  # pragma: no cover - google-auth brings certifi in practice
        path = ssl.get_default_verify_paths().cafile
    if not path:
        return ()
    with open(path, "rb") as f:
        return tuple(x509.load_pem_x509_certificates(f.read()))


@dataclass(frozen=True, slots=True)
class _Failure:
    count: int
    retry_at: dt.datetime
    reason: str


class CertificateCache:
    """Verified certificates by URL, and recent fetch failures with their backoff."""

    def __init__(
        self,
        fetcher: Fetcher = https_fetch,
        roots: Callable[[], Sequence[x509.Certificate]] = default_roots,
        clock: Callable[[], dt.datetime] = lambda: dt.datetime.now(dt.UTC),
    ) -> None:
        self.fetcher = fetcher
        self._roots_factory = roots  # called per verification, i.e. only on a cache miss
        self.clock = clock
        self._cache: dict[str, x509.Certificate] = {}
        self._failures: dict[str, _Failure] = {}
        self._recent_failures: deque[dt.datetime] = deque()
        self._lock = threading.Lock()
        self.fetches = 0

    def leaf(self, url: str) -> x509.Certificate:
        cert_url_mode(url)  # never fetch a URL that is not PayPal's
        with self._lock:
            cert = self._cache.get(url)
            if cert is None:
                self._check_backoff(url, self.clock())
        if cert is None:
            cert = self._fetch(url)
        now = self.clock()
        if not (cert.not_valid_before_utc <= now <= cert.not_valid_after_utc):
            with self._lock:
                self._cache.pop(url, None)
            raise CertificateError("PayPal certificate is outside its validity period")
        return cert

    def _check_backoff(self, url: str, now: dt.datetime) -> None:
        """Refuse without fetching while the URL, or fetching as a whole, is backing off (lock held)."""
        failure = self._failures.get(url)
        if failure is not None and now < failure.retry_at:
            raise CertificateError(f"certificate fetch failed recently ({failure.reason}); backing off")
        while self._recent_failures and self._recent_failures[0] <= now - FAILURE_WINDOW:
            self._recent_failures.popleft()
        if len(self._recent_failures) >= FAILURE_BUDGET:
            raise CertificateError("too many certificate fetch failures; fetching paused")

    def _fetch(self, url: str) -> x509.Certificate:
        self.fetches += 1
        try:
            try:
                pem = self.fetcher(url)
            except CertificateError:
                raise
            except Exception as exc:  # network trouble: PayPal retries; nothing is stored
                raise CertificateError(f"certificate could not be fetched: {type(exc).__name__}") from exc
            cert = self._verify_chain(pem)
        except CertificateError as exc:
            self._record_failure(url, exc.detail)
            raise
        with self._lock:
            self._failures.pop(url, None)
            if len(self._cache) >= CACHE_SIZE:
                self._cache.pop(next(iter(self._cache)))
            self._cache[url] = cert
        return cert

    def _record_failure(self, url: str, reason: str) -> None:
        now = self.clock()
        with self._lock:
            previous = self._failures.pop(url, None)
            count = previous.count + 1 if previous else 1
            if len(self._failures) >= 8 * CACHE_SIZE:
                self._failures.pop(next(iter(self._failures)))
            backoff = FAILURE_BACKOFF[min(count, len(FAILURE_BACKOFF)) - 1]
            self._failures[url] = _Failure(count, now + backoff, reason[:100])
            self._recent_failures.append(now)

    def _verify_chain(self, pem: bytes) -> x509.Certificate:
        from cryptography.x509.verification import PolicyBuilder, Store, VerificationError

        try:
            certs = x509.load_pem_x509_certificates(pem)
        except ValueError as exc:
            raise CertificateError("certificate is not PEM") from exc
        leaf, intermediates = certs[0], certs[1:]
        names = _dns_names(leaf)
        name = next((n for n in names if n == "paypal.com" or n.endswith(".paypal.com")), None)
        if name is None:
            raise CertificateError("certificate is not issued to a paypal.com name")
        roots = list(self._roots_factory())
        if not roots:
            raise CertificateError("no trust roots available")
        try:
            verifier = PolicyBuilder().store(Store(roots)).time(self.clock()).build_server_verifier(x509.DNSName(name))
            verifier.verify(leaf, intermediates)
        except (VerificationError, ValueError) as exc:
            raise CertificateError(f"certificate chain not trusted: {exc}") from exc
        if not isinstance(leaf.public_key(), rsa.RSAPublicKey):
            raise CertificateError("certificate key is not RSA")
        return leaf


def _dns_names(cert: x509.Certificate) -> list[str]:
    try:
        san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound:
        return []
    return [n.lower() for n in san.get_values_for_type(x509.DNSName)]


def _check_transmission_time(value: str, received_at: dt.datetime) -> None:
    """RFC 3339, not in the future beyond clock skew, not older than PayPal's retry period."""
    try:
        t = dt.datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
    except ValueError:
        raise InvalidSignature("PAYPAL-TRANSMISSION-TIME is not a timestamp") from None
    if t.tzinfo is None:
        t = t.replace(tzinfo=dt.UTC)
    if not (received_at - MAX_TRANSMISSION_AGE <= t <= received_at + MAX_CLOCK_SKEW):
        raise InvalidSignature("PAYPAL-TRANSMISSION-TIME is outside the accepted window")


def signed_message(transmission_id: str, transmission_time: str, webhook_id: str, body: bytes) -> bytes:
    return f"{transmission_id}|{transmission_time}|{webhook_id}|{zlib.crc32(body) & 0xFFFFFFFF}".encode()


class PayPalAdapter:
    name = "paypal"
    content_types = ("application/json",)
    required_env = ("PAYPAL_WEBHOOK_ID",)
    optional_env: tuple[str, ...] = ()
    headers_of_interest = (
        "PAYPAL-TRANSMISSION-ID",
        "PAYPAL-TRANSMISSION-TIME",
        "PAYPAL-CERT-URL",
        "PAYPAL-AUTH-ALGO",
        "User-Agent",
    )
    invalid_signature_status = 401
    ack_body = '{"received": true}'
    ack_mimetype = "application/json"

    def __init__(self, certificates: CertificateCache | None = None) -> None:
        self.certificates = certificates or CertificateCache()

    def verify(self, delivery: Delivery, config: PspConfig) -> list[Notification]:
        """Every cheap check first; only then the certificate (maybe a fetch) and the RSA signature."""
        h = {
            k: delivery.header(f"PAYPAL-{k}") or ""
            for k in ("TRANSMISSION-ID", "TRANSMISSION-TIME", "TRANSMISSION-SIG", "CERT-URL", "AUTH-ALGO")
        }
        missing = [k for k, v in h.items() if not v]
        if missing:
            raise InvalidSignature(f"missing PayPal headers: {', '.join(missing)}")
        if h["AUTH-ALGO"] != "SHA256withRSA":
            raise InvalidSignature(f"unsupported PAYPAL-AUTH-ALGO {h['AUTH-ALGO'][:40]!r}")
        webhook_id = config.get("PAYPAL_WEBHOOK_ID")
        if not webhook_id:
            raise InvalidSignature("no PayPal webhook id configured")
        live = cert_url_mode(h["CERT-URL"])
        if live != config.livemode:
            raise ModeMismatch(f"{'live' if live else 'sandbox'} certificate on a livemode={config.livemode} endpoint")
        try:
            signature = base64.b64decode(h["TRANSMISSION-SIG"], validate=True)
        except ValueError as exc:
            raise InvalidSignature("PAYPAL-TRANSMISSION-SIG is not base64") from exc
        if len(signature) not in SIGNATURE_BYTES:
            raise InvalidSignature("PAYPAL-TRANSMISSION-SIG has an implausible length")
        if len(h["TRANSMISSION-ID"]) > 128:
            raise InvalidSignature("PAYPAL-TRANSMISSION-ID is too long")
        _check_transmission_time(h["TRANSMISSION-TIME"], delivery.received_at)
        try:
            event = obj(json.loads(delivery.body), "event")
        except (ValueError, UnicodeDecodeError) as exc:
            raise MalformedPayload("body is not JSON") from exc
        note = Notification(
            event_id=text(event.get("id"), "id"), event_type=text(event.get("event_type"), "event_type"), payload=event
        )
        key = self.certificates.leaf(h["CERT-URL"]).public_key()
        assert isinstance(key, rsa.RSAPublicKey)  # checked when the certificate was cached
        message = signed_message(h["TRANSMISSION-ID"], h["TRANSMISSION-TIME"], webhook_id, delivery.body)
        try:
            key.verify(signature, message, padding.PKCS1v15(), hashes.SHA256())
        except CryptoInvalidSignature as exc:
            raise InvalidSignature("PayPal transmission signature does not verify") from exc
        return [note]

    def normalise(self, note: Notification, config: PspConfig) -> PaymentEvent | None:
        ev = note.payload
        r = obj(ev.get("resource"), "resource")
        t = note.event_type
        common: dict[str, Any] = {
            "psp": "paypal",
            "account": config.account,
            "psp_event_id": note.event_id,
            "livemode": config.livemode,
            "psp_created_at": parse_time(ev.get("create_time")),
        }
        if t.startswith("PAYMENT.CAPTURE.") or t == "PAYMENT.AUTHORIZATION.CREATED":
            amount = _amount(r.get("amount"))
            refs = refs_from({}, invoice_id=_str(r.get("invoice_id")), attempt_id=_str(r.get("custom_id")))
            if t == "PAYMENT.CAPTURE.REFUNDED":
                capture_id = _link_id(r, "up") or text(r.get("id"), "resource.id")
                return PaymentRefunded(
                    psp_payment_id=capture_id,
                    refund_id=text(r.get("id"), "resource.id"),
                    amount=amount,
                    refunded=amount,
                    full=False,
                    refs=refs,
                    **common,
                )
            common.update(psp_payment_id=text(r.get("id"), "resource.id"), amount=amount, refs=refs)
            if t == "PAYMENT.AUTHORIZATION.CREATED":
                return PaymentAuthorized(**common)
            if t == "PAYMENT.CAPTURE.COMPLETED":
                return PaymentSucceeded(**common)
            if t == "PAYMENT.CAPTURE.PENDING":
                return PaymentPending(**common)
            if t == "PAYMENT.CAPTURE.DENIED":
                # The processor's response code when the capture carries one, then the status reason.
                code = _str(mapping(r.get("processor_response")).get("response_code"))
                reason = _str(mapping(r.get("status_details")).get("reason"))
                decline = classify("paypal", code, reason, "DENIED")
                return PaymentFailed(
                    decline_code=code or "DENIED", **decline.event_fields(common["psp_created_at"]), **common
                )
            return None
        if t in DISPUTE_TYPES:
            return _dispute(t, r, common)
        if t in ("VAULT.PAYMENT-TOKEN.DELETED", "BILLING_AGREEMENTS.AGREEMENT.CANCELLED"):
            return PaymentMethodRevoked(psp_payment_id=text(r.get("id"), "resource.id"), reason=t.lower(), **common)
        return None


def _amount(a: Any) -> Any:
    a = obj(a, "amount")
    return money_decimal(a.get("value"), a.get("currency_code"))


def _str(v: Any) -> str | None:
    return v if isinstance(v, str) and v else None


def _link_id(resource: Mapping[str, Any], rel: str) -> str | None:
    links = resource.get("links")
    for link in links if isinstance(links, list) else []:
        if isinstance(link, Mapping) and link.get("rel") == rel and isinstance(link.get("href"), str):
            return str(link["href"]).rstrip("/").rsplit("/", 1)[-1] or None
    return None


DISPUTE_TYPES = frozenset({"CUSTOMER.DISPUTE.CREATED", "CUSTOMER.DISPUTE.UPDATED", "CUSTOMER.DISPUTE.RESOLVED"})
_DISPUTE_STATUS: dict[str, type[DisputeEvent]] = {
    "WAITING_FOR_SELLER_RESPONSE": DisputeNeedsResponse,
    "UNDER_REVIEW": DisputeUnderReview,
    "WAITING_FOR_BUYER_RESPONSE": DisputeUnderReview,
}
_DISPUTE_OUTCOME: dict[str, type[DisputeEvent]] = {
    "RESOLVED_SELLER_FAVOUR": DisputeWon,
    "CANCELED_BY_BUYER": DisputeWon,
    "DENIED": DisputeWon,
    "RESOLVED_BUYER_FAVOUR": DisputeLost,
    "RESOLVED_WITH_PAYOUT": DisputeLost,
    "ACCEPTED": DisputeAccepted,
}


def _dispute(t: str, r: Mapping[str, Any], common: dict[str, Any]) -> PaymentEvent | None:
    """The deadline is ``seller_response_due_date``; the stage is ``dispute_life_cycle_stage``."""
    txs = r.get("disputed_transactions")
    tx = txs[0] if isinstance(txs, list) and txs and isinstance(txs[0], Mapping) else {}
    escalated = r.get("dispute_life_cycle_stage") in ("PRE_ARBITRATION", "ARBITRATION")
    stage = "pre_arbitration" if escalated else "chargeback"
    due = _str(r.get("seller_response_due_date"))
    status = _str(r.get("status"))
    dispute: dict[str, Any] = {
        "dispute_id": text(r.get("dispute_id"), "dispute_id"),
        "reason": _str(r.get("reason")),
        "amount": _amount(r["dispute_amount"]) if r.get("dispute_amount") else None,
        "psp_payment_id": _str(tx.get("seller_transaction_id")) or text(r.get("dispute_id"), "dispute_id"),
        "dispute_stage": stage,
        **event_fields(
            "paypal",
            _str(r.get("reason")),
            reason_code=_str(r.get("external_reason_code")),
            due_by=parse_time(due) if due else None,
            psp_status=status,
        ),
    }
    cls: type[DisputeEvent] | None
    if t == "CUSTOMER.DISPUTE.CREATED":
        cls = DisputeOpened
    elif t == "CUSTOMER.DISPUTE.RESOLVED":
        outcome = obj(r.get("dispute_outcome") or {}, "dispute_outcome").get("outcome_code")
        cls = _DISPUTE_OUTCOME.get(str(outcome))
    else:
        cls = _DISPUTE_STATUS.get(status or "")
        if cls is DisputeNeedsResponse and stage == "pre_arbitration":
            cls = DisputePreArbitration
    return cls(**dispute, **common) if cls is not None else None
