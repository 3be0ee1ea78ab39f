"""PayPal: ``POST /v1/customer/disputes/{id}/provide-evidence`` (multipart: ``input`` JSON + the PDFs).

PayPal has no official server SDK for disputes, so plain ``requests``: an OAuth2 client-credentials token
(``POST /v1/oauth2/token``), then one multipart request whose ``input`` part lists the evidence
(``PROOF_OF_FULFILLMENT`` with the service periods and invoices as notes, the PDFs as its documents) and
whose ``evidence_file`` parts carry the PDFs. ``PayPal-Request-Id`` is one per dispute: PayPal answers a
retried request with the first answer instead of adding the evidence twice. Only valid while the dispute
waits for the seller (``WAITING_FOR_SELLER_RESPONSE``); PayPal refuses it otherwise (a :class:`SubmitError`).
Settings: ``PAYPAL_CLIENT_ID``, ``PAYPAL_CLIENT_SECRET`` (each ``..__<ACCOUNT>``), ``PAYPAL_ENVIRONMENT``
(sandbox|live), ``PAYPAL_API_URL`` only for a local stub.
"""

from __future__ import annotations

import json
from typing import Any

from shared.config import account_env, env_value
from shared.disputes.submit.base import Submission, SubmitError, Submitted, summary

TIMEOUT_S = 20.0
HOSTS = {"sandbox": "https://api-m.sandbox.paypal.com", "live": "https://api-m.paypal.com"}


class PayPalSubmitter:
    psp = "paypal"

    def __init__(self, account: str = "default") -> None:
        self.client_id = account_env("PAYPAL_CLIENT_ID", account)
        self.secret = account_env("PAYPAL_CLIENT_SECRET", account)
        if not self.client_id or not self.secret:
            raise SubmitError(f"PAYPAL_CLIENT_ID / PAYPAL_CLIENT_SECRET not set for account {account!r}")
        env = env_value("PAYPAL_ENVIRONMENT") or "sandbox"
        if env not in HOSTS:
            raise SubmitError(f"PAYPAL_ENVIRONMENT must be sandbox or live, not {env!r}")
        self.base = (env_value("PAYPAL_API_URL") or HOSTS[env]).rstrip("/")

    def preview(self, sub: Submission) -> dict[str, Any]:
        names = [n.rsplit("/", 1)[-1] for n in sorted(sub.pdfs)]
        evidence: dict[str, Any] = {"evidence_type": "PROOF_OF_FULFILLMENT", "notes": summary(sub.facts, 2000)}
        if names:
            evidence["documents"] = [{"name": n} for n in names]
        return {"input": {"evidences": [evidence]}, "files": names}

    def submit(self, sub: Submission) -> Submitted:
        import requests

        body = self.preview(sub)
        try:
            tok = requests.post(
                f"{self.base}/v1/oauth2/token",
                data={"grant_type": "client_credentials"},
                auth=(self.client_id or "", self.secret or ""),
                timeout=TIMEOUT_S,
            )
            if tok.status_code != 200:
                raise SubmitError(f"paypal token refused: HTTP {tok.status_code}")
            files: list[tuple[str, tuple[str | None, bytes | str, str]]] = [
                ("input", (None, json.dumps(body["input"], sort_keys=True), "application/json"))
            ]
            files += [
                ("evidence_file", (name.rsplit("/", 1)[-1], data, "application/pdf"))
                for name, data in sorted(sub.pdfs.items())
            ]
            res = requests.post(
                f"{self.base}/v1/customer/disputes/{sub.dispute_id}/provide-evidence",
                files=files,
                headers={
                    "Authorization": f"Bearer {tok.json()['access_token']}",
                    "PayPal-Request-Id": sub.idempotency_key,
                },
                timeout=TIMEOUT_S,
            )
        except requests.RequestException as exc:
            raise SubmitError(f"paypal unavailable: {type(exc).__name__}") from exc
        if res.status_code not in (200, 201):
            raise SubmitError(f"paypal refused the evidence: HTTP {res.status_code} {res.text[:200]}")
        return Submitted(self.psp, sub.dispute_id, 2, {"http_status": res.status_code})
