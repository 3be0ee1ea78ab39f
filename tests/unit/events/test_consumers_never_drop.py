"""Fuzzing every Pub/Sub consumer through its entry point: no message is acknowledged and dropped.

For random attributes, versions, bodies and missing envelopes, each delivery ends in exactly one of:
handled (the consumer's handler ran), refused (``Undeliverable``, the reason logged once at ERROR:
Pub/Sub redelivers then dead-letters it), or acknowledged because the type is registered in the
contracts but this consumer does not handle it. Handlers are replaced by recorders, so no I/O.
"""

from __future__ import annotations

import contextlib
import json
import logging
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any
from unittest import mock

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import shared.metering.aggregator as metering_aggregator
import shared.renewals.entry as renewals_entry
from shared.events.consumer import Undeliverable
from shared.renewals.messages import Tick
from tests.unit.events.samples import cloud_event, entry_point, known_types, message, valid

KNOWN = known_types()
ENVELOPE = ("event_type", "event_id", "schema_version", "occurred_at", "idempotency_key")


@dataclass
class Consumer:
    function: str
    handlers: dict[str, Any]  # the dict dispatch reads, patched with recorders
    triggers: frozenset[str] = frozenset()
    calls: list[tuple[str, Any]] = field(default_factory=list)

    def recorder(self, etype: str) -> Any:
        def record(msg: Any) -> object:
            self.calls.append((etype, msg))
            return "handled"

        return record


@pytest.fixture(scope="module", autouse=True)
def _project() -> Iterator[None]:
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("GOOGLE_CLOUD_PROJECT", "demo-unit")
        mp.delenv("RENEWALS_ALLOW_TEST_CLOCK", raising=False)
        yield


def consumer(function: str) -> tuple[Any, Consumer]:
    mod = entry_point(function)
    if function == "renewals":
        return mod, Consumer(function, renewals_entry.HANDLERS, frozenset(renewals_entry.TRIGGERS))
    if function == "usage_aggregator":
        return mod, Consumer(function, metering_aggregator.HANDLERS)
    return mod, Consumer(function, mod.HANDLERS)


class ListHandler(logging.Handler):
    def __init__(self, level: int) -> None:
        super().__init__(level)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


@contextlib.contextmanager
def recording(c: Consumer) -> Iterator[list[logging.LogRecord]]:
    """Recorders instead of handlers (and instead of the planner for ticks); consumer log lines captured."""
    handler = ListHandler(logging.INFO)
    records = handler.records
    logger = logging.getLogger("shared.events.consumer")
    logger.addHandler(handler)
    tick = c.recorder("billing.tick")
    try:
        with (
            mock.patch.dict(c.handlers, {t: c.recorder(t) for t in c.handlers}),
            mock.patch.object(renewals_entry, "handle_tick", lambda t, cfg, deps: tick(t)),
        ):
            yield records
    finally:
        logger.removeHandler(handler)


DROP = object()


@st.composite
def deliveries(draw: st.DrawFn, c: Consumer) -> tuple[str | None, Any]:
    """(event_type as sent, the CloudEvent); starts from valid messages, then breaks them at random."""
    etype: str | None = draw(
        st.one_of(
            st.sampled_from(sorted(c.handlers)),
            st.sampled_from(KNOWN),
            st.sampled_from(["billing.tick", "", "payment.teleported", "Payment.Succeeded"]),
            st.text(max_size=12),
            st.none(),
        )
    )
    if etype in KNOWN:
        data, attrs = valid(etype)
    elif etype == "billing.tick":
        tick = draw(st.sampled_from([{}, {"shard": 1}, {"shard": 99}, {"now": "2026-03-01T00:00:00Z"}]))
        data, attrs = json.dumps(tick).encode(), {"event_type": etype, "producer": "cloud-scheduler"}
    else:
        data, attrs = b"{}", ({} if etype is None else {"event_type": etype})
    attrs = dict(attrs)
    for key in draw(st.sets(st.sampled_from(ENVELOPE[1:]), max_size=2)):
        attrs.pop(key, None)
    version = draw(
        st.one_of(st.just(DROP), st.just(None), st.sampled_from(["1", "2", "0", "99", "x", "", " 1"]), st.integers())
    )
    if version is None:
        attrs.pop("schema_version", None)
    elif version is not DROP:
        attrs["schema_version"] = str(version)
    body = draw(st.one_of(st.just(data), st.binary(max_size=24), st.just(b'{"unexpected": 1}'), st.just(b"")))
    shape = draw(st.sampled_from(["message", "message", "message", "no-attributes", "no-message", "odd-attributes"]))
    if shape == "no-attributes":
        return None, cloud_event(message(body, {}))
    if shape == "no-message":
        return None, type("CE", (), {"data": {"subscription": "projects/p/subscriptions/s"}})()
    if shape == "odd-attributes":
        return None, cloud_event(message(body, [["event_type", etype]]))
    return etype, cloud_event(message(body, attrs))


