"""Firestore TTL policies declared in the topology reach Terraform's field resources."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from shared.renewals.repository import PUBLISHES
from tests.infra.hcl import INFRA
from tests.infra.test_topology_eval import TERRAFORM, evaluate


def _declared() -> list[dict[str, str]]:
    raw = yaml.safe_load((INFRA / "topology.yaml").read_text())
    ttl: list[dict[str, str]] = (raw.get("firestore") or {}).get("ttl") or []
    return ttl


def test_renewal_publish_records_expire_through_a_ttl_policy() -> None:
    """The planner's publish records carry ``expire_at`` (30 days); without a policy they would pile up."""
    ttl = _declared()
    assert {"collection": PUBLISHES, "field": "expire_at"} in ttl
    for entry in ttl:
        assert set(entry) == {"collection", "field"}, entry


@pytest.mark.skipif(TERRAFORM is None, reason="terraform is not installed")
def test_terraform_builds_one_ttl_field_per_declared_policy(tmp_path: Path) -> None:
    got = evaluate(tmp_path, (INFRA / "topology.yaml").read_text())
    assert {"collection": "renewal_publishes", "field": "expire_at"} in got["ttl"]
    assert {"collection": "idempotency", "field": "expire_at"} in got["ttl"]
    assert len(got["ttl"]) == 1 + len(_declared())
