"""Billing records behind the private billing API: customers, the catalog, coupons and promotion codes, and the
customers' credit balances, on Firestore.

The rules (price models, discount application, the credit application rule) are pure code in ``shared.domain``;
this package stores them, enforces what needs a store (references, immutability of prices, exact redemption
counts, create-once ledger entries) and serves them over HTTP (:mod:`shared.billing.api`), with idempotent creates
(:mod:`shared.billing.idempotency`), cursor pagination (:mod:`shared.billing.pagination`) and an OpenAPI 3.1
document generated from the request and response models (:mod:`shared.billing.openapi`).
"""
