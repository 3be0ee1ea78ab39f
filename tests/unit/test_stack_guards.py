"""The local stack refuses clearly: a second start while one runs, or a missing emulator prerequisite."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from infra.local import emulators as em
from infra.local import stack as stack_mod


def test_second_start_while_one_runs_says_so(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    lock = tmp_path / "stack.json"
    monkeypatch.setattr(stack_mod, "STATE_DIR", tmp_path)
    monkeypatch.setattr(stack_mod, "LOCK_FILE", lock)
    lock.write_text(json.dumps({"pid": os.getppid(), "started": "earlier"}))  # a live process
    with pytest.raises(stack_mod.StackAlreadyRunning, match=r"already running \(pid"):
        stack_mod.Stack()._take_lock()


def test_stale_lock_is_replaced(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    lock = tmp_path / "stack.json"
    monkeypatch.setattr(stack_mod, "STATE_DIR", tmp_path)
    monkeypatch.setattr(stack_mod, "LOCK_FILE", lock)
    lock.write_text(json.dumps({"pid": 2**22 + 12345, "started": "long ago"}))  # no such pid
    stack_mod.Stack()._take_lock()
    assert json.loads(lock.read_text())["pid"] == os.getpid()


def test_missing_gcloud_names_what_to_install(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(em.PrerequisiteError, match="Google Cloud CLI"):
        em.check_prerequisites()


def test_missing_java_names_what_to_install(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    fake = tmp_path / "gcloud"
    fake.write_text("#!/bin/sh\nexit 0\n")
    fake.chmod(0o755)
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(em.PrerequisiteError, match="openjdk"):
        em.check_prerequisites()


def test_missing_emulator_component_names_the_package(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    sdk = tmp_path / "sdk"
    (sdk / "platform" / "pubsub-emulator").mkdir(parents=True)
    (tmp_path / "gcloud").write_text(f"#!/bin/sh\necho {sdk}\n")
    (tmp_path / "java").write_text("#!/bin/sh\necho 'openjdk version \"17.0.15\"' >&2\n")
    for f in ("gcloud", "java"):
        (tmp_path / f).chmod(0o755)
    monkeypatch.setenv("PATH", f"{tmp_path}:/usr/bin:/bin")
    with pytest.raises(em.PrerequisiteError, match="firestore-emulator"):
        em.check_prerequisites()


def test_free_ports_are_distinct_and_bindable() -> None:
    """A stack's servers get distinct ports (one at a time the OS may hand a just-closed port out twice)."""
    import socket

    from infra.local import emulators as em

    for _ in range(20):
        ports = em.free_ports(13)
        assert len(set(ports)) == 13
    for port in em.free_ports(3):
        with socket.socket() as s:
            s.bind(("127.0.0.1", port))
