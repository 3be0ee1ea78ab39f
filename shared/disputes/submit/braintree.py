"""Braintree: ``dispute.add_text_evidence`` (the packet's story as one comment) then ``dispute.finalize``.

Through the braintree SDK. Braintree's gateway takes no idempotency key, so a retry after a crash (the
submission claim was taken over: ``Submission.resumed``) first reads the dispute (``dispute.find``): a
dispute no longer ``open`` was finalized already and is left alone, and a comment already among its
evidence is not added twice. ``finalize`` is allowed from ``open`` only (status -> ``disputed``).
Settings: as :mod:`shared.charging.braintree` (``BRAINTREE_*``, ``BRAINTREE_API_URL`` for a local stub).
"""

from __future__ import annotations

from typing import Any

from shared.charging.braintree import gateway
from shared.charging.config import braintree_settings
from shared.disputes.submit.base import Submission, SubmitError, Submitted, summary

TIMEOUT_S = 20.0


class BraintreeSubmitter:
    psp = "braintree"

    def __init__(self, account: str = "default") -> None:
        try:
            self._gateway = gateway(braintree_settings(account), account, TIMEOUT_S)
        except ValueError as exc:
            raise SubmitError(str(exc)) from None

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
