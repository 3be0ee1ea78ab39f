"""The benchmark's cost model: usage lines summed per function and event type, priced at list prices."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from bench import _cost


def line(event_type: str, **usage: int) -> str:
    return json.dumps({"message": "usage", "event_type": event_type, "thread_cpu_ms": 2.0, "usage": usage})


def test_usage_lines_are_summed_per_event_type_and_background_counts_into_the_total() -> None:
    lines = [
        line("renewal.due", reads=3, writes=2, published=1, published_bytes=900, storage_class_a=1),
        line("renewal.due", reads=1, writes=1),
        '{"message": "invoice finalized", "usage": {"reads": 99}}',  # not a usage line
        json.dumps({"message": "usage", "event_type": "", "background": {"writes": 4}}),
    ]
    total, by_type = _cost.tally(lines)
    assert total.deliveries == 2
    assert (total.counts["reads"], total.counts["writes"]) == (4, 7)
    assert by_type["renewal.due"].counts["writes"] == 3
    assert by_type["(background)"].counts["writes"] == 4


def test_list_prices_per_million() -> None:
    t = _cost.Tally(deliveries=2, topics={"invoice-events": 1})
    t.counts.update(reads=10, writes=5, published=1, published_bytes=100, storage_class_a=1, storage_class_b=1)
    c = _cost.costs(t, cpu_s=0.03, size=(0.333, 0.5), subscribers={"invoice-events": 1}, per=1 / 1_000_000)
    assert c["firestore"] == pytest.approx(10 * 0.6 + 5 * 1.8)
    assert c["pubsub"] == pytest.approx(2 * 1000 * 40 / 2**40 * 1e6)  # publish + one delivery, 1 KB minimum
    assert c["storage"] == pytest.approx(5.0 + 0.4)
    assert c["requests"] == pytest.approx(0.8)
    assert c["compute"] == pytest.approx(0.03 * 24 + 0.03 / 0.333 * 0.5 * 2.5)


@pytest.mark.parametrize(("raw", "mib"), [("512Mi", 512), ("1Gi", 1024), ("256M", 256)])
def test_memory_sizes(raw: str, mib: int) -> None:
    assert _cost.memory_mib(raw) == mib
    assert _cost.size_of({"memory": "512Mi"}) == (0.333, 0.5)


def test_per_operation_items_add_up_to_the_priced_firestore_storage_and_requests() -> None:
    t = _cost.Tally(deliveries=2)
    t.counts.update(reads=10, writes=5, storage_class_a=1, storage_class_b=1)
    ops = _cost.operations(t, per=1 / 1_000_000)
    assert ops == pytest.approx({"fs reads": 6.0, "fs writes": 9.0, "gcs A": 5.0, "gcs B": 0.4, "requests": 0.8})
    c = _cost.costs(t, cpu_s=0.0, size=(0.333, 0.5), subscribers={}, per=1 / 1_000_000)
    assert ops["fs reads"] + ops["fs writes"] == pytest.approx(c["firestore"])
    assert _cost.FS_REGIONAL[0] * 2 == pytest.approx(_cost.FS_READ)  # the comparison halves both prices
    assert _cost.FS_REGIONAL[1] * 2 == pytest.approx(_cost.FS_WRITE)


@pytest.mark.parametrize(
    ("location", "prices"),
    [
        ("europe-west1", (0.033e-5, 0.099e-5)),
        ("us-central1", (0.03e-5, 0.09e-5)),
        ("asia-south2", (0.039e-5, 0.117e-5)),
        ("eur3", (0.06e-5, 0.18e-5)),
    ],
)
def test_firestore_is_priced_by_the_kind_of_its_location(location: str, prices: tuple[float, float]) -> None:
    assert _cost.firestore_prices(location) == pytest.approx(prices)
    t = _cost.Tally(deliveries=1)
    t.counts.update(reads=2, writes=3)
    c = _cost.costs(t, 0.0, (1.0, 1.0), {}, per=1.0, fs=_cost.firestore_prices(location))
    assert c["firestore"] == pytest.approx(2 * prices[0] + 3 * prices[1])
    assert _cost.operations(t, 1.0, _cost.firestore_prices(location))["fs writes"] == pytest.approx(3 * prices[1])


def _infra(tmp_path: Path, tfvars: str, region_default: str = "europe-west4") -> Path:
    (tmp_path / "envs").mkdir()
    (tmp_path / "envs" / "prod.tfvars").write_text(tfvars)
    (tmp_path / "variables.tf").write_text(
        f'variable "region" {{\n  type    = string\n  default = "{region_default}"\n}}\n'
        'variable "firestore_location" {\n  type    = string\n  default = null\n}\n'
    )
    return tmp_path


@pytest.mark.parametrize(
    ("tfvars", "where"),
    [
        ('region = "europe-west3"\nfirestore_location = "eur3"\n', "eur3"),
        ('region = "europe-west3"\n# firestore_location = "eur3"\n', "europe-west3"),
        ('region = "europe-west3"\nfirestore_location = null\n', "europe-west3"),
        ('environment = "prod"\n', "europe-west4"),
    ],
)
def test_the_priced_location_is_the_one_the_prod_tfvars_deploy(tmp_path: Path, tfvars: str, where: str) -> None:
    assert _cost.deployed_firestore_location(infra=_infra(tmp_path, tfvars)) == where


def test_production_as_checked_in_puts_firestore_in_the_stacks_region() -> None:
    location = _cost.deployed_firestore_location()
    assert "-" in location  # a region: README's renewal chain figure is priced there
    assert _cost.firestore_prices(location) == _cost.FS_REGIONS[location]
