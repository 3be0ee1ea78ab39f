"""The filter evaluator the monitoring tests rely on: its subset is judged right, and what it does not
support is refused (a metric cannot slip syntax past it)."""

from __future__ import annotations

import pytest

from tests.infra.logfilter import Unsupported, compile_filter, entry_of, extract, matches

LINE = {
    "severity": "WARNING",
    "message": "request rejected",
    "logging.googleapis.com/labels": {"psp": "stripe", "fn": "webhooks"},
    "http_status": 401,
    "error_code": "invalid_signature",
    "nested": {"a": "Hello"},
}


def test_entry_shape_follows_cloud_logging() -> None:
    e = entry_of(LINE)
    assert e["severity"] == "WARNING"
    assert e["labels"] == {"psp": "stripe", "fn": "webhooks"}
    assert e["jsonPayload"]["message"] == "request rejected"
    assert "severity" not in e["jsonPayload"]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ('labels.fn="webhooks"', True),
        ('labels."fn"="webhooks"', True),
        ('labels.fn="webhook"', False),
        ("jsonPayload.http_status>=400 AND jsonPayload.http_status<500", True),
        ("jsonPayload.http_status>=500", False),
        ('jsonPayload.http_status>="500"', False),  # a string compares as a string: "401" < "500"
        ('jsonPayload.error_code="invalid_signature" OR jsonPayload.http_status>=500', True),
        ('NOT jsonPayload.error_code="invalid_signature"', False),
        ('-jsonPayload.error_code="invalid_signature"', False),
        ("NOT jsonPayload.missing=1", True),
        ("jsonPayload.missing=1", False),
        ("jsonPayload.missing!=1", False),
        ('(labels.psp="adyen" OR labels.psp="stripe") AND severity>=WARNING', True),
        ("severity>=ERROR", False),
        ('jsonPayload.nested.a:"hell"', True),
        ("jsonPayload.nested:*", True),
        ("jsonPayload.absent:*", False),
    ],
)
def test_the_subset(text: str, expected: bool) -> None:
    assert matches(text, LINE) is expected


@pytest.mark.parametrize(
    "text",
    [
        'jsonPayload.message=~"rej.*"',  # regular expressions
        'labels.fn="webhooks" jsonPayload.http_status=401',  # implicit AND
        "webhooks",  # a global restriction
        'log_id("stdout")',  # functions
        "jsonPayload.http_status>=500 AND",
        '(labels.fn="webhooks"',
        "timestamp>=2026-01-01T00:00:00Z",
    ],
)
def test_anything_else_is_refused(text: str) -> None:
    with pytest.raises(Unsupported):
        compile_filter(text)


def test_extract() -> None:
    assert extract("EXTRACT(labels.psp)", LINE) == "stripe"
    assert extract("EXTRACT(jsonPayload.http_status)", LINE) == "401"
    assert extract("EXTRACT(jsonPayload.absent)", LINE) is None
    with pytest.raises(Unsupported):
        extract('REGEXP_EXTRACT(jsonPayload.message, "(\\w+)")', LINE)
