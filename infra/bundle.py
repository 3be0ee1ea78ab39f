"""Build one deployable folder and zip per function: ``build/<key>/`` and ``build/<key>.zip``.

Cloud Functions uploads a single folder, where ``../shared`` does not exist. Each bundle therefore
holds the function's own files (``main.py`` first of all), the modules of ``shared/`` it imports at run
time and the pinned ``requirements.txt``, so the same ``import shared...`` works in tests and in
production. Runtime-only: the ``shared`` modules shipped are the import closure of ``main.py``, found
statically (every ``import``/``from ... import`` naming ``shared``, at module level and inside functions,
so lazy imports ship too), plus the packages' ``__init__.py`` on the way. Operator CLIs
(``shared/ops``) and the test signing helpers (``shared/psp/signing.py``) are imported by no function,
so they never ship.

The zips are reproducible (sorted entries, fixed timestamps and modes): Terraform names the uploaded
object after the zip's hash, so an unchanged function keeps its hash and is not redeployed.

    python -m infra.bundle                 # every function in infra/topology.yaml
    python -m infra.bundle webhooks probe  # only these
"""

from __future__ import annotations

import argparse
import ast
import shutil
import sys
import zipfile
from collections.abc import Iterable, Sequence
from pathlib import Path

from infra.local.topology import ROOT, load

DEFAULT_OUT = ROOT / "build"
_IGNORE = shutil.ignore_patterns("__pycache__", "*.pyc", "*.pyo", ".mypy_cache", ".pytest_cache")
_ZIP_EPOCH = (1980, 1, 1, 0, 0, 0)


PACKAGE = "shared"


def _module_file(name: str, root: Path) -> Path | None:
    """``shared.a.b`` -> ``shared/a/b.py`` or ``shared/a/b/__init__.py`` under ``root`` (None: not ours)."""
    base = root.joinpath(*name.split("."))
    for candidate in (base.with_suffix(".py"), base / "__init__.py"):
        if candidate.is_file():
            return candidate
    return None


def _imported_names(path: Path, module: str) -> set[str]:
    """Every module name an import statement anywhere in ``path`` may load (``from m import x``: m and m.x)."""
    is_package = path.name == "__init__.py"
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            names.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:  # relative: resolve against this module's package
                parts = module.split(".")[: len(module.split(".")) - node.level + (1 if is_package else 0)]
                base = ".".join([*parts, node.module] if node.module else parts)
            else:
                base = node.module or ""
            names.add(base)
            names.update(f"{base}.{a.name}" for a in node.names if a.name != "*")
    return names


def runtime_modules(entry: Path, root: Path = ROOT) -> dict[str, Path]:
    """The ``shared`` modules that ``entry`` can import at run time: module name -> source file.

    Static closure over the import statements of ``entry`` and of every module reached (function-level
    imports included), with each module's parent packages, whose ``__init__`` runs on import.
    """
    found: dict[str, Path] = {}
    todo = [(n, entry) for n in _imported_names(entry, "__main__")]
    while todo:
        name, _ = todo.pop()
        if name.split(".")[0] != PACKAGE:
            continue
        parts = name.split(".")
        for i in range(1, len(parts) + 1):
            mod = ".".join(parts[:i])
            if mod in found:
                continue
            path = _module_file(mod, root)
            if path is None:
                continue  # an attribute (from shared.x import func), not a module
            found[mod] = path
            todo += [(n, path) for n in _imported_names(path, mod)]
    return dict(sorted(found.items()))


def _files(folder: Path) -> list[Path]:
    return sorted(p for p in folder.rglob("*") if p.is_file())


def _write_zip(folder: Path, target: Path) -> None:
    tmp = target.with_suffix(".zip.tmp")
    with zipfile.ZipFile(tmp, "w", compression=zipfile.ZIP_DEFLATED, compresslevel=9) as zf:
        for path in _files(folder):
            info = zipfile.ZipInfo(path.relative_to(folder).as_posix(), date_time=_ZIP_EPOCH)
            info.external_attr = 0o644 << 16
            info.compress_type = zipfile.ZIP_DEFLATED
            zf.writestr(info, path.read_bytes())
    tmp.replace(target)


def build_one(key: str, out: Path = DEFAULT_OUT, root: Path = ROOT) -> Path:
    """Build ``out/<key>/`` and ``out/<key>.zip`` from ``functions/<key>/``; returns the folder."""
    src = root / "functions" / key
    if not (src / "main.py").is_file():
        raise FileNotFoundError(f"functions/{key}/main.py does not exist")
    dest = out / key
    if dest.exists():
        shutil.rmtree(dest)
    shutil.copytree(src, dest, ignore=_IGNORE)
    if (dest / "shared").exists():
        raise RuntimeError(f"functions/{key} must not contain its own shared/ (it would shadow the package)")
    for path in runtime_modules(src / "main.py", root).values():
        target = dest / path.relative_to(root)
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(path, target)
    shutil.copy2(root / "requirements.txt", dest / "requirements.txt")
    _write_zip(dest, out / f"{key}.zip")
    return dest


def build(keys: Iterable[str] | None = None, out: Path = DEFAULT_OUT) -> list[Path]:
    """Bundle the given functions (default: every function in the topology)."""
    topology = load()
    wanted = list(keys) if keys else sorted(topology.functions)
    unknown = [k for k in wanted if k not in topology.functions]
    if unknown:
        raise SystemExit(f"not in infra/topology.yaml: {', '.join(unknown)}")
    out.mkdir(parents=True, exist_ok=True)
    return [build_one(k, out) for k in wanted]


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m infra.bundle", description=__doc__.splitlines()[0])
    parser.add_argument("functions", nargs="*", help="topology keys (default: all)")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help="output folder (default: build/)")
    parser.add_argument("--list", action="store_true", help="also print the shared modules each bundle ships")
    args = parser.parse_args(argv)
    for folder in build(args.functions, args.out):
        zipped = folder.with_suffix(".zip")
        print(f"{folder.name:<20} {len(_files(folder)):>4} files  {zipped.stat().st_size:>9} bytes  {zipped}")
        if args.list:
            for rel in sorted(p.relative_to(folder).as_posix() for p in _files(folder / PACKAGE)):
                print(f"    {rel}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
