"""The whole local stack (the same Stack class as ``make up``) on the session's emulators."""

from __future__ import annotations

import contextlib
import json
import uuid
from collections.abc import Iterator

import pytest

from infra.local.acts import function_env
from infra.local.stack import Ports, Stack
from shared.config import reset_settings
from tests.conftest import EmulatorHosts

# Unique per session: several test sessions may share one set of emulators.
E2E_PROJECT = f"demo-e2e-{uuid.uuid4().hex[:8]}"


def _port(hostport: str) -> int:
    return int(hostport.rsplit(":", 1)[1])


@pytest.fixture(scope="session")
def stack(emulators: EmulatorHosts, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    ports = Ports(
        pubsub=_port(emulators.pubsub),
        firestore=_port(emulators.firestore),
        storage=_port(emulators.storage),
        functions_base=0,
    )
    s = Stack(
        project=E2E_PROJECT,
        ports=ports,
        log_dir=tmp_path_factory.mktemp("stack-logs"),
        use_lock=False,
        reuse_emulators=True,
        extra_env=function_env(),
    )
    s.start()
    try:
        yield s
    finally:
        s.stop()


@pytest.fixture
def stack_env(stack: Stack, monkeypatch: pytest.MonkeyPatch) -> Iterator[Stack]:
    """Point this test process's ``shared`` clients at the stack's project."""
    for k, v in stack.emulator_env.items():
        monkeypatch.setenv(k, v)
    reset_settings()
    yield stack
    reset_settings()


@pytest.fixture(scope="session", autouse=True)
def no_card_data_at_rest(stack: Stack) -> Iterator[None]:
    """After the session: no card number in any Firestore document, published message or function log.

    A pull subscription on every topic (dead-letter topics included) records everything published from
    now on; at the end every collection of the e2e project is walked (subcollections too). Any Luhn-valid
    13-19 digit sequence under any separator, or a security-code field with a value, fails the session.
    """
    from google.cloud import firestore
    from google.cloud.pubsub_v1 import SubscriberClient

    from shared.scrub import CVC_MASK, is_cvc_name
    from tests.card_data import luhn_sequences

    with pytest.MonkeyPatch.context() as mp:
        for k, v in stack.emulator_env.items():
            mp.setenv(k, v)
        sub = SubscriberClient()
        taps = []
        for topic in stack.topology.all_topics:
            path = sub.subscription_path(stack.project, f"card-audit-{topic}"[:255])
            sub.create_subscription(name=path, topic=f"projects/{stack.project}/topics/{topic}")
            taps.append(path)
    yield
    found: list[tuple[str, str]] = []

    def check(where: str, value: object) -> None:
        text = json.dumps(value, default=str, ensure_ascii=False) if not isinstance(value, str) else value
        found.extend((where, s) for s in luhn_sequences(text))

    def cvc_fields(where: str, value: object) -> None:
        if isinstance(value, dict):
            for k, v in value.items():
                if is_cvc_name(str(k)) and v not in (None, "", CVC_MASK):
                    found.append((where, f"security code field {k!r}"))
                cvc_fields(where, v)
        elif isinstance(value, list):
            for v in value:
                cvc_fields(where, v)

    with pytest.MonkeyPatch.context() as mp:
        for k, v in stack.emulator_env.items():
            mp.setenv(k, v)
        messages = 0
        for path in taps:
            while True:
                resp = sub.pull(request={"subscription": path, "max_messages": 500, "return_immediately": True})
                if not resp.received_messages:
                    break
                sub.acknowledge(request={"subscription": path, "ack_ids": [m.ack_id for m in resp.received_messages]})
                for m in resp.received_messages:
                    messages += 1
                    check(f"message on {path}", m.message.data.decode("utf-8", "replace"))
                    check(f"attributes on {path}", dict(m.message.attributes))
        db = firestore.Client(project=stack.project)
        documents = 0
        pending = list(db.collections())
        while pending:
            collection = pending.pop()
            for snap in collection.stream():
                documents += 1
                data = snap.to_dict() or {}
                check(snap.reference.path, data)
                cvc_fields(snap.reference.path, data)
                raw = data.get("raw")
                if isinstance(raw, str) and raw.lstrip()[:1] in ("{", "["):
                    with contextlib.suppress(ValueError):
                        cvc_fields(snap.reference.path + " raw", json.loads(raw))
                pending.extend(snap.reference.collections())
    for log in sorted(stack.log_dir.glob("fn-*.log")):
        check(str(log.name), log.read_text(errors="replace"))
    assert documents, "the sweep saw no document: the e2e session stored nothing"
    assert messages, "the sweep saw no message: the e2e session published nothing"
    assert not found, found[:20]
