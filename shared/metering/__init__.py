"""Usage-based billing: ingestion (edge checks, one Pub/Sub message per batch), deduplicated sharded aggregation,
current usage and the closing of a period into invoice lines. Pure rules live in :mod:`shared.domain.meters`."""
