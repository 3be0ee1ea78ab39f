"""GoCardless: a direct-debit payment against the customer's mandate; the result arrives days later.

``payments.create`` with ``links.mandate`` and the ``Idempotency-Key`` header (invoice + attempt). A
fresh payment is ``pending_submission``, so the answer is ``pending`` and the final fact comes through
the webhooks function (``payments.confirmed`` / ``payments.failed``, carrying our metadata back).
A repeated key makes GoCardless answer 409 ``idempotent_creation_conflict`` naming the payment the
first request created; the SDK then fetches that payment, so a retry adopts it (and its current
status) instead of debiting twice. Keys are kept by GoCardless for at least 24 hours, like Stripe's.

Metadata: GoCardless allows 3 keys (50-char names, 500-char values), so we send ``invoice_id``,
``attempt_id`` and ``subscription_id`` (``customer_id`` in its place for a one-off invoice); the
customer is found from either. Amounts are integer minor units, as GoCardless expects.
Settings: ``GOCARDLESS_ACCESS_TOKEN`` (``..__<ACCOUNT>``), ``GOCARDLESS_ENVIRONMENT`` (sandbox|live),
``GOCARDLESS_API_URL`` only to point the SDK at a local stub.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import replace
from typing import Any

from shared.charging.base import ChargeRejected, ChargeRequest, ChargeResult, ChargeUnavailable, declined
from shared.charging.config import gocardless_settings
from shared.domain.declines import classify

TIMEOUT_S = 20.0
METADATA_KEYS = 3  # GoCardless' limit on metadata entries
PENDING = frozenset({"pending_customer_approval", "pending_submission", "submitted"})
# charged_back: the debit was collected and later disputed; the dispute is its own webhook fact.
SUCCEEDED = frozenset({"confirmed", "paid_out", "charged_back"})
# The payment can never be collected: a new attempt needs a new mandate or the customer's action.
HARD_FAILURES = frozenset({"cancelled", "customer_approval_denied"})


def metadata(req: ChargeRequest) -> dict[str, str]:
    """Our references within GoCardless' 3-key limit; see the module doc."""
    md = {"invoice_id": req.invoice_id, "attempt_id": req.attempt_id}
    if req.subscription_id:
        md["subscription_id"] = req.subscription_id
    else:
        md["customer_id"] = req.customer_id
    return md


class GoCardlessCharger:
    psp = "gocardless"

    def __init__(self, account: str = "default") -> None:
        cfg = gocardless_settings(account)
        if not cfg.access_token:
            raise ChargeRejected(f"GOCARDLESS_ACCESS_TOKEN is not set for account {account!r}")
        if cfg.environment not in ("sandbox", "live"):
            raise ChargeRejected(f"GOCARDLESS_ENVIRONMENT must be sandbox or live, not {cfg.environment!r}")
        import gocardless_pro

        self.account = account
        self.livemode = cfg.environment == "live"
        self._client = gocardless_pro.Client(
            access_token=cfg.access_token,
            environment=None if cfg.api_url else cfg.environment,
            base_url=cfg.api_url.rstrip("/") if cfg.api_url else None,
            timeout=TIMEOUT_S,
        )

    def request_body(self, req: ChargeRequest) -> dict[str, Any]:
        body: dict[str, Any] = {
            "amount": req.amount.amount,
            "currency": req.amount.currency,
            "links": {"mandate": req.method.method_ref},
            "metadata": metadata(req),
        }
        if req.description:
            body["description"] = req.description
        return body

    def charge(self, req: ChargeRequest) -> ChargeResult:
        import requests
        from gocardless_pro import errors

        try:
            payment = self._client.payments.create(
                params=self.request_body(req), headers={"Idempotency-Key": req.idempotency_key}
            )
        except (requests.RequestException, errors.MalformedResponseError) as exc:
            # Network trouble (the SDK already retried it with the same key) or a proxy's non-JSON 5xx.
            raise ChargeUnavailable(f"gocardless unavailable: {exc}") from exc
        except (errors.RateLimitError, errors.GoCardlessInternalError) as exc:
            raise ChargeUnavailable(f"gocardless unavailable: {exc}") from exc
        except errors.GoCardlessProError as exc:
            # Bad token, missing permission, validation, an inactive mandate: an operator must look.
            raise ChargeRejected(f"gocardless refused the request: {type(exc).__name__}: {exc}") from exc
        return self._result(payment.attributes)

    def _result(self, p: dict[str, Any]) -> ChargeResult:
        status = str(p.get("status") or "")
        if not p.get("id"):
            raise ChargeUnavailable(f"gocardless answered {status!r} without a payment id")
        base = ChargeResult(
            "pending",
            psp=self.psp,
            account=self.account,
            psp_payment_id=str(p["id"]),
            livemode=self.livemode,
            created_at=_parse_time(p.get("created_at")),
        )
        if status in PENDING:
            return base
        if status in SUCCEEDED:
            return replace(base, status="succeeded")
        if status == "failed" or status in HARD_FAILURES:
            # Only a payment adopted after a 409 can already be final; its cause is in the webhook.
            return declined(base, classify(self.psp, status), status, f"payment {status}")
        raise ChargeUnavailable(f"gocardless answered an unknown payment status {status!r}")


def _parse_time(value: Any) -> dt.datetime:
    """GoCardless timestamps are RFC 3339 (``2026-01-01T00:00:00.000Z``); absent means now."""
    if isinstance(value, str) and value:
        t = dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
        return t if t.tzinfo else t.replace(tzinfo=dt.UTC)
    return dt.datetime.now(dt.UTC)
