"""Who is acting, and whether a form post really comes from a console page (CSRF).

Identity: Identity-Aware Proxy signs the user in and forwards a signed ``X-Goog-IAP-JWT-Assertion`` (ES256,
audience ``/projects/<number>/global/backendServices/<id>`` or ``/projects/<number>/apps/<project>``). In the
cloud the email is taken from that verified token only: the plain ``X-Goog-Authenticated-User-Email`` header
is unsigned, so a request that reached the function some other way (a misconfigured ingress, a second
invoker) could claim anybody. IAP's public keys are fetched once per instance and refetched only when a
token names a key id not seen yet (key rotation). On the emulators, with no audience configured, the plain
header or a configured dev identity stands in.

CSRF: a stateless, per-user token (``<issued unix>.<HMAC-SHA256(secret, email|issued)>``) put in every
form and checked on every POST, plus the browser's own ``Sec-Fetch-Site`` when it sends one. Stateless
because the function scales out: any instance verifies what any other issued, without a session store.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import re
import threading
import time
import urllib.request
from typing import Any

from shared.edge import EdgeError

IAP_EMAIL_HEADER = "X-Goog-Authenticated-User-Email"
IAP_ASSERTION_HEADER = "X-Goog-IAP-JWT-Assertion"
IAP_ISSUER = "https://cloud.google.com/iap"
IAP_CERTS_URL = "https://www.gstatic.com/iap/verify/public_key"  # {key id: PEM public key}
_EMAIL = re.compile(r"^[A-Za-z0-9._%+@-]{3,254}$")
_CLOCK_SKEW_S = 30
_REFETCH_AFTER_S = 60  # an unknown key id refetches the set at most this often (a forged kid costs nothing)


class IapKeys:
    """IAP's public keys by key id, fetched once and kept; thread-safe (one function instance serves
    concurrent requests)."""

    def __init__(self, url: str = IAP_CERTS_URL) -> None:
        self.url = url
        self.fetches = 0
        self._keys: dict[str, str] = {}
        self._fetched_at = float("-inf")
        self._lock = threading.Lock()

    def get(self, kid: str) -> dict[str, str]:
        """The key set, refreshed when ``kid`` is not in it (rotation) and the last fetch is not recent."""
        with self._lock:
            stale = time.monotonic() - self._fetched_at >= _REFETCH_AFTER_S
            if (kid not in self._keys and stale) or not self._keys:
                self._keys = self._fetch()
                self._fetched_at = time.monotonic()
            return dict(self._keys)

    def _fetch(self) -> dict[str, str]:
        try:
            with urllib.request.urlopen(self.url, timeout=10) as resp:  # noqa: S310 (https URL from config)
                data = json.loads(resp.read())
        except (OSError, ValueError) as exc:
            raise EdgeError(503, "iap_keys_unavailable", "cannot fetch Identity-Aware Proxy keys") from exc
        self.fetches += 1
        if not isinstance(data, dict) or not all(isinstance(v, str) for v in data.values()):
            raise EdgeError(503, "iap_keys_unavailable", "unexpected Identity-Aware Proxy key set")
        return {str(k): v for k, v in data.items()}


_KEYS: dict[str, IapKeys] = {}
_KEYS_LOCK = threading.Lock()


def iap_keys(url: str) -> IapKeys:
    with _KEYS_LOCK:
        return _KEYS.setdefault(url, IapKeys(url))


def verify_iap(assertion: str, audience: str, keys: IapKeys) -> str:
    """The email of a valid IAP assertion for ``audience``; 401 for anything else (signature, audience,
    issuer, expiry, algorithm)."""
    from google.auth import jwt

    def refuse(why: str) -> EdgeError:
        return EdgeError(401, "unauthenticated", f"invalid Identity-Aware Proxy assertion: {why}")

    if not assertion or len(assertion) > 8192:
        raise refuse("missing")
    try:
        header = jwt.decode_header(assertion)  # type: ignore[no-untyped-call]
    except (ValueError, TypeError) as exc:
        raise refuse("malformed") from exc
    if header.get("alg") != "ES256" or not isinstance(header.get("kid"), str):
        raise refuse("not ES256 with a key id")
    certs = keys.get(header["kid"])
    try:
        claims = jwt.decode(  # type: ignore[no-untyped-call]
            assertion, certs=certs, audience=audience, clock_skew_in_seconds=_CLOCK_SKEW_S
        )
    except (ValueError, TypeError) as exc:  # google.auth's token errors are ValueErrors
        raise refuse(str(exc)[:200]) from exc
    if claims.get("iss") != IAP_ISSUER:
        raise refuse("wrong issuer")
    email = claims.get("email")
    if not isinstance(email, str) or not _EMAIL.match(email) or "@" not in email:
        raise refuse("no email claim")
    return email


def identity(
    request: Any, dev_identity: str | None, iap_audience: str | None = None, iap_certs_url: str = IAP_CERTS_URL
) -> str:
    """The signed-in user's email; 401 when there is none (never a guess in the cloud).

    With an IAP audience configured (always in the cloud) only the verified assertion counts."""
    if iap_audience:
        assertion = request.headers.get(IAP_ASSERTION_HEADER) or ""
        return verify_iap(assertion, iap_audience, iap_keys(iap_certs_url))
    raw = request.headers.get(IAP_EMAIL_HEADER) or ""
    email = raw.split(":", 1)[1] if raw.startswith("accounts.google.com:") else raw
    if not email and dev_identity:
        email = dev_identity
    if not email or not _EMAIL.match(email) or "@" not in email:
        raise EdgeError(401, "unauthenticated", "no signed-in user (Identity-Aware Proxy header missing)")
    return email


def _mac(secret: bytes, email: str, issued: int) -> str:
    return hmac.new(secret, f"{email}|{issued}".encode(), hashlib.sha256).hexdigest()


def csrf_token(secret: bytes, email: str, now: float | None = None) -> str:
    issued = int(time.time() if now is None else now)
    return f"{issued}.{_mac(secret, email, issued)}"


def csrf_ok(secret: bytes, email: str, token: str, max_age_s: int, now: float | None = None) -> bool:
    """True for a token this user got from a console page within ``max_age_s``."""
    issued_s, _, mac = token.partition(".")
    if not issued_s.isdigit() or len(issued_s) > 12 or len(mac) != 64:
        return False
    issued = int(issued_s)
    current = time.time() if now is None else now
    if not 0 <= current - issued <= max_age_s:
        return False
    return hmac.compare_digest(mac, _mac(secret, email, issued))


def check_csrf(request: Any, form: Any, secret: bytes, email: str, max_age_s: int) -> None:
    """403 unless the POST carries a valid token and is not declared cross-site by the browser."""
    if (request.headers.get("Sec-Fetch-Site") or "same-origin") not in ("same-origin", "none"):
        raise EdgeError(403, "csrf_refused", "cross-site form posts are refused")
    token = form.get("csrf_token") or ""
    if not isinstance(token, str) or not csrf_ok(secret, email, token, max_age_s):
        raise EdgeError(403, "csrf_refused", "missing or invalid CSRF token; reload the page and try again")
