"""List and replay dead-lettered messages (operator command).

The service (where dead letters come from, why replay publishes before it acknowledges) is
:mod:`shared.events.deadletters`; this is its command line:

    python -m shared.ops.deadletters list probe-sink-probes
    python -m shared.ops.deadletters list --all
    python -m shared.ops.deadletters replay probe-sink-probes --event-id 5b0c... --dry-run
    python -m shared.ops.deadletters replay probe-sink-probes --max 100

The project comes from ``--project`` or ``GOOGLE_CLOUD_PROJECT``; ``PUBSUB_EMULATOR_HOST`` is honoured.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TextIO

from shared.events.deadletters import (  # the service; re-exported for callers of this module
    DLQ_SUFFIX,
    ENVELOPE_KEYS,
    PUBSUB_DLQ_PREFIX,
    DeadLetter,
    DeadLetters,
    ReplayReport,
)

__all__ = ["DLQ_SUFFIX", "ENVELOPE_KEYS", "PUBSUB_DLQ_PREFIX", "DeadLetter", "DeadLetters", "ReplayReport", "main"]

# The operator runs this from a checkout; shared/ never imports infra/, it only reads the topology file.
DEFAULT_TOPOLOGY = Path(__file__).resolve().parents[2] / "infra" / "topology.yaml"


def topology_subscriptions(path: Path) -> list[str]:
    """The push subscription names listed under ``subscriptions:`` in a topology file."""
    import yaml

    try:
        data = yaml.safe_load(path.read_text())
    except OSError as exc:
        raise SystemExit(f"cannot read the topology file {path}: {exc.strerror} (pass --topology)") from exc
    subs = (data or {}).get("subscriptions") or {}
    if not isinstance(subs, dict):
        raise SystemExit(f"{path}: 'subscriptions' must be a mapping")
    return sorted(str(name) for name in subs)


def _subscriptions(names: Sequence[str], all_: bool, topology: Path = DEFAULT_TOPOLOGY) -> list[str]:
    if names:
        return list(names)
    if all_:
        return topology_subscriptions(topology)
    raise SystemExit("name a subscription (or --all to use every subscription in infra/topology.yaml)")


def main(argv: Sequence[str] | None = None, out: TextIO | None = None) -> int:
    out = out or sys.stdout
    parser = argparse.ArgumentParser(
        prog="python -m shared.ops.deadletters", description="List and replay dead-lettered Pub/Sub messages."
    )
    parser.add_argument("--project", help="GCP project (default: GOOGLE_CLOUD_PROJECT)")
    sub = parser.add_subparsers(dest="command", required=True)
    ls = sub.add_parser("list", help="show dead letters (one JSON object per line); consumes nothing")
    ls.add_argument("subscription", nargs="*", help="push subscription name(s), without -dlq")
    ls.add_argument("--all", action="store_true", help="every subscription in infra/topology.yaml")
    ls.add_argument("--max", type=int, default=100, help="at most this many per subscription")
    ls.add_argument(
        "--topology", type=Path, default=DEFAULT_TOPOLOGY, help="topology file for --all (default: infra/topology.yaml)"
    )
    rp = sub.add_parser("replay", help="republish to the original topic, then acknowledge")
    rp.add_argument("subscription", help="push subscription name, without -dlq")
    rp.add_argument("--max", type=int, default=100, help="at most this many")
    rp.add_argument("--event-id", action="append", default=[], help="only these envelope event ids (repeatable)")
    rp.add_argument("--message-id", action="append", default=[], help="only these dead-letter message ids")
    rp.add_argument("--event-type", action="append", default=[], help="only these event types")
    rp.add_argument("--dry-run", action="store_true", help="show what would be replayed; change nothing")
    args = parser.parse_args(argv)

    if args.project:
        project = args.project
    else:
        from shared.config import get_settings

        project = get_settings().project_id
    tool = DeadLetters(project)

    if args.command == "list":
        for name in _subscriptions(args.subscription, args.all, args.topology):
            letters = tool.list(name, args.max)
            for d in letters:
                print(json.dumps({"subscription": name, **d.summary()}, default=str), file=out)
            print(f"# {name}{DLQ_SUFFIX}: {len(letters)} dead letter(s)", file=out)
        return 0

    filters: list[Callable[[DeadLetter], bool]] = []
    if args.event_id:
        filters.append(lambda d: d.event_id in args.event_id)
    if args.message_id:
        filters.append(lambda d: d.message_id in args.message_id)
    if args.event_type:
        filters.append(lambda d: d.attributes.get("event_type") in args.event_type)
    report = tool.replay(
        args.subscription,
        limit=args.max,
        select=(lambda d: all(f(d) for f in filters)) if filters else None,
        dry_run=args.dry_run,
    )
    print(json.dumps({"subscription": args.subscription, "dry_run": args.dry_run, **report.as_dict()}), file=out)
    return 1 if report.failed else 0


if __name__ == "__main__":
    sys.exit(main())
