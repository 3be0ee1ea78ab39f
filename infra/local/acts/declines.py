"""Act 35: declines, dunning and risk: a hard decline stops retries, a soft one recovers on the advised
schedule, and a charge the risk step blocks never reaches the PSP.

Subscriptions of their own (start 2026-06-01, a test clock of their own), charged through the Stripe stub of
act 30 (``pm_demo_stolen``: ``stolen_card``; ``pm_demo_insufficient_once``: ``insufficient_funds`` once,
then paid). The third is charged through merchant account ``risky``, whose risk step uses a model served
from this process in Vertex AI's shape (``{"instances": [...]}`` -> ``{"predictions": [0.97]}``): blocked.
"""

from __future__ import annotations

import datetime as dt
import functools
import json
from typing import Any

from infra.local.acts import DemoContext
from infra.local.acts import renewals as r
from infra.local.jsonstub import serve_json

ORDER = 35
TITLE = "Declines, dunning and risk: hard stops, soft recovers on the advice, a blocked charge"

S0 = dt.datetime(2026, 6, 1, 9, 0, tzinfo=dt.UTC)


class ModelStub:
    """A prediction endpoint that finds every instance risky (0.97); counts what it was asked."""

    def __init__(self) -> None:
        self.instances: list[dict[str, Any]] = []
        self.server = serve_json(lambda _method, _path, _headers, body: self._predict(body), "risk-model-stub", "POST")

    def _predict(self, raw: bytes) -> tuple[int, dict[str, Any]]:
        instances = (json.loads(raw or b"{}")).get("instances") or []
        self.instances.extend(instances)
        return 200, {"predictions": [0.97 for _ in instances]}

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}/v1/endpoints/risk:predict"


@functools.cache
def model() -> ModelStub:
    return ModelStub()


def env() -> dict[str, str]:
    """Account ``risky``: Stripe keys like the default one, and the model scorer (fail-closed)."""
    return {
        "STRIPE_API_KEY__RISKY": "sk_test_demo_not_a_secret",
        "RISK_SCORER__RISKY": "model",
        "RISK_MODEL_URL__RISKY": model().url,
        "RISK_FAIL_MODE__RISKY": "closed",
        "RISK_TIMEOUT_MS": "500",  # generous on a loaded laptop; the cloud default is 150
    }


def body(sub_id: str, method: str, account: str = "default") -> dict[str, Any]:
    b = r.subscription_body(sub_id, method)
    b["start_at"] = S0.isoformat()
    b["payment_method"]["account"] = account
    return b


def play(ctx: DemoContext) -> None:
    from shared import clients

    api = ctx.stack.function_urls["subscriptions"] + "/subscriptions"
    subs = {
        "sub_demo_hard_decline": body("sub_demo_hard_decline", "pm_demo_stolen"),
        "sub_demo_soft_decline": body("sub_demo_soft_decline", "pm_demo_insufficient_once"),
        "sub_demo_risk_blocked": body("sub_demo_risk_blocked", "pm_card_visa", account="risky"),
    }
    for sid, b in subs.items():
        status, _ = r.post(api, b)
        pm = b["payment_method"]
        ctx.say(f"  create {sid:<22} HTTP {status}  ({pm['method_ref']}, account {pm['account']})")
    ids = list(subs)
    db = clients.firestore()
    for days in (0, 1, 2, 3, 8):
        now = S0 + dt.timedelta(days=days, minutes=1)
        r.tick(now)
        state = r.settle(ids)
        ctx.say(f"  tick @ {now.isoformat()}  (+{days} days)")
        for sid, (status, paid, version, _) in zip(ids, state, strict=True):
            d = db.collection("subscriptions").document(sid).get().to_dict() or {}
            dun = d.get("dunning") or {}
            nxt = dun.get("next_retry_at")
            when = f" next retry {nxt.isoformat()[:16]}" if nxt else ""
            last = (d.get("last_transition") or {}).get("reason")
            ctx.say(f"      {sid:<22} {status:<9} paid period {paid!s:<4} v{version} ({last}){when}")
    from shared.renewals.repository import attempt_record

    attempts = db.collection("charge_attempts").stream()  # each with its result (kept on its subscription)
    ctx.say("  charge attempts (decline code -> canonical category, retryable):")
    records = (attempt_record(s.id, db) for s in attempts)
    for a in sorted(records, key=lambda a: (a.get("subscription_id"), a.get("attempt"))):
        if a.get("subscription_id") not in ids:
            continue
        res = a.get("result") or {}
        ctx.say(
            f"      {a['subscription_id']:<22} attempt {a['attempt']}  {res.get('status')!s:<9} "
            f"{res.get('decline_code')!s:<18} {res.get('category')!s:<19} retryable={res.get('retryable')}"
        )
    calls = [q for q in r.stub().requests if q.get("metadata[subscription_id]") == "sub_demo_risk_blocked"]
    blocked_calls = {q["key"] for q in calls}
    ctx.say(f"  PSP calls for the blocked subscription: {len(blocked_calls)}; model asked {len(model().instances)}x")
    ctx.facts["declines"] = {"subscriptions": ids, "blocked_psp_calls": len(blocked_calls)}
