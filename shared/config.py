"""Settings read from the environment.

Secret Manager fills the same environment variables in the cloud that developers export locally, so
code never distinguishes the two. Settings are read once per process and cached; tests call
:func:`reset_settings` after changing the environment.
"""

from __future__ import annotations

import functools
import os
from collections.abc import Mapping
from dataclasses import dataclass

DEFAULT_ACCOUNT = "default"


class ConfigError(RuntimeError):
    """A required setting is missing or malformed; raised at first use, with the variable's name."""


def account_env_name(var: str, account: str) -> str:
    """``NAME`` for the default merchant account, ``NAME__<ACCOUNT>`` for another one.

    The one naming rule for per-account settings (webhook secrets, charging keys, ``PSP_MODE``): account
    ``eu-2`` reads ``STRIPE_WEBHOOK_SECRETS__EU_2``. Characters a variable name cannot hold become ``_``.
    """
    if account == DEFAULT_ACCOUNT:
        return var
    return f"{var}__{''.join(c if c.isalnum() else '_' for c in account.upper())}"


def account_env(var: str, account: str, env: Mapping[str, str] | None = None) -> str | None:
    """The account's value of ``var`` (see :func:`account_env_name`), None when unset or empty."""
    e = os.environ if env is None else env
    return e.get(account_env_name(var, account)) or None


def env_value(name: str, env: Mapping[str, str] | None = None) -> str | None:
    """One variable, None when unset or empty: for config modules that read per call (tests change them)."""
    e = os.environ if env is None else env
    return e.get(name) or None


def env_int(name: str, default: int, env: Mapping[str, str] | None = None) -> int:
    """An integer variable, ``default`` when unset or empty; anything else is a :class:`ConfigError`."""
    return _int_env(os.environ if env is None else env, name, default)


def env_prefixed(prefix: str, env: Mapping[str, str] | None = None) -> tuple[tuple[str, str], ...]:
    """Every variable starting with ``prefix``, sorted: a cache key that changes when any of them does."""
    e = os.environ if env is None else env
    return tuple(sorted((k, v) for k, v in e.items() if k.startswith(prefix)))


def invoice_sellers_json(env: Mapping[str, str] | None = None) -> str:
    """``INVOICE_SELLERS_JSON``: extra legal entities issuing invoices (read per call; parsed by its user)."""
    return env_value("INVOICE_SELLERS_JSON", env) or ""


@dataclass(frozen=True, slots=True)
class Settings:
    project_id: str
    firestore_emulator_host: str | None
    pubsub_emulator_host: str | None
    storage_emulator_host: str | None
    function_name: str
    invoice_bucket: str
    log_level: str
    idempotency_ttl_s: int
    topic_overrides: Mapping[str, str]
    usage_metering: bool = False  # count billable operations at the clients and log them per delivery
    paypal_cert_dir: str | None = None  # offline PayPal certificates; honoured only on the emulators

    @property
    def on_emulators(self) -> bool:
        return bool(self.firestore_emulator_host or self.pubsub_emulator_host)

    def topic_path(self, topic: str) -> str:
        """Full path of a logical topic; ``TOPIC_<NAME>`` (e.g. ``TOPIC_PAYMENT_EVENTS``) renames it."""
        return f"projects/{self.project_id}/topics/{self.topic_overrides.get(topic, topic)}"


def _int_env(env: Mapping[str, str], name: str, default: int) -> int:
    raw = env.get(name)
    if raw is None or raw == "":
        return default
    try:
        return int(raw)
    except ValueError as exc:
        raise ConfigError(f"{name} must be an integer, got {raw!r}") from exc


def load_settings(env: Mapping[str, str] | None = None) -> Settings:
    """Build settings from ``env`` (default ``os.environ``); fail loudly on what cannot work."""
    e = os.environ if env is None else env
    project = e.get("GOOGLE_CLOUD_PROJECT") or e.get("GCP_PROJECT") or ""
    if not project:
        raise ConfigError("GOOGLE_CLOUD_PROJECT is not set (the GCP project id; any demo-* id on the emulators)")
    return Settings(
        project_id=project,
        firestore_emulator_host=e.get("FIRESTORE_EMULATOR_HOST") or None,
        pubsub_emulator_host=e.get("PUBSUB_EMULATOR_HOST") or None,
        storage_emulator_host=e.get("STORAGE_EMULATOR_HOST") or None,
        function_name=e.get("K_SERVICE") or e.get("FUNCTION_TARGET") or "local",
        invoice_bucket=e.get("INVOICE_BUCKET") or f"{project}-invoices",
        log_level=(e.get("LOG_LEVEL") or "INFO").upper(),
        idempotency_ttl_s=_int_env(e, "IDEMPOTENCY_TTL_S", 7 * 24 * 3600),
        topic_overrides={
            k.removeprefix("TOPIC_").lower().replace("_", "-"): v for k, v in e.items() if k.startswith("TOPIC_") and v
        },
        usage_metering=(e.get("USAGE_METERING") or "").lower() in ("1", "true", "yes"),
        paypal_cert_dir=e.get("PAYPAL_CERT_DIR") or None,
    )


@functools.cache
def get_settings() -> Settings:
    return load_settings()


def reset_settings() -> None:
    """Forget cached settings and clients (tests that change the environment call this)."""
    get_settings.cache_clear()
    from shared import clients

    clients.reset_clients()
