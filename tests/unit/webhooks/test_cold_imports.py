"""What a cold webhooks instance imports before its first answer, checked in fresh interpreters.

Cold start is time to the first answer, so only what that answer needs may load: the Stripe adapter,
not the other PSPs (PayPal's ``cryptography``); the payment contracts, not the billing ones with the
catalog behind them. Yet every contract stays known to whoever consults the registry.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[3]


def _run(code: str) -> dict[str, Any]:
    env = {"PYTHONPATH": str(ROOT), "GOOGLE_CLOUD_PROJECT": "demo-unit", "PATH": "/usr/bin:/bin"}
    out = subprocess.run([sys.executable, "-c", code], check=True, capture_output=True, text=True, env=env, cwd=ROOT)
    result: dict[str, Any] = json.loads(out.stdout.strip().splitlines()[-1])
    return result


def test_a_stripe_delivery_loads_only_the_stripe_adapter_and_the_payment_contracts() -> None:
    got = _run(
        "import importlib.util as u, json, sys\n"
        "s = u.spec_from_file_location('main', 'functions/webhooks/main.py'); m = u.module_from_spec(s)\n"
        "s.loader.exec_module(m)\n"
        "from shared.psp.registry import ADAPTERS\n"
        "known = 'paypal' in ADAPTERS and sorted(ADAPTERS) == sorted(set(ADAPTERS))\n"
        "adapter = ADAPTERS['stripe']\n"
        "print(json.dumps({'known': known, 'names': sorted(ADAPTERS), 'stripe': adapter.name,\n"
        "  'loaded': sorted(n for n in sys.modules if n.startswith(('shared.psp.', 'shared.events.', 'cryptography',\n"
        "  'shared.domain.catalog')))}))"
    )
    assert got["known"] is True
    assert got["names"] == ["adyen", "braintree", "checkout", "gocardless", "paypal", "stripe"]
    assert got["stripe"] == "stripe"
    loaded = set(got["loaded"])
    assert {"shared.psp.stripe", "shared.events.payments", "shared.events.envelope"} <= loaded
    assert not loaded & {"shared.psp.paypal", "shared.psp.adyen", "shared.events.billing", "shared.domain.catalog"}
    assert not any(n.startswith("cryptography") for n in loaded)


def test_every_adapter_is_still_served_once_and_by_name() -> None:
    from shared.psp.registry import ADAPTERS

    assert all(ADAPTERS[name].name == name for name in ADAPTERS)
    assert ADAPTERS["paypal"] is ADAPTERS["paypal"]
    assert "nope" not in ADAPTERS


def test_the_registry_knows_every_contract_when_consulted_and_parses_any_registered_type() -> None:
    got = _run(
        "import json, sys, datetime as dt\n"
        "from shared.events.envelope import registered\n"
        "before = 'shared.events.billing' in sys.modules\n"
        "types = sorted({t for t, _ in registered()})\n"
        "from shared.events.probe import ProbeRequested\n"
        "print(json.dumps({'before': before, 'types': types}))"
    )
    assert got["before"] is False
    assert {"renewal.due", "invoice.finalized", "payment.succeeded", "probe.requested"} <= set(got["types"])
    parsed = _run(
        "import json\n"
        "from shared.events import parse_message\n"
        "from shared.events.envelope import make_event_id\n"
        "attrs = {'event_type': 'dispute.opened', 'event_id': make_event_id('dispute.opened', 'k'),\n"
        "  'schema_version': '1', 'occurred_at': '2026-01-31T09:00:00Z', 'idempotency_key': 'k'}\n"
        "try:\n"
        "    parse_message(b'{}', attrs, 'm1')\n"
        "    out = 'parsed'\n"
        "except Exception as exc:\n"
        "    out = type(exc).__name__\n"
        "print(json.dumps({'out': out}))"
    )
    assert parsed["out"] == "EnvelopeError"  # found lazily, then its body ({}) breaks the contract: not unknown
