"""Cold import time of each function's entry module vs the bare import of its client libraries.

Baseline: a fresh interpreter importing ``functions_framework``, ``flask``, ``google.cloud.firestore``,
``google.cloud.pubsub_v1`` and ``pydantic`` and nothing of ours. Ratio = entry / baseline: above 1.0
means our own modules add start-up cost on top of the libraries; below 1.0 means lazy imports defer
client libraries to first use. "entry + clients" also imports the client libraries afterwards (what
the first request pays), so its ratio shows our own modules' overhead on top of the libraries.
Our modules are byte-compiled first (into a temporary cache), as a bundle is.
Each figure is the median of N fresh interpreters, in CPU time (user + system of the child, which a
loaded machine disturbs far less than wall time; the bench prints the load average it ran under).
"""

from __future__ import annotations

import atexit
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
RUNS = int(os.environ.get("BENCH_IMPORT_RUNS", "7"))
BASELINE = "import functions_framework, flask, pydantic, google.cloud.firestore, google.cloud.pubsub_v1"


# Our modules start from bytecode, as in a deployed bundle (bench/cold_start.py byte-compiles it too): with
# PYTHONDONTWRITEBYTECODE set (as on this machine) they would be compiled from source in every interpreter,
# so their compile time, not their import, would be measured. The cache lives outside the repository.
_PYCACHE = tempfile.mkdtemp(prefix="import-time-pycache-")
atexit.register(shutil.rmtree, _PYCACHE, ignore_errors=True)


def _env() -> dict[str, str]:
    return {
        **os.environ,
        "PYTHONPATH": str(ROOT),
        "GOOGLE_CLOUD_PROJECT": "demo-bench",
        "PYTHONWARNINGS": "ignore",
        "PYTHONPYCACHEPREFIX": _PYCACHE,
    }


def _compile() -> None:
    code = "import compileall; [compileall.compile_dir(d, quiet=1) for d in ('shared', 'functions')]"
    subprocess.run([sys.executable, "-c", code], check=True, env=_env(), cwd=ROOT)


def _time(code: str) -> float:
    samples = []
    env = _env()
    for _ in range(RUNS):
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        subprocess.run([sys.executable, "-c", code], check=True, env=env, cwd=ROOT)
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        samples.append(after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime)
    return statistics.median(samples)


def _entry(fn: str) -> str:
    return (
        "import importlib.util as u, sys; "
        f"s = u.spec_from_file_location('main', 'functions/{fn}/main.py'); m = u.module_from_spec(s); "
        "s.loader.exec_module(m)"
    )


def main() -> None:
    _compile()
    empty = _time("pass")
    base = _time(BASELINE) - empty
    load = " ".join(Path("/proc/loadavg").read_text().split()[:3])
    print(f"median of {RUNS} interpreters, CPU time; load average {load}")
    print(f"interpreter start {empty * 1000:.0f} ms (subtracted); client libraries baseline {base * 1000:.0f} ms")
    for fn in sorted(p.name for p in (ROOT / "functions").iterdir() if (p / "main.py").is_file()):
        t = _time(_entry(fn)) - empty
        full = _time(_entry(fn) + "; " + BASELINE) - empty
        print(
            f"{fn:<14} entry import {t * 1000:6.0f} ms (ratio {t / base:.2f})   "
            f"entry + clients {full * 1000:6.0f} ms (ratio {full / base:.2f})"
        )
    webhooks()


WEBHOOKS_BASELINE = BASELINE + ", cryptography.x509"
# What the webhooks function imports lazily on its first request: the PSP adapters and the clients.
WEBHOOKS_FIRST_REQUEST = (
    "import shared.psp.registry, shared.webhooks.service, shared.clients; shared.psp.registry.ADAPTERS['stripe']; "
    + BASELINE
)


def webhooks() -> None:
    """The webhooks entry alone, and with everything its first request imports, vs its client libraries.

    Baseline here adds ``cryptography.x509`` (PayPal certificates) to the common client libraries, since
    the webhooks bundle needs it too.
    """
    empty = _time("pass")
    base = _time(WEBHOOKS_BASELINE) - empty
    entry = _time(_entry("webhooks")) - empty
    warm = _time(_entry("webhooks") + "; " + WEBHOOKS_FIRST_REQUEST) - empty
    print(f"webhooks: client libraries incl. cryptography {base * 1000:.0f} ms")
    print(f"  entry module import           {entry * 1000:6.0f} ms (ratio {entry / base:.2f})")
    print(f"  entry + first-request imports {warm * 1000:6.0f} ms (ratio {warm / base:.2f})")


if __name__ == "__main__":
    main()
