"""The BigQuery event stream, locally: the same rows in DuckDB, the same views transpiled from BigQuery SQL.

In the cloud a BigQuery subscription per exported topic (``analytics.topics`` in topology.yaml) writes
every message to a table whose schema is generated from the contracts (``shared.events.schema_export``;
checked in under ``infra/bigquery/schemas``), after a JavaScript transform copies the envelope
attributes into the body. Here :func:`row_from_message` builds the identical row in Python, DuckDB holds
the tables (types translated from the BigQuery schema files) and the views in ``infra/bigquery/views`` are
written once in BigQuery SQL and transpiled with sqlglot.

``python -m infra.local.analytics schemas`` regenerates the schema files; ``--check`` fails on drift.
"""

from __future__ import annotations

import argparse
import datetime as dt
import functools
import json
import sys
import tempfile
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from infra.local.topology import ROOT, TOPOLOGY_FILE
from shared.events.schema_export import bigquery_schema, table_id

BIGQUERY_DIR = ROOT / "infra" / "bigquery"
SCHEMA_DIR = BIGQUERY_DIR / "schemas"
VIEW_DIR = BIGQUERY_DIR / "views"
UDF_FILE = BIGQUERY_DIR / "envelope_to_columns.js"
UDF_NAME = "envelopeToColumns"
LOCAL_DATASET = "analytics"

_DUCKDB_TYPES = {
    "STRING": "VARCHAR",
    "INTEGER": "BIGINT",
    "BOOLEAN": "BOOLEAN",
    "FLOAT": "DOUBLE",
    "TIMESTAMP": "TIMESTAMP",  # naive UTC in DuckDB: BigQuery TIMESTAMPs are UTC instants too
    "DATE": "DATE",
    "TIME": "TIME",
    "JSON": "JSON",
}


@dataclass(frozen=True)
class AnalyticsConfig:
    dataset: str
    topics: tuple[str, ...]


def config(path: Path = TOPOLOGY_FILE) -> AnalyticsConfig:
    """The ``analytics:`` section of the topology: the dataset and the exported topics."""
    data = yaml.safe_load(path.read_text()) or {}
    section = data.get("analytics") or {}
    return AnalyticsConfig(dataset=str(section.get("dataset", "payments_events")), topics=tuple(section["topics"]))


# --- schema files ---------------------------------------------------------------------------------


def schema_text(topic: str) -> str:
    return json.dumps(bigquery_schema(topic), indent=2) + "\n"


def schema_file(topic: str, folder: Path = SCHEMA_DIR) -> Path:
    return folder / f"{table_id(topic)}.json"


def write_schemas(topics: Iterable[str], folder: Path = SCHEMA_DIR) -> list[Path]:
    folder.mkdir(parents=True, exist_ok=True)
    written = []
    for topic in topics:
        path = schema_file(topic, folder)
        path.write_text(schema_text(topic))
        written.append(path)
    return written


def stale_schemas(topics: Iterable[str], folder: Path = SCHEMA_DIR) -> list[str]:
    """Exported topics whose checked-in schema is missing or differs from the generated one."""
    return [
        t
        for t in topics
        if not schema_file(t, folder).is_file() or schema_file(t, folder).read_text() != schema_text(t)
    ]


# --- rows: what the transform + BigQuery subscription write ---------------------------------------


def _rfc3339(t: dt.datetime) -> str:
    return t.astimezone(dt.UTC).isoformat().replace("+00:00", "Z")


def row_from_message(
    data: bytes,
    attributes: Mapping[str, str],
    *,
    message_id: str,
    publish_time: dt.datetime,
    subscription: str,
) -> dict[str, Any]:
    """The table row of one message: body fields, envelope columns (as the JS transform adds them), metadata."""
    row: dict[str, Any] = json.loads(data)
    row["event_type"] = attributes.get("event_type")
    row["event_id"] = attributes.get("event_id")
    row["schema_version"] = int(attributes["schema_version"])
    row["occurred_at"] = attributes.get("occurred_at")
    row["idempotency_key"] = attributes.get("idempotency_key")
    row["traceparent"] = attributes.get("traceparent")
    row["producer"] = attributes.get("producer")
    row["subscription_name"] = subscription
    row["message_id"] = message_id
    row["publish_time"] = _rfc3339(publish_time)
    row["attributes"] = dict(attributes)
    return row


# --- DuckDB ---------------------------------------------------------------------------------------


