"""Adyen: Disputes API v30 ``supplyDefenseDocument`` (the invoice PDFs, base64) then ``defendDispute``.

Through the Adyen SDK (``Adyen.disputes.disputes_api``). Defence reason ``SupplyDefenseMaterial`` with
documents of type ``DefenseMaterial`` is the one Adyen accepts for every scheme and reason; a
reason-specific defence (``retrieveApplicableDefenseReasons``) is an operator's choice in the Customer Area.
Both calls carry an ``Idempotency-Key`` derived from the dispute, so a retry after a crash repeats the same
requests and Adyen answers them once. Needs the "API dispute management" role.
Settings: ``ADYEN_API_KEY``, ``ADYEN_MERCHANT_ACCOUNT`` (each ``..__<ACCOUNT>``), ``ADYEN_ENVIRONMENT``,
``ADYEN_LIVE_PREFIX``, and ``ADYEN_DISPUTES_URL`` only to point the SDK at a local stub.
"""

from __future__ import annotations

import base64
from typing import Any

from shared.charging.config import adyen_settings
from shared.config import env_value
from shared.disputes.submit.base import Submission, SubmitError, Submitted

REASON = "SupplyDefenseMaterial"
DOCUMENT_TYPE = "DefenseMaterial"


class AdyenSubmitter:
    psp = "adyen"

    def __init__(self, account: str = "default") -> None:
        cfg = adyen_settings(account)
        if not cfg.api_key or not cfg.merchant_account:
            raise SubmitError(f"ADYEN_API_KEY / ADYEN_MERCHANT_ACCOUNT not set for account {account!r}")
        import Adyen

        self.merchant_account = cfg.merchant_account
        adyen = Adyen.Adyen(
            xapikey=cfg.api_key, platform=cfg.environment, live_endpoint_prefix=cfg.live_prefix, http_timeout=20
        )
        self._api = adyen.disputes.disputes_api
        url = env_value("ADYEN_DISPUTES_URL")
        if url:
            self._api.baseUrl = url.rstrip("/")

    def preview(self, sub: Submission) -> dict[str, Any]:
        docs = [
            {
                "content": base64.b64encode(data).decode(),
                "contentType": "application/pdf",
                "defenseDocumentTypeCode": DOCUMENT_TYPE,
            }
            for _, data in sorted(sub.pdfs.items())
        ]
        ids = {"disputePspReference": sub.dispute_id, "merchantAccountCode": self.merchant_account}
        return {
            "supplyDefenseDocument": {**ids, "defenseDocuments": docs},
            "defendDispute": {**ids, "defenseReasonCode": REASON},
        }

    def submit(self, sub: Submission) -> Submitted:
        import Adyen

        body = self.preview(sub)
        calls = 0
        try:
            if body["supplyDefenseDocument"]["defenseDocuments"]:
                res = self._api.supply_defense_document(
                    body["supplyDefenseDocument"], idempotency_key=sub.idempotency_key + "-docs"
                )
                calls += 1
                _ok(res.message, "supplyDefenseDocument")
            res = self._api.defend_dispute(body["defendDispute"], idempotency_key=sub.idempotency_key + "-defend")
            calls += 1
            _ok(res.message, "defendDispute")
        except Adyen.AdyenError as exc:
            raise SubmitError(f"adyen refused the defence: {exc}") from exc
        return Submitted(self.psp, sub.dispute_id, calls, {"defenseReasonCode": REASON})


def _ok(message: Any, what: str) -> None:
    result = (message or {}).get("disputeServiceResult") or {}
    if not result.get("success"):
        raise SubmitError(f"adyen {what} failed: {result.get('errorMessage') or message}")
