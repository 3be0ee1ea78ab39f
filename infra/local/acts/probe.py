"""Act 0: the smoke probe crosses HTTP -> Pub/Sub push -> Firestore, and a duplicate is a no-op."""

from __future__ import annotations

import json
import time
import urllib.request

from infra.local.acts import DemoContext

ORDER = 0
TITLE = "Smoke probe (walking skeleton)"


def _post(url: str, body: dict[str, str]) -> dict[str, str]:
    req = urllib.request.Request(url, json.dumps(body).encode(), {"Content-Type": "application/json"})  # noqa: S310
    with urllib.request.urlopen(req, timeout=10) as r:  # noqa: S310 (loopback)
        return dict(json.loads(r.read()))


def play(ctx: DemoContext) -> None:
    from shared import clients

    url = ctx.stack.function_urls["probe"]
    probe_id = f"demo-{int(time.time())}"
    for attempt in (1, 2):
        out = _post(url, {"probe_id": probe_id, "note": "hello from make demo"})
        ctx.say(f"  POST probe #{attempt}: published message {out['message_id']}")
    db = clients.firestore()
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline and not db.collection("probes").document(probe_id).get().exists:
        time.sleep(0.1)
    time.sleep(1.0)  # let the duplicate arrive too
    doc = db.collection("probes").document(probe_id).get()
    stats = db.collection("probe_stats").document(probe_id).get()
    handled = (stats.to_dict() or {}).get("handled", 0) if stats.exists else 0
    ctx.say(
        f"  probes/{probe_id}: {'recorded' if doc.exists else 'MISSING'}; handled {handled} time(s) for 2 deliveries"
    )