def duckdb_type(field: Mapping[str, Any]) -> str:
    if field["type"] == "RECORD":
        inner = ", ".join(f'"{f["name"]}" {duckdb_type(f)}' for f in field["fields"])
        base = f"STRUCT({inner})"
    else:
        base = _DUCKDB_TYPES[field["type"]]
    return f"{base}[]" if field.get("mode") == "REPEATED" else base


def _schema(table: str) -> list[dict[str, Any]]:
    data: list[dict[str, Any]] = json.loads((SCHEMA_DIR / f"{table}.json").read_text())
    return data


def view_names() -> list[str]:
    return sorted(p.stem for p in VIEW_DIR.glob("*.sql"))


def bigquery_view_sql(name: str, dataset: str) -> str:
    """The view's query as Terraform renders it (templatefile with ``dataset`` = ``project.dataset``)."""
    return (VIEW_DIR / f"{name}.sql").read_text().replace("${dataset}", dataset)


@functools.cache
def duckdb_view_sql(name: str) -> str:
    """The same query in DuckDB's dialect (sqlglot), reading the local dataset schema."""
    import sqlglot

    (statement,) = sqlglot.transpile(bigquery_view_sql(name, LOCAL_DATASET), read="bigquery", write="duckdb")
    return statement


class Store:
    """An in-memory DuckDB holding the exported tables and the views."""

    def __init__(self, topics: Iterable[str]) -> None:
        import duckdb

        self.topics = tuple(topics)
        self.con = duckdb.connect()
        self.con.execute("SET TimeZone = 'UTC'")
        self.con.execute(f"CREATE SCHEMA {LOCAL_DATASET}")
        for topic in self.topics:
            table = table_id(topic)
            columns = ", ".join(f'"{c["name"]}" {duckdb_type(c)}' for c in _schema(table))
            self.con.execute(f"CREATE TABLE {LOCAL_DATASET}.{table} ({columns})")
        for name in view_names():
            self.con.execute(f"CREATE VIEW {LOCAL_DATASET}.{name} AS {duckdb_view_sql(name)}")

    def insert(self, topic: str, rows: Iterable[Mapping[str, Any]]) -> int:
        """Load rows through DuckDB's JSON reader with the table's own column types, like a streaming write."""
        table = table_id(topic)
        schema = _schema(table)
        columns = {c["name"]: duckdb_type(c) for c in schema}
        with tempfile.NamedTemporaryFile("w", suffix=".ndjson", delete=False) as fh:
            n = 0
            for row in rows:
                fh.write(json.dumps(row) + "\n")
                n += 1
            path = fh.name
        try:
            if n:
                spec = "{" + ", ".join(f"'{k}': '{v}'" for k, v in columns.items()) + "}"
                names = ", ".join(f'"{k}"' for k in columns)
                self.con.execute(
                    # Identifiers come from the checked-in schema files, never from message content.
                    f"INSERT INTO {LOCAL_DATASET}.{table} ({names}) SELECT {names} FROM read_json(?, "  # noqa: S608
                    f"format = 'newline_delimited', columns = {spec})",
                    [path],
                )
        finally:
            Path(path).unlink()
        return n

    def clear(self) -> None:
        for topic in self.topics:
            self.con.execute(f"DELETE FROM {LOCAL_DATASET}.{table_id(topic)}")  # noqa: S608 (topology names)

    def query(self, view: str) -> list[dict[str, Any]]:
        if view not in view_names():
            raise KeyError(f"no view {view!r} in infra/bigquery/views")
        cur = self.con.execute(f"SELECT * FROM {LOCAL_DATASET}.{view} ORDER BY ALL")  # noqa: S608 (checked above)
        names = [d[0] for d in cur.description]
        return [dict(zip(names, r, strict=True)) for r in cur.fetchall()]

    def close(self) -> None:
        self.con.close()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m infra.local.analytics", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    s = sub.add_parser("schemas", help="write infra/bigquery/schemas/<table>.json from the contracts")
    s.add_argument("--check", action="store_true", help="only report files that differ (exit 1)")
    args = parser.parse_args(argv)
    topics = config().topics
    if args.check:
        stale = stale_schemas(topics)
        for t in stale:
            print(f"stale: {schema_file(t).relative_to(ROOT)} (run: python -m infra.local.analytics schemas)")
        return 1 if stale else 0
    for path in write_schemas(topics):
        print(f"wrote {path.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
