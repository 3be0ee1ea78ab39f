"""What a cold webhooks instance imports before its first answer, checked in fresh interpreters.

Cold start is time to the first answer, so only what that answer needs may load: the Stripe adapter,
not the other PSPs (PayPal's ``cryptography``); the payment contracts, not the billing ones with the
catalog behind them. Yet every contract stays known to whoever consults the registry.
"""

from __future__ import annotations

import datetime as dt
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
    # The client libraries, imported by the entry module before the server forks, load cryptography themselves
    # (google.auth's signers): the Stripe path must add none of it (PayPal's certificate code).
    libraries = _run(
        "import json, sys\n"
        "import google.cloud.firestore, google.cloud.pubsub_v1\n"
        "print(json.dumps({'loaded': sorted(n for n in sys.modules if n.startswith('cryptography'))}))"
    )
    assert {n for n in loaded if n.startswith("cryptography")} <= set(libraries["loaded"])


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


def test_the_entry_module_imports_the_client_libraries_before_the_server_forks() -> None:
    """gunicorn imports main.py in its arbiter and forks the worker: the libraries every delivery uses are
    imported there (once), not by the worker's first request (README, "Deploy bundles, ..., cold start")."""
    got = _run(
        "import importlib.util as u, json, sys\n"
        "s = u.spec_from_file_location('main', 'functions/webhooks/main.py'); m = u.module_from_spec(s)\n"
        "s.loader.exec_module(m)\n"
        "print(json.dumps({'loaded': sorted(n for n in sys.modules if n.startswith('google.cloud.'))}))"
    )
    assert {"google.cloud.firestore", "google.cloud.pubsub_v1"} <= set(got["loaded"])


def test_a_successful_payment_is_normalised_without_the_decline_and_dispute_taxonomies() -> None:
    """They load with the first failed payment or dispute, and then classify as before."""
    got = _run(
        "import json, sys\n"
        "from shared.psp.base import Notification, PspConfig\n"
        "from shared.psp.registry import ADAPTERS\n"
        "cfg = PspConfig(psp='stripe', account='default', livemode=False, values={})\n"
        "obj = {'id': 'pi_1', 'amount': 2900, 'amount_received': 2900, 'currency': 'eur', 'metadata': {},\n"
        "  'last_payment_error': {'decline_code': 'insufficient_funds', 'code': 'card_declined'}}\n"
        "def note(t):\n"
        "    ev = {'id': 'evt_' + t, 'type': t, 'created': 1769850000, 'livemode': False, 'data': {'object': obj}}\n"
        "    return Notification(event_id=ev['id'], event_type=t, payload=ev)\n"
        "ok = ADAPTERS['stripe'].normalise(note('payment_intent.succeeded'), cfg)\n"
        "taxonomies = ('shared.domain.declines', 'shared.domain.disputes')\n"
        "before = [n for n in taxonomies if n in sys.modules]\n"
        "failed = ADAPTERS['stripe'].normalise(note('payment_intent.payment_failed'), cfg)\n"
        "print(json.dumps({'ok': ok.EVENT_TYPE, 'before': before, 'after': 'shared.domain.declines' in sys.modules,\n"
        "  'failed': [failed.EVENT_TYPE, failed.category, failed.retryable]}))"
    )
    assert got["ok"] == "payment.succeeded"
    assert got["before"] == []
    assert got["after"] is True
    assert got["failed"] == ["payment.failed", "insufficient_funds", True]


def test_the_lazy_taxonomy_helpers_answer_as_the_domain_functions() -> None:
    from shared.domain import declines, disputes
    from shared.psp import base

    for codes in (("insufficient_funds",), ("nope", "card_declined"), (None, "stolen_card"), ("unmapped-code",)):
        assert base.classify("stripe", *codes, log_unknown=False) == declines.classify("stripe", *codes)
    due = dt.datetime(2026, 2, 10, tzinfo=dt.UTC)
    kw: dict[str, Any] = {"reason_code": "10.4", "due_by": due, "psp_status": "under_review"}
    assert base.event_fields("stripe", "fraudulent", **kw) == disputes.event_fields("stripe", "fraudulent", **kw)
