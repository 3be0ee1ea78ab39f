"""`python -m infra.bundle` builds a self-contained folder and zip per function that imports alone."""

from __future__ import annotations

import os
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from infra.bundle import build_one
from infra.local.topology import load
from tests.infra.hcl import ROOT


@pytest.fixture(scope="module")
def bundles(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("build")
    proc = subprocess.run(
        [sys.executable, "-m", "infra.bundle", "--out", str(out)], check=False, cwd=ROOT, capture_output=True, text=True
    )
    assert proc.returncode == 0, proc.stderr
    return out


def test_every_function_gets_main_shared_and_requirements(bundles: Path) -> None:
    topology = load()
    assert topology.functions
    requirements = (ROOT / "requirements.txt").read_text()
    for key in topology.functions:
        folder = bundles / key
        assert (folder / "main.py").read_text() == (ROOT / "functions" / key / "main.py").read_text()
        assert (folder / "shared" / "__init__.py").is_file()
        assert (folder / "shared" / "events" / "envelope.py").is_file()
        assert (folder / "requirements.txt").read_text() == requirements
        assert not list(folder.rglob("__pycache__"))
        with zipfile.ZipFile(bundles / f"{key}.zip") as zf:
            names = set(zf.namelist())
        on_disk = {p.relative_to(folder).as_posix() for p in folder.rglob("*") if p.is_file()}
        assert names == on_disk
        assert {"main.py", "requirements.txt", "shared/__init__.py"} <= names


def test_zips_are_reproducible(tmp_path: Path) -> None:
    key = sorted(load().functions)[0]
    build_one(key, tmp_path / "a")
    build_one(key, tmp_path / "b")
    assert (tmp_path / "a" / f"{key}.zip").read_bytes() == (tmp_path / "b" / f"{key}.zip").read_bytes()


def test_each_bundle_imports_alone_in_a_fresh_interpreter(bundles: Path) -> None:
    """cwd = the bundle, project root NOT on sys.path: `import shared` must resolve inside the bundle."""
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    env["GOOGLE_CLOUD_PROJECT"] = "demo-bundle"
    script = (
        "import sys, pathlib, importlib\n"
        "root = pathlib.Path(sys.argv[2])\n"
        "sys.path[:] = [p for p in sys.path if p not in ('', '.') and pathlib.Path(p).resolve() != root]\n"
        "sys.path.insert(0, '.')\n"
        "main = importlib.import_module('main')\n"
        "import shared\n"
        "assert pathlib.Path(shared.__file__).resolve().is_relative_to(pathlib.Path.cwd().resolve()), shared.__file__\n"
        "assert callable(getattr(main, sys.argv[1])), sys.argv[1]\n"
    )
    procs = {
        key: subprocess.Popen(
            [sys.executable, "-c", script, fn.entry_point, str(ROOT)],
            cwd=bundles / key,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for key, fn in load().functions.items()
    }
    for key, proc in procs.items():
        _, err = proc.communicate(timeout=120)
        assert proc.returncode == 0, f"{key}: importing main.py from its bundle failed:\n{err[-3000:]}"
