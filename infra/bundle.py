"""Build one deployable folder and zip per function: ``build/<key>/`` and ``build/<key>.zip``.

Cloud Functions uploads a single folder, where ``../shared`` does not exist. Each bundle therefore
holds the function's own files (``main.py`` first of all), a copy of ``shared/`` and the pinned
``requirements.txt``, so the same ``import shared...`` works in tests and in production.

The zips are reproducible (sorted entries, fixed timestamps and modes): Terraform names the uploaded
object after the zip's hash, so an unchanged function keeps its hash and is not redeployed.

    python -m infra.bundle                 # every function in infra/topology.yaml
    python -m infra.bundle webhooks probe  # only these
"""

from __future__ import annotations

import argparse
import shutil
import sys
import zipfile
from collections.abc import Iterable, Sequence
from pathlib import Path

from infra.local.topology import ROOT, load

DEFAULT_OUT = ROOT / "build"
_IGNORE = shutil.ignore_patterns("__pycache__", "*.pyc", "*.pyo", ".mypy_cache", ".pytest_cache")
_ZIP_EPOCH = (1980, 1, 1, 0, 0, 0)


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
    shutil.copytree(root / "shared", dest / "shared", ignore=_IGNORE)
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
    args = parser.parse_args(argv)
    for folder in build(args.functions, args.out):
        zipped = folder.with_suffix(".zip")
        print(f"{folder.name:<20} {len(_files(folder)):>4} files  {zipped.stat().st_size:>9} bytes  {zipped}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
