"""Dispute pipeline on the local stack: a signed dispute webhook until its dispute document is visible.

Path measured (wall clock, one dispute at a time): HTTP POST of a signed Adyen
``NOTIFICATION_OF_CHARGEBACK`` to the webhooks function (verify, dedupe, archive, canonical event) ->
``payment-events`` -> push to the disputes function (the fold, one conditional write) -> the document as a
Firestore listener on ``disputes`` sees it (no polling: the listener's callback stamps the time). N distinct
disputes (``BENCH_DISPUTES_N``, default 300, at least 200); p50 / p99 / max printed with the load average.
The emulators named by ``*_EMULATOR_HOST`` are reused when they answer; otherwise the stack starts its own.
"""

from __future__ import annotations

import datetime as dt
import functools
import os
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

N = max(200, int(os.environ.get("BENCH_DISPUTES_N", "300")))
TIMEOUT_S = 60.0


def pct(xs: list[float], p: float) -> float:
    s = sorted(xs)
    return s[min(len(s) - 1, round(p / 100 * (len(s) - 1)))]


def main() -> None:
    from bench.renewals_e2e import _stack
    from infra.local.acts import disputes as act
    from infra.local.stack import running

    log_dir = Path(tempfile.mkdtemp(prefix="bench-disputes-"))
    stack = _stack(log_dir)
    with running(stack):
        for k, v in stack.emulator_env.items():
            os.environ[k] = v
        from shared.config import reset_settings

        reset_settings()
        from shared import clients

        seen: dict[str, float] = {}
        arrived = threading.Condition()

        def on_change(_docs: Any, changes: Any, _at: Any) -> None:
            t = time.perf_counter()
            with arrived:
                for c in changes:
                    seen.setdefault(c.document.id, t)
                arrived.notify_all()

        watch = clients.firestore().collection("disputes").on_snapshot(on_change)
        url = stack.function_urls["webhooks"]
        at = dt.datetime(2026, 7, 21, 9, 0, tzinfo=dt.UTC)
        tag = f"b{int(time.time())}"
        lat: list[float] = []
        try:
            for i in range(N + 5):  # the first 5 warm the functions up and are not counted
                dispute, key = f"DSP{tag}{i:05d}", f"adyen~default~DSP{tag}{i:05d}"
                body = act.adyen_notification(
                    "NOTIFICATION_OF_CHARGEBACK",
                    dispute,
                    f"PAY{tag}{i:05d}",
                    invoice_id=f"inv_{tag}_{i}",
                    due=at + dt.timedelta(days=10),
                    at=at,
                )
                t0 = time.perf_counter()
                status = act.deliver(url, body)
                if status != 200:
                    raise RuntimeError(f"webhook answered HTTP {status}")
                with arrived:
                    if not arrived.wait_for(functools.partial(seen.__contains__, key), timeout=TIMEOUT_S):
                        raise TimeoutError(f"dispute {key} not visible within {TIMEOUT_S}s")
                if i >= 5:
                    lat.append((seen[key] - t0) * 1000)
        finally:
            watch.unsubscribe()  # type: ignore[no-untyped-call]
    load = os.getloadavg()
    print(f"  webhook -> dispute document visible (local stack, sequential), N={len(lat)}")
    print(f"  p50 {pct(lat, 50):.1f} ms   p99 {pct(lat, 99):.1f} ms   max {max(lat):.1f} ms")
    print(f"  load average {load[0]:.1f} / {load[1]:.1f} / {load[2]:.1f} on {os.cpu_count()} cores (shared machine)")


if __name__ == "__main__":
    main()
