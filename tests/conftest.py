"""Test fixtures: emulators started once per session (reused when already running), fresh data per test.

Isolation: every integration test runs in its own GCP project id on the emulators. Firestore and
Pub/Sub keep projects apart, so tests never see each other's documents, topics or subscriptions and
no cleanup between tests is needed.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from hypothesis import settings as hypothesis_settings

from infra.local import emulators as em
from shared.config import reset_settings

# Hypothesis' per-example deadline is a timed assertion: on a shared 2-core machine (CI included) it fails
# properties for being slow, not wrong. Performance is measured in bench/, never asserted here.
hypothesis_settings.register_profile("project", deadline=None)
hypothesis_settings.load_profile("project")

_DIR_MARKERS = {"unit": "unit", "integration": "integration", "e2e": "e2e"}


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        for part in Path(str(item.fspath)).parts:
            if part in _DIR_MARKERS:
                item.add_marker(getattr(pytest.mark, _DIR_MARKERS[part]))


@dataclass(frozen=True)
class EmulatorHosts:
    firestore: str
    pubsub: str
    storage: str  # URL form, as STORAGE_EMULATOR_HOST wants it


def _reachable(hostport: str | None) -> bool:
    if not hostport:
        return False
    host, _, port = hostport.replace("http://", "").partition(":")
    return port.isdigit() and em.port_open(host, int(port))


@pytest.fixture(scope="session")
def emulators(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EmulatorHosts]:
    """The three emulators: reuse those named by the environment if they answer, else start our own."""
    fs, ps, st = (
        os.environ.get(k) for k in ("FIRESTORE_EMULATOR_HOST", "PUBSUB_EMULATOR_HOST", "STORAGE_EMULATOR_HOST")
    )
    if _reachable(fs) and _reachable(ps) and _reachable(st):
        assert fs
        assert ps
        assert st
        yield EmulatorHosts(fs, ps, st)
        return
    em.check_prerequisites()
    log_dir = tmp_path_factory.mktemp("emulator-logs")
    ports = tuple(em.free_ports(3))
    procs = [em.firestore(ports[0], log_dir), em.pubsub(ports[1], "demo-tests", log_dir), em.storage(ports[2], log_dir)]
    em.start_all(procs)
    try:
        yield EmulatorHosts(f"127.0.0.1:{ports[0]}", f"127.0.0.1:{ports[1]}", f"http://127.0.0.1:{ports[2]}")
    finally:
        em.stop_all(procs)


@dataclass(frozen=True)
class Gcp:
    project: str
    hosts: EmulatorHosts

    def topic(self, name: str) -> str:
        """Create a topic in this test's project; returns its path."""
        from google.cloud.pubsub_v1 import PublisherClient

        pub = PublisherClient()
        path: str = pub.topic_path(self.project, name)
        pub.create_topic(name=path)
        return path

    def pull_subscription(self, topic: str, name: str | None = None) -> str:
        """A pull subscription ``name`` (default ``<topic>-pull``) on ``topic``; read it with tests.helpers.drain."""
        from tests.helpers import pull_subscription

        return pull_subscription(self.project, topic, name=name or f"{topic}-pull")


@pytest.fixture
def gcp(emulators: EmulatorHosts, monkeypatch: pytest.MonkeyPatch) -> Iterator[Gcp]:
    """A fresh project on the emulators, wired into the environment and into ``shared``'s settings."""
    project = f"demo-t{uuid.uuid4().hex[:12]}"
    monkeypatch.setenv("GOOGLE_CLOUD_PROJECT", project)
    monkeypatch.setenv("FIRESTORE_EMULATOR_HOST", emulators.firestore)
    monkeypatch.setenv("PUBSUB_EMULATOR_HOST", emulators.pubsub)
    monkeypatch.setenv("STORAGE_EMULATOR_HOST", emulators.storage)
    reset_settings()
    yield Gcp(project, emulators)
    reset_settings()


@pytest.fixture
def env_project(monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """A project id for unit tests that build settings but never touch the network."""
    monkeypatch.setenv("GOOGLE_CLOUD_PROJECT", "demo-unit")
    for k in ("FIRESTORE_EMULATOR_HOST", "PUBSUB_EMULATOR_HOST", "STORAGE_EMULATOR_HOST"):
        monkeypatch.delenv(k, raising=False)
    reset_settings()
    yield "demo-unit"
    reset_settings()
