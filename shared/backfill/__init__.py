"""Missed-webhook backfill: list the PSPs' recent events; feed those our archive lacks through the webhooks."""
