"""BigQuery table schemas generated from the event contracts: one table per topic, one source of truth.

Why generated: the contracts in ``shared/events`` are what producers serialise; a hand-written table
schema drifts from them and a BigQuery subscription then dead-letters every message with a new field.
This module only READS the registered contracts (``pydantic`` serialisation JSON schema) and emits the
BigQuery JSON schema format (``[{"name", "type", "mode", "description", "fields"}]``).

A topic carries several event types, so its table is the union of their fields, discriminated by the
``event_type`` column. Columns come from three places:

* the envelope (message attributes), copied into the message data by the subscription's JavaScript
  transform (``infra/bigquery/envelope_to_columns.js``) because a BigQuery subscription maps only
  the data's JSON fields to columns, and ``occurred_at`` must be a column to partition on;
* the event body: the contracts' fields, nested models as RECORD, tuples as REPEATED;
* the subscription's ``write_metadata`` columns: subscription name, message id, publish time and the
  attributes as JSON (kept whole, so nothing of the envelope is lost).
"""

from __future__ import annotations

import copy
import importlib
import pkgutil
from collections.abc import Iterable
from typing import Any

import shared.events
from shared.events.envelope import Event, registered

Field = dict[str, Any]

# Envelope attributes (shared.events.envelope.Envelope.attributes) as columns; the first five are always set.
ENVELOPE_COLUMNS: tuple[Field, ...] = (
    {"name": "event_type", "type": "STRING", "mode": "REQUIRED", "description": "envelope: e.g. payment.failed"},
    {"name": "event_id", "type": "STRING", "mode": "REQUIRED", "description": "envelope: deterministic event id"},
    {"name": "schema_version", "type": "INTEGER", "mode": "REQUIRED", "description": "envelope: body version"},
    {
        "name": "occurred_at",
        "type": "TIMESTAMP",
        "mode": "REQUIRED",
        "description": "envelope: when the fact happened (partition column)",
    },
    {"name": "idempotency_key", "type": "STRING", "mode": "REQUIRED", "description": "envelope: business key"},
    {"name": "traceparent", "type": "STRING", "mode": "NULLABLE", "description": "envelope: W3C trace context"},
    {"name": "producer", "type": "STRING", "mode": "NULLABLE", "description": "envelope: publishing function"},
)

# Written by a BigQuery subscription with write_metadata = true (names and types fixed by Pub/Sub).
METADATA_COLUMNS: tuple[Field, ...] = (
    {"name": "subscription_name", "type": "STRING", "mode": "NULLABLE", "description": "Pub/Sub: subscription"},
    {"name": "message_id", "type": "STRING", "mode": "NULLABLE", "description": "Pub/Sub: message id"},
    {"name": "publish_time", "type": "TIMESTAMP", "mode": "NULLABLE", "description": "Pub/Sub: publish time"},
    {"name": "attributes", "type": "JSON", "mode": "NULLABLE", "description": "Pub/Sub: every message attribute"},
)

RESERVED = frozenset(c["name"] for c in (*ENVELOPE_COLUMNS, *METADATA_COLUMNS))


class SchemaExportError(ValueError):
    """A contract that cannot become a column (unsupported type, or a clash between event types)."""


def contracts_by_topic() -> dict[str, list[type[Event]]]:
    """Every registered contract, imported from every module of ``shared.events``, grouped by topic."""
    for mod in pkgutil.walk_packages(shared.events.__path__, "shared.events."):
        importlib.import_module(mod.name)
    topics: dict[str, list[type[Event]]] = {}
    for (event_type, version), cls in sorted(registered().items()):
        del event_type, version
        topics.setdefault(cls.TOPIC, []).append(cls)
    return topics


def table_id(topic: str) -> str:
    """BigQuery table ids allow letters, digits and underscores: payment-events -> payment_events."""
    return topic.replace("-", "_").replace(".", "_")


def _resolve(node: dict[str, Any], defs: dict[str, Any]) -> dict[str, Any]:
    while "$ref" in node:
        node = {**defs[node["$ref"].rsplit("/", 1)[-1]], **{k: v for k, v in node.items() if k != "$ref"}}
    return node


