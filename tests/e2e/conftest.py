"""The whole local stack (the same Stack class as ``make up``) on the session's emulators."""

from __future__ import annotations

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
