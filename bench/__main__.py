"""Run every benchmark module in bench/ that defines ``main()`` (``make bench``), or the ones named."""

from __future__ import annotations

import importlib
import inspect
import pkgutil
import sys

import bench


def main(argv: list[str]) -> int:
    names = argv or sorted(m.name for m in pkgutil.iter_modules(bench.__path__) if not m.name.startswith("_"))
    while names:
        name, names = names[0], names[1:]
        mod = importlib.import_module(f"bench.{name}")
        if hasattr(mod, "main"):
            print(f"### bench.{name}", flush=True)
            if argv and inspect.signature(mod.main).parameters:  # it takes names: the rest of the words are its own
                mod.main(names)  # (python -m bench cold_start invoices reconciliation)
                names = []
            else:
                mod.main()
            print(flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