def _column(name: str, node: dict[str, Any], defs: dict[str, Any], *, required: bool, where: str) -> Field:
    # The field's own description only: a nested model's class docstring says nothing about this column.
    description = str(node.get("description") or "").strip()
    node = _resolve(node, defs)
    nullable = False
    if "anyOf" in node:
        options = [_resolve(o, defs) for o in node["anyOf"]]
        non_null = [o for o in options if o.get("type") != "null"]
        nullable = len(non_null) < len(options)
        if len(non_null) != 1:
            raise SchemaExportError(f"{where}.{name}: a union of several types has no BigQuery column type")
        node = {**non_null[0], **{k: v for k, v in node.items() if k not in ("anyOf", "default")}}
    kind = node.get("type")
    if kind == "array":
        item = _column(name, node.get("items") or {}, defs, required=True, where=where)
        if item["mode"] == "REPEATED":
            raise SchemaExportError(f"{where}.{name}: BigQuery has no array of arrays")
        return _described({**item, "mode": "REPEATED"}, description)
    field: Field = {"name": name, "type": _bq_type(node, f"{where}.{name}"), "mode": "NULLABLE"}
    if required and not nullable:
        field["mode"] = "REQUIRED"
    _described(field, description)
    if field["type"] == "RECORD":
        req = set(node.get("required") or ())
        field["fields"] = [
            _column(k, v, defs, required=k in req, where=f"{where}.{name}") for k, v in node["properties"].items()
        ]
    return field


def _described(field: Field, description: str) -> Field:
    """BigQuery drops empty descriptions; writing none keeps Terraform's plan free of a perpetual diff."""
    field.pop("description", None)
    if description:
        field["description"] = description
    # Keys in a fixed order (in place), so the checked-in JSON is stable.
    order = ("name", "type", "mode", "description", "fields")
    ordered = {k: field[k] for k in order if k in field}
    field.clear()
    field.update(ordered)
    return field


def _bq_type(node: dict[str, Any], where: str) -> str:
    kind, fmt = node.get("type"), node.get("format")
    if kind == "string":
        return {"date-time": "TIMESTAMP", "date": "DATE", "time": "TIME"}.get(str(fmt), "STRING")
    if kind == "integer":
        return "INTEGER"
    if kind == "boolean":
        return "BOOLEAN"
    if kind == "number":
        return "FLOAT"
    if kind == "object":
        return "RECORD" if node.get("properties") else "JSON"
    if "const" in node or "enum" in node:
        return "STRING"
    raise SchemaExportError(f"{where}: unsupported JSON schema {node}")


def _shape(field: Field) -> Any:
    """What must agree when two event types share a column: name, type, repetition, sub-fields."""
    return (
        field["type"],
        field["mode"] == "REPEATED",
        tuple((f["name"], _shape(f)) for f in field.get("fields", ())),
    )


def _body_columns(cls: type[Event]) -> list[Field]:
    schema = cls.model_json_schema(mode="serialization")
    defs = schema.get("$defs", {})
    req = set(schema.get("required") or ())
    return [
        _column(name, node, defs, required=name in req, where=cls.EVENT_TYPE)
        for name, node in schema["properties"].items()
    ]


def _merge(columns: list[Field], other: Field) -> None:
    """Fold one event type's column into the union: shapes must agree; REQUIRED only if required everywhere."""
    for i, c in enumerate(columns):
        if c["name"] != other["name"]:
            continue
        if _shape(c) != _shape(other):
            raise SchemaExportError(f"column {c['name']}: event types of one topic disagree on its type")
        merged = copy.deepcopy(c)
        if c["mode"] != other["mode"] and "REPEATED" not in (c["mode"], other["mode"]):
            merged["mode"] = "NULLABLE"
        if c.get("fields"):
            subs = merged["fields"]
            for sub in other["fields"]:
                _merge(subs, sub)
        columns[i] = _described(merged, c.get("description") or other.get("description") or "")
        return
    columns.append(copy.deepcopy(other))


def bigquery_schema(topic: str, contracts: Iterable[type[Event]] | None = None) -> list[Field]:
    """The table schema of ``topic``: envelope columns, the union of its contracts' fields, metadata."""
    classes = list(contracts) if contracts is not None else contracts_by_topic().get(topic, [])
    if not classes:
        raise SchemaExportError(f"no event contract publishes to {topic}")
    body: list[Field] = []
    seen: dict[str, set[str]] = {}
    for cls in sorted(classes, key=lambda c: (c.EVENT_TYPE, c.SCHEMA_VERSION)):
        cols = _body_columns(cls)
        for col in cols:
            if col["name"] in RESERVED:
                raise SchemaExportError(f"{cls.EVENT_TYPE}.{col['name']}: the name is taken by an envelope column")
            seen.setdefault(col["name"], set()).add(cls.EVENT_TYPE)
            _merge(body, col)
    types = {c.EVENT_TYPE for c in classes}
    for col in body:
        carriers = seen[col["name"]]
        if carriers != types:
            # A column only some event types carry is null for the others.
            if col["mode"] == "REQUIRED":
                col["mode"] = "NULLABLE"
            note = f"only {', '.join(sorted(carriers))}"
            own = col.get("description")
            _described(col, f"{own} ({note})" if own else note)
    return [*copy.deepcopy(list(ENVELOPE_COLUMNS)), *body, *copy.deepcopy(list(METADATA_COLUMNS))]


def column_names(schema: list[Field]) -> list[str]:
    return [c["name"] for c in schema]
