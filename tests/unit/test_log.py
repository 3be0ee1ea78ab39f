"""Structured logging: Cloud Logging field names, trace parsing, labels on every line."""

from __future__ import annotations

import json
import logging

import pytest

from shared.log import CloudLoggingFormatter, bind, label, parse_trace


@pytest.fixture(autouse=True)
def _project(env_project: str) -> None:
    return None


def _render(msg: str, level: int = logging.INFO, **extra: object) -> dict[str, object]:
    rec = logging.LogRecord("t", level, __file__, 1, msg, None, None)
    for k, v in extra.items():
        setattr(rec, k, v)
    return dict(json.loads(CloudLoggingFormatter().format(rec)))


def test_line_has_cloud_logging_shape() -> None:
    line = _render("hello", logging.WARNING, http_status=415)
    assert line["severity"] == "WARNING"
    assert line["message"] == "hello"
    assert line["http_status"] == 415


def test_labels_and_trace_are_bound_to_every_line_in_the_block() -> None:
    with bind(("0af7651916cd43dd8448eb211c80319c", "b7ad6b7169203331"), psp="stripe", event_id="evt_1"):
        with bind(invoice_id="inv_1"):
            inner = _render("inner")
        outer = _render("outer")
    after = _render("after")
    assert inner["logging.googleapis.com/labels"] == {"psp": "stripe", "event_id": "evt_1", "invoice_id": "inv_1"}
    assert outer["logging.googleapis.com/labels"] == {"psp": "stripe", "event_id": "evt_1"}
    assert inner["logging.googleapis.com/trace"] == "projects/demo-unit/traces/0af7651916cd43dd8448eb211c80319c"
    assert inner["logging.googleapis.com/spanId"] == "b7ad6b7169203331"
    assert "logging.googleapis.com/labels" not in after
    assert "logging.googleapis.com/trace" not in after


def test_a_label_learned_midway_joins_the_rest_of_the_innermost_block_only() -> None:
    label(account="ignored")  # outside any block: the module default is never changed
    with bind(psp="stripe"):
        before = _render("before")
        label(account="eu")
        answer = _render("answer")
    after = _render("after")
    assert before["logging.googleapis.com/labels"] == {"psp": "stripe"}
    assert answer["logging.googleapis.com/labels"] == {"psp": "stripe", "account": "eu"}
    assert "logging.googleapis.com/labels" not in after


@pytest.mark.parametrize(
    ("headers", "expected"),
    [
        (
            {"traceparent": "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"},
            ("0af7651916cd43dd8448eb211c80319c", "b7ad6b7169203331"),
        ),
        (
            {"X-Cloud-Trace-Context": "105445aa7843bc8bf206b12000100000/1;o=1"},
            ("105445aa7843bc8bf206b12000100000", "0000000000000001"),
        ),
        ({"X-Cloud-Trace-Context": "105445aa7843bc8bf206b12000100000"}, ("105445aa7843bc8bf206b12000100000", None)),
        ({"traceparent": "garbage"}, None),
        ({}, None),
    ],
)
def test_trace_headers(headers: dict[str, str], expected: tuple[str, str | None] | None) -> None:
    assert parse_trace(headers) == expected


def test_exceptions_carry_a_stack_trace() -> None:
    try:
        raise RuntimeError("boom")
    except RuntimeError:
        import sys

        rec = logging.LogRecord("t", logging.ERROR, __file__, 1, "failed", None, sys.exc_info())
    line = json.loads(CloudLoggingFormatter().format(rec))
    assert "RuntimeError: boom" in line["stack_trace"]
