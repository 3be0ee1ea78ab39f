"""Act 90: everything the earlier acts published on the business topics, in DuckDB, through the views.

In the cloud a BigQuery subscription per exported topic writes each message to its table. Here a pull
subscription per topic (created before the first act, so it sees every message) plays that part: each
message becomes the same row (``infra.local.analytics.row_from_message``) in an in-memory DuckDB, and
the views of ``infra/bigquery/views`` (BigQuery SQL transpiled by sqlglot) answer the daily questions.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from infra.local.acts import DemoContext

ORDER = 90
TITLE = "Analytics: business topics as BigQuery rows in DuckDB, the daily views"


def _subscription(project: str, topic: str) -> str:
    return f"projects/{project}/subscriptions/demo-analytics-{topic}"


def prepare(ctx: DemoContext) -> None:
    """Before the first act: one pull subscription per exported topic, standing in for the BigQuery ones."""
    from google.api_core.exceptions import AlreadyExists
    from google.cloud.pubsub_v1 import SubscriberClient

    from infra.local.analytics import config

    sub = SubscriberClient()
    for topic in config().topics:
        try:
            sub.create_subscription(
                name=_subscription(ctx.stack.project, topic), topic=f"projects/{ctx.stack.project}/topics/{topic}"
            )
        except AlreadyExists:
            pass


def _drain(sub: Any, path: str) -> list[Any]:
    """Every message waiting on the subscription (two empty pulls in a row end it)."""
    got: list[Any] = []
    empty = 0
    while empty < 2:
        resp = sub.pull(request={"subscription": path, "max_messages": 500}, timeout=5)
        if not resp.received_messages:
            empty += 1
            continue
        empty = 0
        sub.acknowledge(request={"subscription": path, "ack_ids": [m.ack_id for m in resp.received_messages]})
        got += [m.message for m in resp.received_messages]
    return got


def _fmt(value: Any) -> str:
    return value.isoformat() if isinstance(value, dt.date) else str(value)


def play(ctx: DemoContext) -> None:
    from google.cloud.pubsub_v1 import SubscriberClient

    from infra.local.analytics import Store, config, row_from_message, view_names

    cfg = config()
    sub = SubscriberClient()
    store = Store(cfg.topics)
    try:
        for topic in cfg.topics:
            path = _subscription(ctx.stack.project, topic)
            rows = [
                row_from_message(
                    m.data,
                    dict(m.attributes),
                    message_id=m.message_id,
                    publish_time=m.publish_time,
                    subscription=path,
                )
                for m in _drain(sub, path)
                if m.attributes.get("event_type")
            ]
            ctx.say(f"  {topic:<20} -> {cfg.dataset}.{topic.replace('-', '_')}: {store.insert(topic, rows)} rows")
        for view in view_names():
            result = store.query(view)
            ctx.say(f"  view {view} ({len(result)} rows)")
            if result:
                ctx.say("    " + "  ".join(result[0]))
            for r in result[:12]:
                ctx.say("    " + "  ".join(_fmt(v) for v in r.values()))
        ctx.facts["analytics"] = {v: store.query(v) for v in view_names()}
    finally:
        store.close()
