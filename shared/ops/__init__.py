"""Operator commands, run as ``python -m shared.ops.<name>``."""
