"""Per-(psp, account) webhook configuration from environment variables.

Variables are named as in the README (``STRIPE_WEBHOOK_SECRETS``, ``ADYEN_HMAC_KEYS``, ...); an extra
merchant account ``eu`` (path ``/stripe/eu``) reads the same names with ``__EU`` appended (the one rule,
:func:`shared.config.account_env_name`, that charging keys follow too). An
account is configured when every required variable of its PSP is set and non-empty; otherwise its
path answers 404, so a typo in a secret name shows up as a clear rejection, never as a bypass.

Mode: ``PSP_MODE`` (``test`` or ``live``, default ``test``), overridable per account with
``PSP_MODE__<ACCOUNT>``. An event whose own mode flag disagrees is rejected.

The environment is read on every request (cheap) and the parsed config is cached by the raw values,
so a rotated secret takes effect without a restart and tests can change variables freely.
"""

from __future__ import annotations

import functools
import os
import re
from collections.abc import Mapping

from shared.config import DEFAULT_ACCOUNT, account_env_name
from shared.psp.base import Adapter, PspConfig

__all__ = ["ACCOUNT_RE", "DEFAULT_ACCOUNT", "ModeError", "load"]

ACCOUNT_RE = re.compile(r"^[a-z0-9][a-z0-9_-]{0,63}$")


class ModeError(ValueError):
    """``PSP_MODE`` is set to something other than test or live."""


def load(adapter: Adapter, account: str, env: Mapping[str, str] | None = None) -> PspConfig | None:
    """The account's configuration, or None when it is not (fully) configured."""
    e = os.environ if env is None else env
    names = (*adapter.required_env, *adapter.optional_env, "PSP_MODE")
    raw = tuple(e.get(account_env_name(n, account)) or (e.get(n) if n == "PSP_MODE" else None) for n in names)
    return _build(adapter.name, account, names, raw, adapter.required_env)


@functools.lru_cache(maxsize=256)
def _build(
    psp: str, account: str, names: tuple[str, ...], raw: tuple[str | None, ...], required: tuple[str, ...]
) -> PspConfig | None:
    values = {n: (v or "").strip() for n, v in zip(names, raw, strict=True)}
    if any(not values[n] for n in required):
        return None
    mode = (values.pop("PSP_MODE") or "test").lower()
    if mode not in ("test", "live"):
        raise ModeError(f"PSP_MODE must be test or live, got {mode!r}")
    return PspConfig(psp=psp, account=account, livemode=mode == "live", values=values)
