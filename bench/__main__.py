"""Run every benchmark module in bench/ that defines ``main()`` (``make bench``), or the ones named."""

from __future__ import annotations

import importlib
import pkgutil
import sys

import bench


def main(argv: list[str]) -> int:
    modules = sorted(m.name for m in pkgutil.iter_modules(bench.__path__) if not m.name.startswith("_"))
    # Words after a benchmark that name no benchmark are its arguments (python -m bench cold_start invoices).
    runs: list[tuple[str, list[str]]] = []
    for word in argv:
        if word in modules or not runs:
            runs.append((word, []))
        else:
            runs[-1][1].append(word)
    for name, args in runs or [(m, []) for m in modules]:
        mod = importlib.import_module(f"bench.{name}")
        if hasattr(mod, "main"):
            print(f"### bench.{name}", flush=True)
            mod.main(args) if args else mod.main()
            print(flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
