"""Who is acting, and whether a form post really comes from a console page (CSRF).

Identity: Identity-Aware Proxy signs the user in and forwards ``X-Goog-Authenticated-User-Email``
(``accounts.google.com:alice@example.com``). The function is private (only IAP's service agent may invoke
it), so the header cannot come from anybody else. On the emulators a configured dev identity stands in.

CSRF: a stateless, per-user token (``<issued unix>.<HMAC-SHA256(secret, email|issued)>``) put in every
form and checked on every POST, plus the browser's own ``Sec-Fetch-Site`` when it sends one. Stateless
because the function scales out: any instance verifies what any other issued, without a session store.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import time
from typing import Any

from shared.edge import EdgeError

IAP_EMAIL_HEADER = "X-Goog-Authenticated-User-Email"
_EMAIL = re.compile(r"^[A-Za-z0-9._%+@-]{3,254}$")


def identity(request: Any, dev_identity: str | None) -> str:
    """The signed-in user's email; 401 when there is none (never a guess in the cloud)."""
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