def _version_is_one(ce: Any) -> bool:
    raw = ce.data["message"]["attributes"].get("schema_version")
    try:
        return int(raw) == 1
    except (TypeError, ValueError):
        return False


@pytest.mark.parametrize("function", ["invoices", "renewals", "probe_sink", "usage_aggregator"])
def test_no_message_is_acknowledged_and_dropped(function: str) -> None:
    mod, c = consumer(function)
    entry = getattr(mod, function)

    @settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
    @given(deliveries(c))
    def run(delivery: tuple[str | None, Any]) -> None:
        etype, ce = delivery
        c.calls.clear()
        refusal: Undeliverable | None = None
        with recording(c) as logs:
            try:
                entry(ce)
            except Undeliverable as exc:
                refusal = exc
        if refusal is not None:
            (line,) = [r for r in logs if r.levelno >= logging.ERROR]
            assert refusal.reason
            assert line.reason == refusal.reason  # type: ignore[attr-defined]
            assert c.calls == []
            return
        # Acknowledged: either a handler ran, or the type is someone else's registered contract.
        assert not [r for r in logs if r.levelno >= logging.ERROR]
        assert etype, "an unclassifiable message was acknowledged"
        if c.calls:
            ((handled, arg),) = c.calls
            assert handled == etype
            if etype in c.triggers:
                assert isinstance(arg, Tick)
                assert ce.data["message"]["attributes"].get("schema_version") in (None, "1", " 1")
            else:
                assert etype in c.handlers
                assert arg.envelope.event_type == etype
                assert arg.envelope.schema_version == 1
                assert _version_is_one(ce)
        else:
            assert etype in KNOWN
            assert etype not in c.handlers
            assert etype not in c.triggers
            assert [r.message for r in logs] == ["event type not handled here; acknowledged"]

    run()


@pytest.mark.parametrize("function", ["invoices", "renewals", "probe_sink", "usage_aggregator"])
def test_unsupported_versions_of_handled_types_are_refused(function: str) -> None:
    mod, c = consumer(function)
    entry = getattr(mod, function)

    @settings(max_examples=100, deadline=None)
    @given(st.sampled_from(sorted(c.handlers)), st.integers().filter(lambda v: v != 1))
    def run(etype: str, version: int) -> None:
        data, attrs = valid(etype)
        with recording(c) as logs, pytest.raises(Undeliverable, match=f"v{version} is not supported here"):
            entry(cloud_event(message(data, {**attrs, "schema_version": str(version)})))
        assert [r.levelname for r in logs] == ["ERROR"]

    run()


@pytest.mark.parametrize("function", ["invoices", "renewals", "probe_sink", "usage_aggregator"])
def test_registered_but_unhandled_types_are_acknowledged(function: str) -> None:
    mod, c = consumer(function)
    entry = getattr(mod, function)
    others = [t for t in KNOWN if t not in c.handlers]
    assert others
    for etype in others:
        data, attrs = valid(etype)
        with recording(c) as logs:
            entry(cloud_event(message(data, attrs)))
        assert c.calls == []
        assert [(r.levelname, r.message) for r in logs] == [("INFO", "event type not handled here; acknowledged")]


@pytest.mark.parametrize("function", ["invoices", "renewals", "probe_sink", "usage_aggregator"])
def test_every_handled_type_is_handled_when_valid(function: str) -> None:
    mod, c = consumer(function)
    entry = getattr(mod, function)
    for etype in c.handlers:
        c.calls.clear()
        data, attrs = valid(etype)
        with recording(c):
            entry(cloud_event(message(data, attrs)))
        assert [t for t, _ in c.calls] == [etype]


def test_renewals_without_attributes_is_not_a_tick() -> None:
    mod, c = consumer("renewals")
    with recording(c) as logs, pytest.raises(Undeliverable, match="no event_type"):
        mod.renewals(cloud_event(message(b"", {})))
    assert c.calls == []
    assert [r.levelname for r in logs] == ["ERROR"]


@pytest.mark.parametrize("body", [{"shard": 99}, {"now": "2026-03-01T00:00:00Z"}, [1]])
def test_renewals_refused_tick_is_dead_lettered_not_acknowledged(body: Any) -> None:
    mod, c = consumer("renewals")
    ce = cloud_event(message(json.dumps(body).encode(), {"event_type": "billing.tick"}))
    with recording(c) as logs, pytest.raises(Undeliverable, match="tick refused"):
        mod.renewals(ce)
    assert c.calls == []
    assert [r.levelname for r in logs] == ["ERROR"]
