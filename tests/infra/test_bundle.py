"""`python -m infra.bundle` builds a self-contained, runtime-only folder and zip per function that serves alone."""

from __future__ import annotations

import modulefinder
import os
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from bench.cold_start import cold_start
from infra.bundle import build_one, runtime_modules
from infra.local.topology import load
from tests.conftest import Gcp
from tests.infra.hcl import ROOT

# Never shipped: operator CLIs and the signing helpers of tests and the demo.
NOT_RUNTIME = ("shared/ops/", "shared/psp/signing.py")


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
        assert (folder / "shared" / "config.py").is_file()
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


def _shipped(folder: Path) -> set[str]:
    return {p.relative_to(folder).as_posix() for p in (folder / "shared").rglob("*.py")}


def test_bundles_ship_no_operator_cli_and_no_signing_helpers(bundles: Path) -> None:
    everything = {
        p.relative_to(ROOT).as_posix() for p in (ROOT / "shared").rglob("*.py") if "__pycache__" not in p.parts
    }
    assert {"shared/ops/deadletters.py", "shared/psp/signing.py"} <= everything
    for key in load().functions:
        shipped = _shipped(bundles / key)
        assert shipped < everything, key
        assert not [f for f in shipped if f.startswith(NOT_RUNTIME)], key
    assert "shared/invoicing/pdf.py" not in _shipped(bundles / "webhooks")
    assert "shared/psp/stripe.py" not in _shipped(bundles / "invoices")


def test_shipped_modules_are_the_import_closure_modulefinder_sees() -> None:
    """An independent second opinion: modulefinder scans the bytecode (function bodies too) of main.py."""
    for key in load().functions:
        finder = modulefinder.ModuleFinder(path=[str(ROOT)])  # only our code: libraries are not followed
        finder.run_script(str(ROOT / "functions" / key / "main.py"))
        seen = {name for name in finder.modules if name == "shared" or name.startswith("shared.")}
        assert seen == set(runtime_modules(ROOT / "functions" / key / "main.py")), key


def test_runtime_closure_follows_lazy_and_relative_imports(tmp_path: Path) -> None:
    pkg = tmp_path / "shared"
    (pkg / "sub").mkdir(parents=True)
    (pkg / "__init__.py").write_text("")
    (pkg / "sub" / "__init__.py").write_text("from . import rel\n")
    (pkg / "sub" / "rel.py").write_text("X = 1\n")
    (pkg / "lazy.py").write_text("def f():\n    from shared.sub import thing\n    return thing\n")
    (pkg / "unused.py").write_text("")
    (pkg / "typed.py").write_text("from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    import shared.unused\n")
    entry = tmp_path / "main.py"
    entry.write_text("def handler():\n    import shared.lazy\n")
    assert set(runtime_modules(entry, tmp_path)) == {"shared", "shared.lazy", "shared.sub", "shared.sub.rel"}
    entry.write_text("from shared import typed\n")
    assert set(runtime_modules(entry, tmp_path)) == {"shared", "shared.typed", "shared.unused"}


def test_every_shipped_module_imports_from_its_bundle(bundles: Path) -> None:
    """Import each module of each bundle in a fresh interpreter with only the bundle on sys.path."""
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    env["GOOGLE_CLOUD_PROJECT"] = "demo-bundle"
    script = (
        "import sys, pathlib, importlib\n"
        "root = pathlib.Path(sys.argv[1])\n"
        "sys.path[:] = [p for p in sys.path if p not in ('', '.') and pathlib.Path(p).resolve() != root]\n"
        "sys.path.insert(0, '.')\n"
        "here = pathlib.Path.cwd().resolve()\n"
        "for f in sorted(pathlib.Path('shared').rglob('*.py')):\n"
        "    name = '.'.join(f.with_suffix('').parts).removesuffix('.__init__')\n"
        "    importlib.import_module(name)\n"
        "bad = [m for m, mod in sys.modules.items() if m.split('.')[0] == 'shared'\n"
        "       and not pathlib.Path(mod.__file__).resolve().is_relative_to(here)]\n"
        "assert not bad, bad\n"
    )
    procs = {
        key: subprocess.Popen(
            [sys.executable, "-c", script, str(ROOT)],
            cwd=bundles / key,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for key in load().functions
    }
    for key, proc in procs.items():
        _, err = proc.communicate(timeout=180)
        assert proc.returncode == 0, f"{key}: a shipped module does not import from the bundle:\n{err[-3000:]}"


@pytest.mark.parametrize("key", sorted(load().functions))
def test_each_bundle_serves_its_first_request(bundles: Path, gcp: Gcp, key: str) -> None:
    """functions-framework on the bundle folder alone (no repository on sys.path) answers a real request.

    The same request as bench.cold_start: a signed Stripe webhook, a probe publish, a subscription lookup,
    and a Pub/Sub push each consumer handles, all against the emulators.
    """
    fn = load().functions[key]
    status = cold_start(bundles / key, key, fn.entry_point, fn.signature_type, gcp.project).status
    assert 200 <= status < 300 or (key == "subscriptions" and status == 404)
