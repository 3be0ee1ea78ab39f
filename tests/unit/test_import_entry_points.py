"""What each function's entry module loads at a cold start, checked in fresh interpreters via ``sys.modules``.

Cold start is process start to the first answer, so an entry module and the service its first request builds
load only what that request needs: the PDF library, the PSP charging adapters, the billing API or the
settlement parsers load when a request uses them (README, "Deploy bundles, configuration rule, cold start").
Each check below names modules that the former code loaded at import (so the check fails on it) and that
the path in question does not need.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.helpers import T0

ROOT = Path(__file__).resolve().parents[2]
FUNCTIONS = sorted(p.parent.name for p in (ROOT / "functions").glob("*/main.py"))

# Never loaded by importing any entry module: the PDF renderer, operator CLIs, test and demo signing helpers.
NEVER = ("fpdf", "shared.ops", "shared.psp.signing")

# What answering a subscription read (GET: the stored document and its view) does not load: the commands.
READ_NEEDS_NOT = (
    "shared.subscriptions.commands",
    "shared.events.billing",
    "shared.domain.pricing",
    "shared.domain.catalog",
    "shared.renewals.lifecycle",
    "shared.metering.store",
    "shared.metering.config",
)

# Per function: what importing main.py must NOT load (loaded by the first request that needs it).
NOT_AT_IMPORT: dict[str, tuple[str, ...]] = {
    # The service is built on the first request; nothing of invoicing, billing contracts or catalog at start.
    "invoices": ("shared.invoicing", "shared.events.billing", "shared.domain.catalog", "shared.billing"),
    # A tick needs the planner: the collector (charging, PSPs, risk) and the outcome handler load on their message;
    # the billing contracts, pricing and the lifecycle's events with the first claim (a fan-out needs none).
    "renewals": (
        "shared.renewals.collector",
        "shared.renewals.outcomes",
        "shared.charging",
        "shared.risk",
        "shared.invoicing",
        "shared.events.billing",
        "shared.domain.pricing",
        "shared.domain.catalog",
        "shared.domain.discounts",
        "shared.renewals.lifecycle",
    ),
    # A payment fact needs matching and the ledger: the PSP settlement adapters load for a pull or a report.
    "reconciliation": ("shared.settlement.registry", "shared.settlement.adapters", "shared.events.billing"),
    # A subscription request does not load the billing API's stores and models; a read (GET) not the commands'
    # request models, the billing contracts, pricing, the lifecycle's events or the metering store either.
    "subscriptions": (
        "shared.billing.api",
        "shared.billing.catalog",
        "shared.billing.coupons",
        "shared.billing.credit",
        "shared.billing.customers",
        *READ_NEEDS_NOT,
    ),
    # The aggregator folds pushed batches: the usage HTTP routes are not its.
    "usage_aggregator": ("shared.metering.api",),
    # The console's pages name collections; their owners' modules are not imported for the names.
    "console": (
        "shared.billing",
        "shared.disputes",
        "shared.invoicing",
        "shared.reconciliation",
        "shared.renewals",
        "shared.webhooks",
    ),
}


def _env() -> dict[str, str]:
    env = {"PYTHONPATH": str(ROOT), "GOOGLE_CLOUD_PROJECT": "demo-unit", "PATH": "/usr/bin:/bin"}
    # Building a client makes no call; an emulator host spares the credentials lookup.
    for name, default in (("FIRESTORE_EMULATOR_HOST", "127.0.0.1:9"), ("STORAGE_EMULATOR_HOST", "http://127.0.0.1:9")):
        env[name] = os.environ.get(name, default)
    return env


def _loaded(key: str, then: str = "") -> set[str]:
    """Module names in ``sys.modules`` after importing ``functions/<key>/main.py`` (and running ``then``)."""
    code = (
        "import importlib.util as u, json, sys\n"
        f"s = u.spec_from_file_location('main', 'functions/{key}/main.py'); m = u.module_from_spec(s)\n"
        "sys.modules['main'] = m; s.loader.exec_module(m)\n"
        f"{then}\n"
        "print(json.dumps(sorted(sys.modules)))"
    )
    out = subprocess.run([sys.executable, "-c", code], check=True, capture_output=True, text=True, env=_env(), cwd=ROOT)
    names: list[str] = json.loads(out.stdout.strip().splitlines()[-1])
    return set(names)


def _hits(loaded: set[str], prefixes: tuple[str, ...]) -> list[str]:
    return sorted(n for n in loaded if any(n == p or n.startswith(p + ".") for p in prefixes))


@pytest.mark.parametrize("key", FUNCTIONS)
def test_importing_an_entry_module_loads_only_what_its_first_request_needs(key: str) -> None:
    loaded = _loaded(key)
    assert "shared.log" in loaded  # the entry module was imported at all
    assert _hits(loaded, NEVER) == []
    assert _hits(loaded, NOT_AT_IMPORT.get(key, ())) == []


def test_the_invoices_service_built_for_a_payment_fact_loads_no_pdf_billing_api_or_document_builders() -> None:
    loaded = _loaded("invoices", "svc = m._service(); assert svc.payments is not None and svc.issuing is not None")
    assert "shared.invoicing.payments" in loaded
    heavy = ("fpdf", "shared.billing", "shared.invoicing.documents", "shared.events.billing", "shared.domain.catalog")
    assert _hits(loaded, heavy) == []


def test_a_cold_subscriptions_function_answers_a_read_without_the_commands_and_contracts() -> None:
    """The view of a stored subscription (what GET answers after its one read), metered and with items, so the
    repository asks the metering rule whether usage is owed."""
    from shared.subscriptions.commands import CreateSubscription
    from shared.subscriptions.service import new_document, view

    body = CreateSubscription.model_validate(
        {
            "subscription_id": "sub-cold",
            "customer": {"id": "cus-cold", "name": "Ada Lovelace", "country": "DE"},
            "seller_entity": "acme-de",
            "plan": {
                "id": "pro",
                "currency": "EUR",
                "interval": "month",
                "lines": [{"description": "Pro", "unit_amount": {"amount": 1000, "currency": "EUR"}}],
            },
            "collection": "send_invoice",
        }
    )
    doc, _ = new_document(body, T0)
    doc |= {"metered": {"customer": "cus-cold"}, "items": [{"price": {"id": "p"}, "quantity": 1}]}
    expected = view(doc)
    assert expected["id"] == "sub-cold"
    loaded = _loaded(
        "subscriptions",
        f"import datetime\nfrom shared.subscriptions.service import view\nassert view({doc!r}) == {expected!r}",
    )
    assert "shared.metering.billing" in loaded
    assert _hits(loaded, READ_NEEDS_NOT) == []


def test_a_cold_aggregator_folds_its_first_batch_without_the_billing_contracts() -> None:
    """After every fold it checks thresholds (``fold_window`` imports them): only a crossing builds an invoice
    request, so the contracts and the due-date rule load with the first crossing."""
    from shared.events.billing import THRESHOLD_PREFIX
    from shared.metering import thresholds

    loaded = _loaded("usage_aggregator", "from shared.metering.thresholds import Thresholds")
    assert "shared.metering.thresholds" in loaded
    assert _hits(loaded, ("shared.events.billing", "shared.domain.subscriptions", "shared.domain.discounts")) == []
    rid = thresholds.request_id("sub-1", "2026-01", 2)
    assert rid == f"{THRESHOLD_PREFIX}sub-1:2026-01:2"
    assert thresholds.is_threshold_request(rid)
    assert not thresholds.is_threshold_request("sub-1:2026-01-31T09:00:00+00:00")


@pytest.mark.parametrize(
    ("key", "models"),
    [
        ("console", "shared.console.actions:InvoiceAction,ReplayDeadLetters,ResolveException,AcceptDispute,Envelope"),
        ("usage", "shared.metering.api:MeteredItemIn,AttachIn"),
    ],
)
def test_request_models_a_first_request_does_not_use_are_built_on_first_use(key: str, models: str) -> None:
    """A console page and an ingest need no action form or attach body: their validators wait (``defer_build``)."""
    module, names = models.split(":")
    built = f"[n for n in {names.split(',')!r} if getattr(mod, n).__pydantic_complete__]"
    check = f"import {module} as mod\nprint('BUILT', {built})"
    code = (
        "import importlib.util as u, sys\n"
        f"s = u.spec_from_file_location('main', 'functions/{key}/main.py'); m = u.module_from_spec(s)\n"
        f"sys.modules['main'] = m; s.loader.exec_module(m)\n{check}"
    )
    run = subprocess.run([sys.executable, "-c", code], check=True, capture_output=True, text=True, env=_env(), cwd=ROOT)
    assert run.stdout.strip().splitlines()[-1] == "BUILT []"


def test_a_cold_invoices_function_parses_a_payment_fact_without_loading_the_other_contracts() -> None:
    """Its first message is parsed before the service exists: the payment contracts must be registered by then."""
    from shared.domain.money import Money
    from shared.events import build_message
    from shared.events.payments import OurRefs, PaymentSucceeded

    fact = PaymentSucceeded(
        psp="stripe",
        psp_payment_id="pi_cold",
        livemode=False,
        amount=Money(2900, "EUR"),
        refs=OurRefs(invoice_id="INV-COLD"),
        psp_created_at=T0,
    )
    data, attrs = build_message(fact, idempotency_key=fact.fact_key(), occurred_at=T0)
    loaded = _loaded(
        "invoices",
        "from shared.events import parse_message\n"
        f"assert parse_message({data!r}, {attrs!r}, 'm1').event.psp_payment_id == 'pi_cold'",
    )
    assert "shared.events.payments" in loaded
    assert _hits(loaded, ("shared.events.billing", "shared.events.disputes", "shared.events.usage")) == []


def test_the_lazy_names_still_resolve_to_the_real_code() -> None:
    """The re-exports, the renewals routes and the billing routes reach the same functions as before."""
    from shared.invoicing import documents, service
    from shared.renewals import collector, entry, outcomes

    assert service.build_invoice_doc is documents.build_invoice_doc
    assert service.build_credit_note_doc is documents.build_credit_note_doc
    assert service._pending is documents.pending
    with pytest.raises(AttributeError):
        _ = service.no_such_name
    assert set(entry.HANDLERS) == {
        "invoice.finalized",
        "invoice.paid",
        "renewal.charge_retry_due",
        "payment.succeeded",
        "payment.authorized",
        "payment.failed",
        "payment.pending",
    }
    assert collector.on_invoice_finalized.__name__ == entry.on_invoice_finalized.__name__
    assert outcomes.on_payment_fact.__name__ == entry.on_payment_fact.__name__


def test_the_billing_api_and_the_subscriptions_function_agree_on_the_billing_paths() -> None:
    from shared.billing import api, paths

    routed = {r.template.strip("/").split("/", 1)[0] for r in api.ROUTES}
    assert routed == set(paths.PREFIXES)
    assert paths.is_billing_path("/customers/c1")
    assert not paths.is_billing_path("/subscriptions/s1")


def test_the_console_names_each_collection_as_its_owner_does() -> None:
    from shared.billing.credit import ENTRIES
    from shared.billing.customers import COLLECTION as CUSTOMERS
    from shared.console import queries as q
    from shared.disputes.service import COLLECTION as DISPUTES
    from shared.invoicing.allocator import SERIES
    from shared.invoicing.repository import CREDIT_NOTES, INVOICES
    from shared.reconciliation.repository import EXCEPTIONS
    from shared.renewals.repository import ATTEMPTS, SUBSCRIPTIONS
    from shared.webhooks.store import COLLECTION as WEBHOOKS

    assert (q.BALANCE_ENTRIES, q.CUSTOMERS, q.DISPUTES, q.SERIES) == (ENTRIES, CUSTOMERS, DISPUTES, SERIES)
    assert (q.CREDIT_NOTES, q.INVOICES, q.EXCEPTIONS) == (CREDIT_NOTES, INVOICES, EXCEPTIONS)
    assert (q.ATTEMPTS, q.SUBSCRIPTIONS, q.WEBHOOKS) == (ATTEMPTS, SUBSCRIPTIONS, WEBHOOKS)


def test_each_entry_module_freezes_what_it_imported_before_the_server_forks() -> None:
    """Its last statement exempts every object alive then from the collector (``shared.prefork``): the worker's
    first full collection would otherwise walk and copy every page the arbiter's imports wrote."""
    import ast

    for key in FUNCTIONS:
        tree = ast.parse((ROOT / "functions" / key / "main.py").read_text())
        last = tree.body[-1]
        assert isinstance(last, ast.Expr), key
        assert ast.unparse(last.value) == "freeze()", key
    # In one fresh interpreter, each entry module in turn: its function and the modules it loaded are frozen.
    code = (
        "import gc, importlib.util as u, json, sys\n"
        f"out = {{}}\nfor key in {FUNCTIONS!r}:\n"
        "    s = u.spec_from_file_location('main_' + key, f'functions/{key}/main.py'); m = u.module_from_spec(s)\n"
        "    sys.modules[s.name] = m; s.loader.exec_module(m)\n"
        "    tracked = {id(o) for o in gc.get_objects()}\n"
        "    watched = [getattr(m, key), m.__dict__, sys.modules['shared.log'].__dict__]\n"
        "    out[key] = [gc.get_freeze_count() > 0, [id(o) in tracked for o in watched]]\n"
        "print(json.dumps(out))"
    )
    run = subprocess.run([sys.executable, "-c", code], check=True, capture_output=True, text=True, env=_env(), cwd=ROOT)
    frozen = json.loads(run.stdout.strip().splitlines()[-1])
    assert frozen == {key: [True, [False, False, False]] for key in FUNCTIONS}
