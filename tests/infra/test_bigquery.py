"""The BigQuery event stream: schemas generated from the contracts, the transform, and the Terraform wiring."""

from __future__ import annotations

import datetime as dt
import json
import shutil
import subprocess
from pathlib import Path
from typing import Any, ClassVar

import pytest

from infra.local import analytics
from infra.local.topology import load
from shared.domain.money import Money
from shared.events import build_message
from shared.events.billing import InvoiceFinalized
from shared.events.envelope import Event
from shared.events.payments import PaymentFailed, PaymentSucceeded
from shared.events.schema_export import SchemaExportError, bigquery_schema, contracts_by_topic
from tests.infra.hcl import INFRA, all_resources, attr, blocks, named, parse

TOPICS = analytics.config().topics


def test_the_checked_in_schemas_are_the_generated_ones() -> None:
    assert analytics.stale_schemas(TOPICS) == [], "run: make bigquery-schemas"
    files = {p.name for p in analytics.SCHEMA_DIR.glob("*.json")}
    assert files == {f"{t.replace('-', '_')}.json" for t in TOPICS}, "a schema file for a topic that is not exported"


def test_a_contract_change_makes_the_schema_stale(tmp_path: Path) -> None:
    analytics.write_schemas(TOPICS, tmp_path)
    assert analytics.stale_schemas(TOPICS, tmp_path) == []
    schema = json.loads((tmp_path / "payment_events.json").read_text())
    (tmp_path / "payment_events.json").write_text(json.dumps([c for c in schema if c["name"] != "decline_code"]))
    assert analytics.stale_schemas(TOPICS, tmp_path) == ["payment-events"]

    class PaymentFailedV2(PaymentFailed):
        SCHEMA_VERSION: ClassVar[int] = 2
        network_advice: str | None = None

    generated = bigquery_schema("payment-events", [*contracts_by_topic()["payment-events"], PaymentFailedV2])
    (col,) = [c for c in generated if c["name"] == "network_advice"]
    assert col == {"name": "network_advice", "type": "STRING", "mode": "NULLABLE", "description": "only payment.failed"}


def test_every_exported_topic_exists_and_has_contracts() -> None:
    topology = load()
    contracts = contracts_by_topic()
    assert set(TOPICS) >= {"payment-events", "invoice-events", "subscription-events"}
    for topic in TOPICS:
        assert topic in topology.topics
        assert contracts.get(topic), topic


def test_columns_money_nesting_and_partition_column() -> None:
    pay = {c["name"]: c for c in bigquery_schema("payment-events")}
    assert pay["occurred_at"] == {
        "name": "occurred_at",
        "type": "TIMESTAMP",
        "mode": "REQUIRED",
        "description": "envelope: when the fact happened (partition column)",
    }
    assert pay["amount"]["type"] == "RECORD"
    assert [(f["name"], f["type"], f["mode"]) for f in pay["amount"]["fields"]] == [
        ("amount", "INTEGER", "REQUIRED"),
        ("currency", "STRING", "REQUIRED"),
    ], "money is integer minor units + ISO 4217 code, never a float"
    assert pay["psp"]["mode"] == "REQUIRED", "every payment event has a psp"
    assert pay["decline_code"]["mode"] == "NULLABLE"
    assert pay["attributes"]["type"] == "JSON"
    renewals = {c["name"]: c for c in bigquery_schema("renewals-due")}
    assert renewals["lines"]["mode"] == "REPEATED"
    assert renewals["customer"]["fields"][-1] == {"name": "address_lines", "type": "STRING", "mode": "REPEATED"}
    assert not any(c["type"] == "FLOAT" for c in bigquery_schema("invoice-events"))


def test_the_generator_refuses_clashing_contracts() -> None:
    class Clash(Event):
        EVENT_TYPE: ClassVar[str] = "test.clash"
        TOPIC: ClassVar[str] = "payment-events"
        psp: int

    with pytest.raises(SchemaExportError, match="disagree"):
        bigquery_schema("payment-events", [PaymentSucceeded, Clash])

    class Reserved(Event):
        EVENT_TYPE: ClassVar[str] = "test.reserved"
        TOPIC: ClassVar[str] = "t"
        occurred_at: str

    with pytest.raises(SchemaExportError, match="envelope column"):
        bigquery_schema("t", [Reserved])


def _messages() -> list[tuple[bytes, dict[str, str]]]:
    at = dt.datetime(2026, 3, 1, 8, 30, tzinfo=dt.UTC)
    failed = PaymentFailed(
        psp="stripe", psp_payment_id="pi_1", livemode=False, psp_created_at=at, decline_code="x", retryable=True
    )
    inv = InvoiceFinalized(
        invoice_id="inv_1",
        number="A-1",
        customer_id="c",
        request_id="r",
        subtotal=Money(1000, "KWD"),
        tax=Money(0, "KWD"),
        total=Money(1000, "KWD"),
        amount_due=Money(1000, "KWD"),
        collection="send_invoice",
        finalized_at=at,
    )
    out = [build_message(failed, idempotency_key=failed.fact_key(), occurred_at=at, producer="webhooks")]
    out.append(build_message(inv, idempotency_key="inv_1:finalized", occurred_at=at))
    data, attrs = out[0]
    out.append((data, {**attrs, "traceparent": "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"}))
    return out


