"""``invoice.finalized`` carries the customer's risk profile to the collector: the one risk read is made here."""

from __future__ import annotations

import pytest

from shared import clients, usage
from shared.events.billing import PaymentMethodRef, RiskSnapshot
from shared.invoicing.repository import invoice_id_for
from shared.risk.base import method_key
from shared.risk.step import PROFILES
from tests.fixtures.invoices import renewal
from tests.helpers import T0
from tests.integration.invoices.conftest import Env

METHOD = PaymentMethodRef(psp="stripe", method_ref="pm_risk")


def finalize(env: Env, request_id: str) -> tuple[int, dict[str, object]]:
    r = renewal(request_id).model_copy(update={"payment_method": METHOD})
    iid = invoice_id_for(r.request_id)
    numbered = env.svc.number(iid, env.svc.create_draft(r, iid))
    env.events()
    with usage.track() as u:
        env.svc.finalize(iid, numbered)
    ((_, body),) = env.events()
    return u.reads, body


def test_an_auto_collect_invoice_carries_the_profile_read_once(metered: Env, monkeypatch: pytest.MonkeyPatch) -> None:
    key = method_key("stripe", "default", "pm_risk")
    customer = renewal("x").customer.id
    entry = {"t": T0, "kind": "attempt", "outcome": "failed", "m": key, "amount": 2500, "currency": "EUR", "d": {}}
    clients.firestore().collection(PROFILES).document(f"c:{customer}").set(
        {"events": {"e1": entry}, "billing_country": "FR", "methods": {key: {"country": "DE"}}}
    )
    monkeypatch.setenv("RISK_SCORER", "off")
    reads_off, body = finalize(metered, "risk:off")
    assert body.get("risk") is None
    monkeypatch.setenv("RISK_SCORER", "rules")
    reads_on, body = finalize(metered, "risk:on")
    assert reads_on - reads_off == 1
    snap = RiskSnapshot.model_validate(body["risk"])
    assert (snap.read_at, snap.billing_country, snap.method_country) == (T0, "FR", "DE")
    assert snap.events["e1"].model_dump() == {k: v for k, v in entry.items() if k != "d"}  # no decisions carried
