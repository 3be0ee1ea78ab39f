"""Capture the JSON lines the code writes, rendered at emit time (labels are bound per context)."""

from __future__ import annotations

import contextlib
import json
import logging
from collections.abc import Iterator
from typing import Any

from shared.log import CloudLoggingFormatter


class _ListHandler(logging.Handler):
    def __init__(self, out: list[dict[str, Any]]) -> None:
        super().__init__(logging.DEBUG)
        self.setFormatter(CloudLoggingFormatter())
        self.out = out

    def emit(self, record: logging.LogRecord) -> None:
        self.out.append(json.loads(self.format(record)))


@contextlib.contextmanager
def captured_lines() -> Iterator[list[dict[str, Any]]]:
    """Every line logged inside the block, exactly as Cloud Logging would receive it on stdout."""
    lines: list[dict[str, Any]] = []
    handler = _ListHandler(lines)
    root = logging.getLogger()
    level = root.level
    root.addHandler(handler)
    root.setLevel(logging.INFO)
    try:
        yield lines
    finally:
        root.removeHandler(handler)
        root.setLevel(level)
