"""Console settings from the environment (the only module of the console that reads it).

Why a dev identity only on the emulators: in the cloud the signed-in user comes from Identity-Aware Proxy's
header, and a configured fallback there would let a misrouted request act as somebody. Why a CSRF secret
is required in the cloud: tokens must verify on every instance, so a per-process random key only serves
the single local process. Why an IAP audience is required in the cloud: the signed assertion is only worth
checking against the one backend service (or App Engine app) it was issued for. Why Monitoring only in the
cloud: the emulators have no Cloud Monitoring, so locally the webhook answers section says so unless
``CONSOLE_MONITORING_URL`` points somewhere (a stub in the tests).
"""

from __future__ import annotations

import functools
import re
import secrets
from collections.abc import Mapping
from dataclasses import dataclass

from shared.config import ConfigError, get_settings
from shared.console.auth import IAP_CERTS_URL

DEFAULT_DEV_IDENTITY = "dev@localhost"
MONITORING_URL = "https://monitoring.googleapis.com"
_AUDIENCE = re.compile(r"/projects/[0-9]{1,20}/(global/backendServices/[0-9]{1,20}|apps/[a-z][a-z0-9-]{4,29})")


@dataclass(frozen=True)
class ConsoleSettings:
    dev_identity: str | None  # used when no IAP header is present; None in the cloud
    csrf_secret: bytes
    deadletter_subscriptions: tuple[str, ...]  # empty: every ``*-dlq`` subscription of the project
    csrf_max_age_s: int = 8 * 3600
    iap_audience: str | None = None  # set: the user comes only from the verified X-Goog-IAP-JWT-Assertion
    iap_certs_url: str = IAP_CERTS_URL
    monitoring_url: str | None = None  # None: no Cloud Monitoring (the emulators)


def load_console_settings(env: Mapping[str, str] | None = None) -> ConsoleSettings:
    import os

    e = os.environ if env is None else env
    on_emulators = get_settings().on_emulators if env is None else bool(e.get("FIRESTORE_EMULATOR_HOST"))
    secret = e.get("CONSOLE_CSRF_SECRET") or ""
    if not secret:
        if not on_emulators:
            raise ConfigError("CONSOLE_CSRF_SECRET is not set (Secret Manager: console-csrf-secret)")
        secret = secrets.token_hex(32)
    if len(secret) < 32:
        raise ConfigError("CONSOLE_CSRF_SECRET must be at least 32 characters")
    dev = (e.get("CONSOLE_DEV_IDENTITY") or DEFAULT_DEV_IDENTITY) if on_emulators else None
    audience = (e.get("CONSOLE_IAP_AUDIENCE") or "").strip() or None
    if audience is None and not on_emulators:
        raise ConfigError("CONSOLE_IAP_AUDIENCE is not set (/projects/<number>/global/backendServices/<id>)")
    if audience is not None and not _AUDIENCE.fullmatch(audience):
        raise ConfigError(
            "CONSOLE_IAP_AUDIENCE is /projects/<number>/global/backendServices/<id> or /projects/<number>/apps/<id>"
        )
    monitoring = (e.get("CONSOLE_MONITORING_URL") or "").strip() or (None if on_emulators else MONITORING_URL)
    subs = tuple(s.strip() for s in (e.get("CONSOLE_DEADLETTER_SUBSCRIPTIONS") or "").split(",") if s.strip())
    return ConsoleSettings(
        dev_identity=dev,
        csrf_secret=secret.encode(),
        deadletter_subscriptions=subs,
        iap_audience=audience,
        iap_certs_url=e.get("CONSOLE_IAP_CERTS_URL") or IAP_CERTS_URL,
        monitoring_url=monitoring,
    )


@functools.cache
def console_settings() -> ConsoleSettings:
    return load_console_settings()
