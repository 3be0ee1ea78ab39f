"""Cold import time of each function's entry module vs the bare import of its client libraries.

Baseline: a fresh interpreter importing ``functions_framework``, ``flask``, ``google.cloud.firestore``,
``google.cloud.pubsub_v1`` and ``pydantic`` and nothing of ours. Ratio = entry / baseline: above 1.0
means our own modules add start-up cost on top of the libraries; below 1.0 means lazy imports defer
client libraries to first use. "entry + clients" also imports the client libraries afterwards (what
the first request pays), so its ratio shows our own modules' overhead on top of the libraries.
Each figure is the median of N fresh interpreters.
"""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
RUNS = int(os.environ.get("BENCH_IMPORT_RUNS", "7"))
BASELINE = "import functions_framework, flask, pydantic, google.cloud.firestore, google.cloud.pubsub_v1"


def _time(code: str) -> float:
    samples = []
    env = {**os.environ, "PYTHONPATH": str(ROOT), "GOOGLE_CLOUD_PROJECT": "demo-bench", "PYTHONWARNINGS": "ignore"}
    for _ in range(RUNS):
        t0 = time.perf_counter()
        subprocess.run([sys.executable, "-c", code], check=True, env=env, cwd=ROOT)
        samples.append(time.perf_counter() - t0)
    return statistics.median(samples)


def _entry(fn: str) -> str:
    return (
        "import importlib.util as u, sys; "
        f"s = u.spec_from_file_location('main', 'functions/{fn}/main.py'); m = u.module_from_spec(s); "
        "s.loader.exec_module(m)"
    )


def main() -> None:
    empty = _time("pass")
    base = _time(BASELINE) - empty
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
WEBHOOKS_FIRST_REQUEST = "import shared.psp.registry, shared.webhooks.service, shared.clients; " + BASELINE


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
