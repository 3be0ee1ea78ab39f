"""Structured JSON logs in Cloud Logging's shape.

Cloud Run / Cloud Functions gen2 parse one JSON object per stdout line: ``severity`` and ``message``
become the entry's severity and text, ``logging.googleapis.com/trace`` links the line to the request's
trace and ``logging.googleapis.com/labels`` become indexed labels. Labels bound with :func:`bind` (psp,
event_id, subscription_id, invoice_id, ...) ride on every line logged inside that context, so a whole
delivery can be found by one label query. Every line is scrubbed of card data (:mod:`shared.scrub`).
"""

from __future__ import annotations

import contextlib
import contextvars
import datetime as dt
import json
import logging
import re
import sys
from collections.abc import Iterator, Mapping
from types import MappingProxyType
from typing import Any

from shared.config import get_settings
from shared.scrub import scrub

_labels: contextvars.ContextVar[Mapping[str, str]] = contextvars.ContextVar("log_labels", default=MappingProxyType({}))
_trace: contextvars.ContextVar[tuple[str, str | None] | None] = contextvars.ContextVar("log_trace", default=None)

_TRACEPARENT = re.compile(r"^[0-9a-f]{2}-([0-9a-f]{32})-([0-9a-f]{16})-[0-9a-f]{2}$")
_CLOUD_TRACE = re.compile(r"^([0-9a-fA-F]{32})(?:/(\d+))?")

_STD_ATTRS = frozenset(vars(logging.makeLogRecord({})).keys()) | {"message", "asctime"}


def parse_trace(headers: Mapping[str, str]) -> tuple[str, str | None] | None:
    """Trace and span ids from a W3C ``traceparent`` or the legacy ``X-Cloud-Trace-Context``."""
    tp = headers.get("traceparent") or headers.get("Traceparent")
    if tp and (m := _TRACEPARENT.match(tp.strip().lower())):
        return m.group(1), m.group(2)
    ctc = headers.get("X-Cloud-Trace-Context") or headers.get("x-cloud-trace-context")
    if ctc and (m := _CLOUD_TRACE.match(ctc.strip())):
        span = m.group(2)
        return m.group(1).lower(), (f"{int(span):016x}" if span else None)
    return None


def current_trace() -> tuple[str, str | None] | None:
    return _trace.get()


def traceparent() -> str | None:
    """The current trace as a W3C ``traceparent`` value, to propagate through Pub/Sub attributes."""
    t = _trace.get()
    if t is None:
        return None
    return f"00-{t[0]}-{t[1] or '0' * 15 + '1'}-01"


@contextlib.contextmanager
def bind(trace: tuple[str, str | None] | None = None, **labels: object) -> Iterator[None]:
    """Attach labels (and optionally a trace) to every log line emitted inside the block."""
    merged = {**_labels.get(), **{k: str(v) for k, v in labels.items() if v is not None}}
    tok_l = _labels.set(merged)
    tok_t = _trace.set(trace) if trace is not None else None
    try:
        yield
    finally:
        _labels.reset(tok_l)
        if tok_t is not None:
            _trace.reset(tok_t)


def label(**labels: object) -> None:
    """Add labels to the rest of the innermost :func:`bind` block (no-op outside one).

    Why: some labels are known only halfway through a request (the webhook's account once its route and
    configuration are checked), yet belong on the request's one answer line, logged by the caller.
    """
    current = _labels.get()
    if isinstance(current, dict):  # a bind block's own copy; the module default is read-only
        current.update({k: str(v) for k, v in labels.items() if v is not None})


class CloudLoggingFormatter(logging.Formatter):
    """Render a record as one Cloud Logging JSON line; extras become top-level jsonPayload fields."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "severity": _SEVERITY.get(record.levelno, "DEFAULT"),
            "message": record.getMessage(),
            "time": dt.datetime.fromtimestamp(record.created, tz=dt.UTC).isoformat(),
            "logger": record.name,
        }
        labels = _labels.get()
        if labels:
            entry["logging.googleapis.com/labels"] = labels
        trace = _trace.get()
        if trace is not None:
            project = _project()
            entry["logging.googleapis.com/trace"] = f"projects/{project}/traces/{trace[0]}"
            if trace[1]:
                entry["logging.googleapis.com/spanId"] = trace[1]
        for key, value in record.__dict__.items():
            if key not in _STD_ATTRS and not key.startswith("_"):
                entry[key] = value
        if record.exc_info:
            entry["stack_trace"] = self.formatException(record.exc_info)
        # Last line of defence: a rejection detail or an exception may quote a payload field.
        return scrub(json.dumps(entry, default=str))


_SEVERITY = {
    logging.DEBUG: "DEBUG",
    logging.INFO: "INFO",
    logging.WARNING: "WARNING",
    logging.ERROR: "ERROR",
    logging.CRITICAL: "CRITICAL",
}


def _project() -> str:
    try:
        return get_settings().project_id
    except Exception:  # logging must never fail because configuration is incomplete
        return "unknown"


def _configure_root() -> None:
    root = logging.getLogger()
    if any(isinstance(h.formatter, CloudLoggingFormatter) for h in root.handlers):
        return
    handler = logging.StreamHandler(sys.stdout)
    handler.setFormatter(CloudLoggingFormatter())
    root.handlers[:] = [handler]
    try:
        root.setLevel(get_settings().log_level)
    except Exception:
        root.setLevel(logging.INFO)


def get_logger(name: str) -> logging.Logger:
    """A logger that writes Cloud Logging JSON to stdout; configures the root handler once."""
    _configure_root()
    return logging.getLogger(name)
