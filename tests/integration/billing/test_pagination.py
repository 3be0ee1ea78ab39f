"""Cursor pagination on the emulator: every item exactly once while items are inserted, opaque cursors."""

from __future__ import annotations

import datetime as dt
import itertools

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from shared.billing.api import BillingService
from shared.billing.deps import BillingDeps
from tests.integration.billing.conftest import Client

RUNS = itertools.count()


def _walk(api: Client, path: str, limit: int, between: object = None) -> list[str]:
    seen, cursor = [], None
    for _ in range(1000):
        sep = "&" if "?" in path else "?"
        page = api.ok("GET", f"{path}{sep}limit={limit}" + (f"&starting_after={cursor}" if cursor else ""))
        assert len(page["data"]) <= limit
        seen += [p["id"] for p in page["data"]]
        if callable(between):
            between()
        if not page["has_more"]:
            assert page["next_cursor"] is None
            return seen
        cursor = page["next_cursor"]
    raise AssertionError("pagination did not end")


@settings(max_examples=6, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(n=st.integers(0, 23), limit=st.integers(1, 7), same_instant=st.booleans())
def test_every_item_exactly_once_under_inserts(api: Client, n: int, limit: int, same_instant: bool) -> None:
    """Items existing when the walk starts are seen once each; those inserted during it at most once."""
    tick = itertools.count()
    t0 = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
    # same_instant: every product gets the same created_at, so only the id orders them (ties).
    clock = (lambda: t0) if same_instant else (lambda: t0 + dt.timedelta(seconds=next(tick)))
    client = Client(BillingService(BillingDeps(clock=clock)))
    run = next(RUNS)  # hypothesis examples share the test's project
    before = [client.ok("POST", "/products", {"id": f"p{run}-{i}", "name": f"P{i}"})["id"] for i in range(n)]
    inserted: list[str] = []

    def insert() -> None:
        inserted.append(client.ok("POST", "/products", {"id": f"q{run}-{len(inserted)}", "name": "new"})["id"])

    seen = _walk(client, "/products", limit, insert)
    assert len(seen) == len(set(seen)), "an item was listed twice"
    mine = [s for s in seen if s.startswith((f"p{run}-", f"q{run}-"))]
    assert set(before) <= set(mine)
    assert set(mine) <= set(before) | set(inserted)


def test_filters_and_cursor_scopes(api: Client) -> None:
    for p in ("a", "b"):
        api.ok("POST", "/products", {"id": p, "name": p})
        for cur in ("EUR", "USD", "JPY"):
            api.ok(
                "POST", "/prices", {"product": p, "currency": cur, "pricing": {"model": "per_unit", "unit_amount": 1}}
            )
    assert len(_walk(api, "/prices?product=a", 2)) == 3
    assert len(_walk(api, "/prices", 4)) == 6
    page = api.ok("GET", "/prices?product=a&limit=1")
    other = api("GET", f"/prices?product=b&limit=1&starting_after={page['next_cursor']}")
    assert (other.status, other.body["error"]) == (400, "invalid_cursor")  # a cursor belongs to its list
    for bad in ("x", "eyJ9", "%00", "a" * 600):
        a = api("GET", f"/prices?starting_after={bad}")
        assert (a.status, a.body["error"]) == (400, "invalid_cursor"), bad
    for limit in ("0", "101", "-1", "x", "1e2"):
        a = api("GET", f"/prices?limit={limit}")
        assert (a.status, a.body["error"]) == (400, "invalid_limit"), limit
    a = api("GET", "/prices?product=__x__")
    assert (a.status, a.body["error"]) == (400, "invalid_filter")
