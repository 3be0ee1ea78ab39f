"""Console settings from the environment (the only module of the console that reads it).

Why a dev identity only on the emulators: in the cloud the signed-in user comes from Identity-Aware Proxy's
header, and a configured fallback there would let a misrouted request act as somebody. Why a CSRF secret
is required in the cloud: tokens must verify on every instance, so a per-process random key only serves
the single local process.
"""

from __future__ import annotations

import functools
import secrets
from collections.abc import Mapping
from dataclasses import dataclass

from shared.config import ConfigError, get_settings

DEFAULT_DEV_IDENTITY = "dev@localhost"


@dataclass(frozen=True)
class ConsoleSettings:
    dev_identity: str | None  # used when no IAP header is present; None in the cloud
    csrf_secret: bytes
    deadletter_subscriptions: tuple[str, ...]  # empty: every ``*-dlq`` subscription of the project
    csrf_max_age_s: int = 8 * 3600


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
    subs = tuple(s.strip() for s in (e.get("CONSOLE_DEADLETTER_SUBSCRIPTIONS") or "").split(",") if s.strip())
    return ConsoleSettings(dev_identity=dev, csrf_secret=secret.encode(), deadletter_subscriptions=subs)


@functools.cache
def console_settings() -> ConsoleSettings:
    return load_console_settings()
