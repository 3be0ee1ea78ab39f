"""cloudbuild.yaml: the stages in order, each step named, images pinned, apply gated on main."""

from __future__ import annotations

import re
from typing import Any

import pytest
import yaml

from tests.infra.hcl import ROOT


@pytest.fixture(scope="module")
def pipeline() -> dict[str, Any]:
    data: dict[str, Any] = yaml.safe_load((ROOT / "cloudbuild.yaml").read_text())
    return data


def _image(pipeline: dict[str, Any], step: dict[str, Any]) -> str:
    name: str = step["name"]
    subs: dict[str, str] = pipeline.get("substitutions", {})
    return re.sub(r"\$\{(_[A-Z_]+)\}", lambda m: subs[m.group(1)], name)


def test_every_step_has_a_unique_id_and_a_pinned_image(pipeline: dict[str, Any]) -> None:
    ids = [s.get("id") for s in pipeline["steps"]]
    assert all(ids), "every step needs an id"
    assert len(ids) == len(set(ids))
    for step in pipeline["steps"]:
        image = _image(pipeline, step)
        pinned = "@sha256:" in image or re.search(r":\d+\.\d+\.\d+[\w.-]*$", image)
        assert pinned, f"{step['id']}: image {image} is not pinned to a version or digest"


def _after(pipeline: dict[str, Any], step_id: str) -> set[str]:
    """Every step that must finish before ``step_id`` (transitively, following waitFor)."""
    steps = {s["id"]: s for s in pipeline["steps"]}
    order = [s["id"] for s in pipeline["steps"]]
    seen: set[str] = set()
    todo = [step_id]
    while todo:
        current = todo.pop()
        wait = steps[current].get("waitFor")
        # Without waitFor, Cloud Build waits for every step listed before this one.
        deps = order[: order.index(current)] if wait is None else [w for w in wait if w != "-"]
        for d in deps:
            if d not in seen:
                seen.add(d)
                todo.append(d)
    return seen


def test_stages_run_in_order(pipeline: dict[str, Any]) -> None:
    ids = {s["id"] for s in pipeline["steps"]}
    assert {"lint", "test", "bundle", "tf-fmt", "tf-init", "tf-validate", "tf-plan", "tf-apply"} <= ids
    assert {"lint", "test"} <= _after(pipeline, "bundle")
    assert {"bundle", "tf-fmt", "tf-init", "tf-validate", "lint", "test"} <= _after(pipeline, "tf-plan")
    assert "tf-plan" in _after(pipeline, "tf-apply")


def test_apply_only_on_main(pipeline: dict[str, Any]) -> None:
    (apply,) = [s for s in pipeline["steps"] if s["id"] == "tf-apply"]
    script = "\n".join(apply["args"])
    assert '"${BRANCH_NAME}" = "main"' in script
    then, _, otherwise = script.partition("else")
    assert "apply" in then
    assert "terraform" not in otherwise
    for step in pipeline["steps"]:
        if step["id"] != "tf-apply":
            assert "apply" not in " ".join(map(str, step.get("args", []))), step["id"]
