"""Terraform itself evaluates the topology locals: real yamldecode and for expressions, no provider.

`terraform validate` needs the google provider, which cannot be downloaded offline; the locals that
turn topology.yaml into the for_each maps need no provider, so `terraform console` evaluates them
here, for the real topology and for topologies with entries that do not exist yet.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from infra.local.topology import load
from tests.infra.hcl import INFRA

TERRAFORM = shutil.which("terraform")
pytestmark = pytest.mark.skipif(TERRAFORM is None, reason="terraform is not installed")

EXPR = (
    "jsonencode({functions = local.functions, subscriptions = local.subscriptions, schedules = local.schedules,"
    " topics = local.topics, secret_ids = local.secret_ids, indexes = local.firestore_indexes,"
    " ttl = local.firestore_ttl_fields, exemptions = local.firestore_exemptions})"
)


def evaluate(tmp: Path, topology_text: str, *extra_vars: str, expr: str = EXPR) -> dict[str, Any]:
    for name in ("locals.tf", "variables.tf"):
        shutil.copy(INFRA / name, tmp / name)
    (tmp / "topology.yaml").write_text(topology_text)
    assert TERRAFORM
    proc = subprocess.run(
        [TERRAFORM, "console", "-var", "project_id=demo-eval-1", "-var", "environment=dev", *extra_vars],
        input=expr,
        cwd=tmp,
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )
    if proc.returncode != 0:
        raise RuntimeError(proc.stderr)
    literal = proc.stdout.strip().splitlines()[-1]
    # The console prints an HCL string literal; its escapes are JSON's, plus $${ and %%{.
    data: dict[str, Any] = json.loads(json.loads(literal).replace("$${", "${").replace("%%{", "%{"))
    return data


def test_the_real_topology_evaluates_to_every_function_subscription_and_schedule(tmp_path: Path) -> None:
    raw = yaml.safe_load((INFRA / "topology.yaml").read_text())
    topo = load()
    got = evaluate(tmp_path, (INFRA / "topology.yaml").read_text())
    assert set(got["functions"]) == set(topo.functions)
    for key, fn in topo.functions.items():
        g = got["functions"][key]
        assert g["name"] == fn.name
        assert g["entry_point"] == fn.entry_point
        assert g["trigger"] == fn.trigger
        assert g["public"] is fn.public
        assert g["publishes"] == list(fn.publishes)
        assert g["secrets"] == list(fn.secrets)
        for field in ("memory", "timeout_s", "concurrency", "min_instances", "max_instances"):
            if field in raw["functions"][key]:
                assert g[field] == raw["functions"][key][field], (key, field)
    disputes = got["functions"]["disputes"]
    assert (disputes["invoice_bucket"], disputes["buckets"]) == (True, ["evidence"]), (
        "evidence packets: PDFs in, zip out"
    )
    assert got["functions"]["webhooks"]["buckets"] == []
    assert set(got["topics"]) == set(topo.topics)
    assert set(got["subscriptions"]) == set(topo.subscriptions)
    for name, s in topo.subscriptions.items():
        g = got["subscriptions"][name]
        assert (g["topic"], g["function"]) == (s.topic, s.function)
        assert g["max_delivery_attempts"] == s.max_delivery_attempts
        assert (g["min_backoff_s"], g["max_backoff_s"], g["ack_deadline_s"]) == (
            s.min_backoff_s,
            s.max_backoff_s,
            s.ack_deadline_s,
        )
    assert {k: (v["topic"], v["cron"]) for k, v in got["schedules"].items()} == {
        k: (s.topic, s.cron) for k, s in topo.schedules.items()
    }
    assert {"collection": "idempotency", "field": "expire_at"} in got["ttl"]
    assert len(got["indexes"]) == len((raw.get("firestore") or {}).get("indexes") or [])


FUTURE = """
topics:
  payment-events: {description: facts}
  invoice-events:
functions:
  invoices:
    entry_point: invoices
    trigger: pubsub
    publishes: [invoice-events]
    secrets: [INVOICE_SIGNING_KEY]
    env: {SELLER_COUNTRY: DE}
  renewals_collector:
    entry_point: collect
    trigger: pubsub
    public: false
    publishes:
    secrets: [STRIPE_API_KEY, BRAINTREE_PRIVATE_KEY]
    memory: 1Gi
    cpu: 2
subscriptions:
  invoices-payment-events:
    topic: payment-events
    function: invoices
    max_delivery_attempts: 20
    filter: attributes.event_type = "payment.succeeded"
schedules:
firestore:
  indexes:
    - collection: subscriptions
      fields:
        - {field_path: status, order: ASCENDING}
        - {field_path: next_renewal_at, order: ASCENDING}
  exemptions:
    - {collection: invoices, field: pdf_text}
"""


def test_the_dead_letter_grants_pair_each_reader_with_every_subscription(tmp_path: Path) -> None:
    topo = load()
    expr = "jsonencode({grants = local.dead_letter_grants, functions = local.functions})"
    got = evaluate(tmp_path, (INFRA / "topology.yaml").read_text(), expr=expr)
    assert {k for k, f in got["functions"].items() if f["dead_letters"]} == {"console"}
    assert got["grants"] == {f"console/{s}": {"function": "console", "subscription": s} for s in topo.subscriptions}


def test_entries_that_appear_later_are_picked_up_with_defaults(tmp_path: Path) -> None:
    got = evaluate(tmp_path, FUTURE, "-var", 'disabled_secrets=["BRAINTREE_PRIVATE_KEY"]')
    inv = got["functions"]["invoices"]
    assert inv["invoice_bucket"] is True, "the invoices function gets the invoice bucket by default"
    assert inv["env"] == {"SELLER_COUNTRY": "DE"}
    assert (inv["memory"], inv["timeout_s"], inv["concurrency"], inv["public"]) == ("256Mi", 60, 1, False)
    col = got["functions"]["renewals_collector"]
    assert col["name"] == "renewals-collector"
    assert col["publishes"] == []
    assert col["invoice_bucket"] is False
    assert col["cpu"] == "2"
    assert col["secrets"] == ["STRIPE_API_KEY"], "disabled secrets are neither created nor mounted"
    assert got["secret_ids"] == {"INVOICE_SIGNING_KEY": "invoice-signing-key", "STRIPE_API_KEY": "stripe-api-key"}
    sub = got["subscriptions"]["invoices-payment-events"]
    assert sub["max_delivery_attempts"] == 20
    assert sub["filter"] == 'attributes.event_type = "payment.succeeded"'
    assert (sub["ack_deadline_s"], sub["min_backoff_s"], sub["max_backoff_s"]) == (60, 10, 600)
    assert got["schedules"] == {}
    assert got["topics"]["invoice-events"] == {"description": ""}
    (index,) = got["indexes"]
    assert index["collection"] == "subscriptions"
    assert [f["field_path"] for f in index["fields"]] == ["status", "next_renewal_at"]
    assert {"collection": "invoices", "field": "pdf_text"} in got["exemptions"]


def test_an_entry_missing_a_required_field_fails_loudly(tmp_path: Path) -> None:
    broken = "functions:\n  ghost:\n    trigger: http\n"
    with pytest.raises(RuntimeError, match="entry_point"):
        evaluate(tmp_path, broken)


def test_an_empty_topology_deploys_nothing(tmp_path: Path) -> None:
    got = evaluate(tmp_path, "topics:\nfunctions:\n")
    assert got["functions"] == {}
    assert got["subscriptions"] == {}
    assert got["secret_ids"] == {}
