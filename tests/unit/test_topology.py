"""The topology file is valid, and every function folder is described in it exactly once."""

from __future__ import annotations

from pathlib import Path

import pytest

from infra.local.topology import ROOT, TopologyError, load


def test_topology_loads_and_covers_every_function_folder() -> None:
    topo = load()
    folders = {p.name for p in (ROOT / "functions").iterdir() if (p / "main.py").is_file()}
    assert folders == set(topo.functions)
    for s in topo.subscriptions.values():
        assert s.dead_letter_topic in topo.all_topics


def test_consistency_errors_are_reported(tmp_path: Path) -> None:
    bad = tmp_path / "t.yaml"
    bad.write_text(
        "topics: {a-topic: {}}\n"
        "functions:\n  ghost: {entry_point: ghost, trigger: http, publishes: [nope]}\n"
        "subscriptions:\n  sub-x: {topic: missing, function: ghost, ack_deadline_s: 10,"
        " max_delivery_attempts: 1, min_backoff_s: 1, max_backoff_s: 2}\n"
    )
    with pytest.raises(TopologyError) as exc:
        load(bad)
    text = str(exc.value)
    for fragment in (
        "does not exist",
        "unknown topic nope",
        "unknown topic missing",
        "not a pubsub function",
        "5..100",
    ):
        assert fragment in text
