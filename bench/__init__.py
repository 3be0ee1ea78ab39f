"""Benchmarks that print figures and ratios against a named baseline (never asserted in tests)."""
