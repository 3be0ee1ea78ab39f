"""Braintree: ``dispute.add_text_evidence`` (the packet's story as one comment) then ``dispute.finalize``.

Through the braintree SDK. Braintree's gateway takes no idempotency key, so a retry after a crash (the
submission claim was taken over: ``Submission.resumed``) first reads the dispute (``dispute.find``): a
dispute no longer ``open`` was finalized already and is left alone, and a comment already among its
evidence is not added twice. ``finalize`` is allowed from ``open`` only (status -> ``disputed``).
Settings: as :mod:`shared.charging.braintree` (``BRAINTREE_*``, ``BRAINTREE_API_URL`` for a local stub).
"""

from __future__ import annotations

import urllib.parse
from typing import Any

from shared.charging.config import braintree_settings
from shared.disputes.submit.base import Submission, SubmitError, Submitted, summary

TIMEOUT_S = 20.0


class BraintreeSubmitter:
    psp = "braintree"

    def __init__(self, account: str = "default") -> None:
        cfg = braintree_settings(account)
        if not (cfg.merchant_id and cfg.public_key and cfg.private_key):
            raise SubmitError(f"BRAINTREE_MERCHANT_ID / _PUBLIC_KEY / _PRIVATE_KEY not set for account {account!r}")
        import braintree

        if cfg.api_url:
            url = urllib.parse.urlsplit(cfg.api_url)
            env = braintree.Environment("stub", url.hostname, str(url.port or 80), "", False, None)
        elif cfg.environment in ("sandbox", "production"):
            env = braintree.Environment.parse_environment(cfg.environment)
        else:
            raise SubmitError(f"BRAINTREE_ENVIRONMENT must be sandbox or production, not {cfg.environment!r}")
        self._gateway = braintree.BraintreeGateway(
            braintree.Configuration(
                environment=env,
                merchant_id=cfg.merchant_id,
                public_key=cfg.public_key,
                private_key=cfg.private_key,
                timeout=TIMEOUT_S,
                wrap_http_exceptions=True,
            )
        )

    def preview(self, sub: Submission) -> dict[str, Any]:
        return {"text_evidence": [{"content": summary(sub.facts, 4000)}], "finalize": True}

    def submit(self, sub: Submission) -> Submitted:
        import braintree

        (text,) = self.preview(sub)["text_evidence"]
        calls = 0
        try:
            add = True
            if sub.resumed:
                found = self._gateway.dispute.find(sub.dispute_id)
                calls += 1
                if found.status != "open":
                    return Submitted(self.psp, sub.dispute_id, calls, {"status": found.status, "resumed": True})
                add = text["content"] not in [getattr(e, "comment", None) for e in found.evidence or []]
            if add:
                res = self._gateway.dispute.add_text_evidence(sub.dispute_id, dict(text))
                calls += 1
                if not res.is_success:
                    raise SubmitError(f"braintree refused the evidence: {res.message}")
            res = self._gateway.dispute.finalize(sub.dispute_id)
            calls += 1
            if not res.is_success:
                raise SubmitError(f"braintree refused to finalize: {res.message}")
        except braintree.exceptions.BraintreeError as exc:
            raise SubmitError(f"braintree unavailable or refused: {type(exc).__name__}") from exc
        return Submitted(self.psp, sub.dispute_id, calls, {"status": "disputed"})
