"""Risk settings per merchant account (``shared.config.account_env_name``; read per call, tests change them).

``RISK_SCORER`` ``rules`` (default) | ``model`` | ``off``; ``RISK_MODEL_URL`` the prediction endpoint
(``{"instances": [...]}`` -> ``{"predictions": [...]}``), ``RISK_MODEL_TOKEN`` an optional bearer token;
``RISK_TIMEOUT_MS`` the scorer's budget (default 150); ``RISK_FAIL_MODE`` ``open`` (default: a scorer that
fails or runs out of time allows the charge, reason ``scorer_unavailable``) or ``closed`` (it blocks);
``RISK_REVIEW_AT`` / ``RISK_BLOCK_AT`` the model's thresholds (0.5 / 0.9); ``RISK_CARRIED_MAX_AGE_S`` how old
a profile carried by ``invoice.finalized`` may be for the collector to decide from it (600; older: read
again). Each has a ``__<ACCOUNT>`` form falling back to the default account's.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Literal

from shared.config import account_env

FailMode = Literal["open", "closed"]


@dataclass(frozen=True, slots=True)
class RiskSettings:
    scorer: Literal["rules", "model", "off"]
    model_url: str | None
    model_token: str | None
    timeout_s: float
    fail_mode: FailMode
    review_at: float
    block_at: float
    carried_max_age_s: float = 600.0


def _get(name: str, account: str) -> str | None:
    return account_env(name, account) or os.environ.get(name) or None


def risk_settings(account: str = "default") -> RiskSettings:
    scorer = (_get("RISK_SCORER", account) or "rules").lower()
    if scorer not in ("rules", "model", "off"):
        raise ValueError(f"RISK_SCORER must be rules, model or off, got {scorer!r}")
    fail = (_get("RISK_FAIL_MODE", account) or "open").lower()
    if fail not in ("open", "closed"):
        raise ValueError(f"RISK_FAIL_MODE must be open or closed, got {fail!r}")
    url = _get("RISK_MODEL_URL", account)
    if scorer == "model" and not url:
        raise ValueError("RISK_SCORER=model needs RISK_MODEL_URL")
    return RiskSettings(
        scorer=scorer,  # type: ignore[arg-type]
        model_url=url,
        model_token=_get("RISK_MODEL_TOKEN", account),
        timeout_s=int(_get("RISK_TIMEOUT_MS", account) or 150) / 1000,
        fail_mode=fail,  # type: ignore[arg-type]
        review_at=float(_get("RISK_REVIEW_AT", account) or 0.5),
        block_at=float(_get("RISK_BLOCK_AT", account) or 0.9),
        carried_max_age_s=float(_get("RISK_CARRIED_MAX_AGE_S", account) or 600),
    )
