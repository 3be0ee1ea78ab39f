"""Last act: the operator console over everything the demo left, through real HTTP like a browser."""

from __future__ import annotations

import re
import urllib.parse
import urllib.request

from infra.local.acts import DemoContext

ORDER = 99
TITLE = "Operator console: search, a customer, invoices, operations, charts over the demo's data"
IDENTITY = "demo-operator@example.com"
# The console takes the signed-in user from Identity-Aware Proxy's header; on the emulators a dev
# identity stands in when the header is absent (a browser pointed at `make up`).
ENV = {"CONSOLE_DEV_IDENTITY": IDENTITY}


def _get(url: str) -> tuple[int, str]:
    req = urllib.request.Request(url, headers={"Accept": "text/html"})  # noqa: S310 (loopback)
    with urllib.request.urlopen(req, timeout=60) as r:  # noqa: S310 (loopback)
        return int(r.status), r.read().decode()


def play(ctx: DemoContext) -> None:
    base = ctx.stack.function_urls["console"]
    status, invoices = _get(f"{base}/invoices")
    rows = invoices.count('href="/invoices/in_')
    ctx.say(f"  GET /invoices: {status}, {rows} invoice(s) listed, newest first")
    customer = next(iter(re.findall(r'href="/customers/([^"#?]+)"', invoices)), None)
    if customer:
        status, page = _get(f"{base}/?q={urllib.parse.quote(customer)}")
        ctx.say(f"  GET /?q={customer}: {status}, {page.count('<tr><td>')} hit(s)")
        status, page = _get(f"{base}/customers/{customer}")
        pdfs, timeline = page.count("Open PDF"), page.count("archived webhook")
        ctx.say(f"  GET /customers/{customer}: {status}; {pdfs} PDF link(s), {timeline} archived webhook(s) linked")
    status, page = _get(f"{base}/operations")
    subs = page.count('<h3 id="dlq-')
    ctx.say(f"  GET /operations: {status}; dead-letter subscriptions shown: {subs}")
    status, page = _get(f"{base}/charts")
    svgs = page.count('role="img"')
    ctx.say(f"  GET /charts: {status}; {svgs} server-rendered SVG charts")
    ctx.say(f"  console: {base}/  (signed in as {IDENTITY}; `DEMO_KEEP=1 make demo` keeps it up to browse)")
