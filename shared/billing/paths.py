"""Which request paths the billing API serves: its own light module, so the subscriptions function can route a
request without importing the billing stores and models (they load on the first billing request; cold start)."""

from __future__ import annotations

PREFIXES = ("customers", "products", "prices", "coupons", "promotion_codes", "invoices", "openapi.json")


def is_billing_path(path: str) -> bool:
    return path.strip("/").split("/", 1)[0] in PREFIXES
