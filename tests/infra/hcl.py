"""Read the Terraform in infra/ with checkov's HCL2 parser (bc-python-hcl2) for structural assertions.

The parser wraps every attribute value in a one-element list and every block in a list of dicts;
the helpers below unwrap that so tests read like the .tf files they check.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import hcl2.api

ROOT = Path(__file__).resolve().parents[2]
INFRA = ROOT / "infra"


def tf_files(folder: Path = INFRA) -> list[Path]:
    return sorted(p for p in folder.rglob("*.tf") if ".terraform" not in p.parts)


def parse(path: Path) -> dict[str, Any]:
    with path.open() as fh:
        return dict(hcl2.api.load(fh))


def parse_text(text: str) -> dict[str, Any]:
    return dict(hcl2.api.loads(text))


def attr(block: dict[str, Any], name: str) -> Any:
    """The value of attribute ``name`` (unwrapped), or KeyError."""
    value = block[name]
    return value[0] if isinstance(value, list) and len(value) == 1 else value


def blocks(block: dict[str, Any], name: str) -> list[dict[str, Any]]:
    """Nested blocks called ``name`` (e.g. push_config), possibly none."""
    found = block.get(name, [])
    return [b for b in found if isinstance(b, dict)]


@dataclass(frozen=True)
class Resource:
    type: str
    name: str
    body: dict[str, Any]
    file: Path


def resources(doc: dict[str, Any], path: Path) -> Iterator[Resource]:
    for entry in doc.get("resource", []):
        for rtype, named in entry.items():
            for rname, body in named.items():
                yield Resource(rtype, rname, body, path)


def all_resources(folder: Path = INFRA) -> list[Resource]:
    return [r for p in tf_files(folder) for r in resources(parse(p), p)]


def named(doc: dict[str, Any], kind: str) -> dict[str, dict[str, Any]]:
    """Top-level labelled blocks of one kind (module, variable, output) by label."""
    return {label: body for entry in doc.get(kind, []) for label, body in entry.items()}


def locals_of(doc: dict[str, Any]) -> dict[str, Any]:
    merged: dict[str, Any] = {}
    for entry in doc.get("locals", []):
        merged.update({k: attr(entry, k) for k in entry if not k.startswith("__")})
    return merged


def walk(value: Any) -> Iterator[tuple[str, Any]]:
    """Every (key, value) pair in a parsed document, depth first."""
    if isinstance(value, dict):
        for k, v in value.items():
            yield k, v
            yield from walk(v)
    elif isinstance(value, list):
        for v in value:
            yield from walk(v)
