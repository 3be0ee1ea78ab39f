"""A valid event of every registered contract, and helpers to turn one into a synthetic push."""

from __future__ import annotations

import base64
import datetime as dt
import importlib.util
import sys
import types
from pathlib import Path
from typing import Any

import pytest

import shared.events  # registers every shared contract
import shared.renewals.messages  # noqa: F401  (registers the renewals-internal ChargeRetryDue)
from shared.domain.money import Money
from shared.events import Event, build_message
from shared.events.billing import LineIn, Party
from shared.events.envelope import registered
from shared.events.usage import UsageEventIn

T0 = dt.datetime(2026, 3, 1, tzinfo=dt.UTC)
EUR = Money(2500, "EUR")
ROOT = Path(__file__).resolve().parents[3]

# One value per field name used by any contract; each sample takes the fields its class declares.
_FIELDS: dict[str, Any] = {
    "probe_id": "p-1",
    "request_id": "sub_1:2026-03-01T00:00:00Z",
    "subscription_id": "sub_1",
    "seller_entity": "acme-fr",
    "customer": Party(id="cus_1", name="Camille Martin", country="FR"),
    "currency": "EUR",
    "lines": (LineIn(description="Plan", quantity=1, unit_amount=EUR),),
    "invoice_id": "inv_1",
    "number": "F-2026-000001",
    "customer_id": "cus_1",
    "subtotal": EUR,
    "tax": Money(500, "EUR"),
    "total": Money(3000, "EUR"),
    "amount_due": Money(3000, "EUR"),
    "collection": "charge_automatically",
    "finalized_at": T0,
    "amount_paid": Money(3000, "EUR"),
    "paid_at": T0,
    "credit_note_id": "cn_1",
    "credit_note_number": "C-2026-000001",
    "amount": Money(3000, "EUR"),
    "version": 1,
    "from_status": None,
    "to_status": "active",
    "reason": "renewed",
    "psp": "stripe",
    "psp_payment_id": "pi_1",
    "livemode": False,
    "psp_created_at": T0,
    "retryable": True,
    "refund_id": "re_1",
    "refunded": Money(3000, "EUR"),
    "full": True,
    "dispute_id": "dp_1",
    "dispute_key": "stripe~default~dp_1",
    "hours": 72,
    "evidence_due_by": T0,
    "status": "needs_response",
    "packet_uri": "gs://bucket/disputes/stripe~default~dp_1/evidence.zip",
    "packet_sha256": "0" * 64,
    "submitted_at": T0,
    "attempt": 2,
    "decision_id": "charge:inv_1:1",
    "decision": "review",
    "stage": "charge",
    "decided_at": T0,
    "exception_id": "exc_1",
    "kind": "amount_mismatch",
    "impact": {"EUR": 50},
    "category": "amount",
    "detected_at": T0,
    "cleared_at": T0,
    "entry_id": "entry_1",
    "resolved_at": T0,
    "payout_id": "po_1",
    "closed_at": T0,
    "batch_id": "b-1",
    "received_at": T0,
    "events": (UsageEventIn(id="ev_1", customer="cus_1", event_name="api_call", timestamp=T0),),
}
# Where a contract gives a shared field name another type (a payout's line count, its amount in minor units).
_PER_TYPE: dict[str, dict[str, Any]] = {"reconciliation.payout_closed": {"lines": 3, "amount": 3000}}


def sample(event_type: str, version: int = 1) -> Event:
    cls = registered()[(event_type, version)]
    fields = _FIELDS | _PER_TYPE.get(event_type, {})
    return cls(**{k: v for k, v in fields.items() if k in cls.model_fields})


def known_types() -> list[str]:
    return sorted({t for t, _ in registered()})


def message(data: bytes, attributes: Any, message_id: str = "m-1") -> dict[str, Any]:
    return {
        "data": base64.b64encode(data).decode(),
        "attributes": attributes,
        "messageId": message_id,
        "publishTime": "2026-03-01T10:00:00Z",
    }


def cloud_event(msg: Any) -> Any:
    """What functions-framework hands a ``@cloud_event`` function for one Pub/Sub push."""
    return types.SimpleNamespace(data={"message": msg})


def valid(event_type: str) -> tuple[bytes, dict[str, str]]:
    ev = sample(event_type)
    return build_message(ev, idempotency_key=f"{event_type}:k", occurred_at=T0)


def entry_point(function: str) -> types.ModuleType:
    """``functions/<function>/main.py`` as its own module (every function's file is called main.py)."""
    name = f"_fn_{function}_main"
    spec = importlib.util.spec_from_file_location(name, ROOT / "functions" / function / "main.py")
    assert spec is not None
    assert spec.loader is not None
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def function_app(monkeypatch: pytest.MonkeyPatch, function: str) -> Any:
    """The function's functions-framework app, as deployed (HTTP in, status out).

    create_app loads the source as module "main", extends sys.path and sets FUNCTION_* variables
    (FUNCTION_TARGET names the producer in envelopes): all undone when the test ends.
    """
    from functions_framework import create_app

    monkeypatch.setitem(sys.modules, "main", sys.modules.get("main"))
    monkeypatch.setattr(sys, "path", list(sys.path))
    for var in ("FUNCTION_TARGET", "FUNCTION_NAME", "FUNCTION_SIGNATURE_TYPE", "FUNCTION_TRIGGER_TYPE"):
        monkeypatch.setenv(var, "")  # records the original (delenv alone forgets an absent variable)
        monkeypatch.delenv(var)
    source = ROOT / "functions" / function / "main.py"
    return create_app(function, str(source), "cloudevent")  # type: ignore[no-untyped-call]
