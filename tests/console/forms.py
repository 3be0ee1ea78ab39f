"""Reading the console's confirmation forms the way a browser would submit them (no JavaScript)."""

from __future__ import annotations

import re
from typing import Any

from tests.fixtures.console_world import USER

HEADERS = {"X-Goog-Authenticated-User-Email": f"accounts.google.com:{USER}"}
_INPUT = re.compile(
    r'<input type="hidden" name="([a-z_]+)" value="([^"]*)">'
    r'|<input id="f-[a-z_]+" name="([a-z_]+)" value="([^"]*)" readonly>'
)


def confirm_form(client: Any, kind: str, headers: dict[str, str] | None = None, /, **query: str) -> dict[str, str]:
    """The fields of the confirmation page of ``kind`` (hidden and read-only), as the browser posts them."""
    r = client.get(f"/confirm/{kind}", query_string=query, headers=HEADERS if headers is None else headers)
    assert r.status_code == 200, r.data[:500]
    html = r.data.decode()
    fields = {}
    for m in _INPUT.finditer(html):
        name, value = (m.group(1), m.group(2)) if m.group(1) else (m.group(3), m.group(4))
        fields[name] = value
    assert {"csrf_token", "idempotency_key"} <= set(fields)
    return fields


FORM = "application/x-www-form-urlencoded"


def post(client: Any, kind: str, fields: dict[str, str], headers: dict[str, str] | None = None) -> Any:
    return client.post(f"/actions/{kind}", data=fields, headers=HEADERS if headers is None else headers)


def audit_entries(db: Any) -> list[dict[str, Any]]:
    return [s.to_dict() or {} for s in db.collection("console_audit").stream()]
