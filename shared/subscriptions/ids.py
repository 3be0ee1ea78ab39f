"""Which subscription ids the API can address: apart from the request models (``commands``), so routing a read
needs neither them nor the billing contracts they build on."""

from __future__ import annotations

from shared.edge import firestore_id_problem

# Path segments of the API: an id equal to one of them could never be addressed (GET /subscriptions/subscriptions).
RESERVED_IDS = frozenset({"subscriptions", "cancel", "change-plan", "items", "discounts", "preview", "migrate-price"})


def subscription_id_problem(value: str) -> str | None:
    """Why ``value`` cannot be a subscription id (Firestore rules and the API's routes), or None."""
    problem = firestore_id_problem(value)
    if problem:
        return f"id {problem}"
    if value.lower() in RESERVED_IDS:
        return f"id {value!r} collides with a route of the API"
    return None