def test_the_javascript_transform_and_its_python_mirror_agree(tmp_path: Path) -> None:
    node = shutil.which("node")
    if node is None:
        pytest.skip("node is not installed: the transform's JavaScript cannot run here")
    messages = _messages()
    script = tmp_path / "run.js"
    script.write_text(
        analytics.UDF_FILE.read_text()
        + "\nconst input = JSON.parse(require('fs').readFileSync(0, 'utf8'));\n"
        + f"process.stdout.write(JSON.stringify(input.map(m => {analytics.UDF_NAME}(m, {{}}))));\n"
    )
    payload = json.dumps([{"data": d.decode(), "attributes": a} for d, a in messages])
    proc = subprocess.run([node, str(script)], input=payload, capture_output=True, text=True, check=True, timeout=60)
    transformed = json.loads(proc.stdout)
    when = dt.datetime(2026, 3, 1, tzinfo=dt.UTC)
    for (data, attrs), out in zip(messages, transformed, strict=True):
        assert out["attributes"] == attrs
        row = analytics.row_from_message(data, attrs, message_id="1", publish_time=when, subscription="s")
        for meta in ("subscription_name", "message_id", "publish_time", "attributes"):
            row.pop(meta)
        assert json.loads(out["data"]) == row


def test_every_row_column_is_a_table_column() -> None:
    when = dt.datetime(2026, 3, 1, tzinfo=dt.UTC)
    for data, attrs in _messages():
        row = analytics.row_from_message(data, attrs, message_id="1", publish_time=when, subscription="s")
        topic = "payment-events" if attrs["event_type"].startswith("payment") else "invoice-events"
        columns = {c["name"] for c in bigquery_schema(topic)}
        assert set(row) <= columns, set(row) - columns


# --- Terraform ------------------------------------------------------------------------------------


def _module() -> dict[tuple[str, str], dict[str, object]]:
    return {(r.type, r.name): r.body for r in all_resources(INFRA / "modules" / "bigquery")}


def test_tables_are_partitioned_on_occurred_at_and_fed_by_bigquery_subscriptions() -> None:
    res = _module()
    table = res[("google_bigquery_table", "events")]
    assert attr(table, "for_each") == "${var.tables}"
    (part,) = blocks(table, "time_partitioning")
    assert (attr(part, "type"), attr(part, "field")) == ("DAY", "occurred_at")
    assert attr(table, "schema") == "${each.value.schema}"
    sub = res[("google_pubsub_subscription", "export")]
    (bq,) = blocks(sub, "bigquery_config")
    assert attr(bq, "use_table_schema") is True
    assert attr(bq, "write_metadata") is True
    assert attr(bq, "drop_unknown_fields") is False, "unknown fields must dead-letter, not vanish"
    (transform,) = blocks(sub, "message_transforms")
    (udf,) = blocks(transform, "javascript_udf")
    assert attr(udf, "code") == "${var.transform_code}"
    (dlp,) = blocks(sub, "dead_letter_policy")
    assert "google_pubsub_topic.dead_letter" in attr(dlp, "dead_letter_topic")
    iam = res[("google_bigquery_dataset_iam_member", "pubsub_writer")]
    assert attr(iam, "role") == "roles/bigquery.dataEditor"
    assert attr(iam, "member") == "${var.pubsub_service_agent}"
    assert not [k for k in res if k[0] == "google_project_iam_member"], "BigQuery access stays on the dataset"


def test_the_root_wires_topology_analytics_schemas_views_and_the_transform() -> None:
    root: dict[str, list[Any]] = {}
    for p in sorted(INFRA.glob("*.tf")):
        for kind, entries in parse(p).items():
            root.setdefault(kind, []).extend(entries)
    call = named(root, "module")["analytics"]
    assert attr(call, "source") == "./modules/bigquery"
    assert attr(call, "tables") == "${local.analytics_tables}"
    assert attr(call, "views") == "${local.analytics_views}"
    assert attr(call, "transform_function") == analytics.UDF_NAME
    text = (INFRA / "main.tf").read_text()
    assert "local.topology.analytics.topics" in text
    assert 'bigquery/schemas/${replace(t, "-", "_")}.json' in text
    assert "bigquery.googleapis.com" in text


@pytest.mark.skipif(shutil.which("terraform") is None, reason="terraform is not installed")
def test_terraform_renders_the_views_and_reads_every_schema(tmp_path: Path) -> None:
    """terraform console evaluates the same fileset/templatefile/file expressions as main.tf (no provider)."""
    shutil.copytree(analytics.BIGQUERY_DIR, tmp_path / "bigquery")
    shutil.copy(INFRA / "topology.yaml", tmp_path / "topology.yaml")
    (tmp_path / "main.tf").write_text(
        """
locals {
  topology          = yamldecode(file("${path.module}/topology.yaml"))
  analytics_dataset = try(local.topology.analytics.dataset, "payments_events")
  analytics_views = { for f in fileset("${path.module}/bigquery/views", "*.sql") : trimsuffix(f, ".sql") =>
    templatefile("${path.module}/bigquery/views/${f}", { dataset = "demo-p.${local.analytics_dataset}" })
  }
  columns = { for t in try(local.topology.analytics.topics, []) : t =>
    [for c in jsondecode(file("${path.module}/bigquery/schemas/${replace(t, "-", "_")}.json")) : c.name]
  }
}
"""
    )
    terraform = shutil.which("terraform")
    assert terraform
    proc = subprocess.run(
        [terraform, "console"],
        input="jsonencode({views = local.analytics_views, columns = local.columns})",
        cwd=tmp_path,
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )
    assert proc.returncode == 0, proc.stderr
    got = json.loads(json.loads(proc.stdout.strip().splitlines()[-1]).replace("$${", "${").replace("%%{", "%{"))
    dataset = analytics.config().dataset
    assert got["views"] == {n: analytics.bigquery_view_sql(n, f"demo-p.{dataset}") for n in analytics.view_names()}
    assert set(got["columns"]) == set(TOPICS)
    for topic, cols in got["columns"].items():
        assert "occurred_at" in cols, topic
