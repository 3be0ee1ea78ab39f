"""Start and stop the Firestore, Pub/Sub and Cloud Storage emulators (and other local processes).

The gcloud wrappers spawn Java children that outlive a killed wrapper, so every emulator starts in
its own session (process group) and is stopped by signalling the whole group.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path


class PrerequisiteError(RuntimeError):
    """Something the emulators need is not installed; the message says what to install."""


def free_port() -> int:
    return free_ports(1)[0]


def free_ports(n: int) -> list[int]:
    """``n`` distinct free ports: every socket stays bound until all are chosen. One at a time, the OS may
    hand the same just-closed port out twice, and a second server on it fails to bind while the first one
    answers its readiness probe (requests for one function then reach another)."""
    socks = [socket.socket() for _ in range(n)]
    try:
        for s in socks:
            s.bind(("127.0.0.1", 0))
        return [int(s.getsockname()[1]) for s in socks]
    finally:
        for s in socks:
            s.close()


def port_open(host: str, port: int) -> bool:
    with socket.socket() as s:
        s.settimeout(0.3)
        return s.connect_ex((host, port)) == 0


def check_prerequisites() -> None:
    """Fail early with an install hint instead of a Java stack trace halfway through start-up."""
    gcloud = shutil.which("gcloud")
    if gcloud is None:
        raise PrerequisiteError(
            "gcloud is not on PATH. Install the Google Cloud CLI "
            "(Debian: apt-get install google-cloud-cli) and the emulator components below."
        )
    if shutil.which("java") is None:
        raise PrerequisiteError(
            "java is not on PATH: the emulators need Java 11+ (Debian: apt-get install openjdk-17-jre-headless)."
        )
    out = subprocess.run(["java", "-version"], capture_output=True, text=True, check=False)
    text = out.stderr + out.stdout
    try:
        major = int(text.split('"')[1].split(".")[0])
    except (IndexError, ValueError):
        major = 0
    if major < 11:
        raise PrerequisiteError(f"Java 11+ is required by the emulators; found: {text.strip()[:80]}")
    root = Path(
        subprocess.run(
            [gcloud, "info", "--format=value(installation.sdk_root)"], capture_output=True, text=True, check=False
        ).stdout.strip()
    )
    needed = {
        "cloud-firestore-emulator": "google-cloud-cli-firestore-emulator "
        "(or: gcloud components install cloud-firestore-emulator)",
        "pubsub-emulator": "google-cloud-cli-pubsub-emulator (or: gcloud components install pubsub-emulator beta)",
    }
    missing = [hint for comp, hint in needed.items() if not (root / "platform" / comp).is_dir()]
    if missing:
        raise PrerequisiteError("missing gcloud emulator components; install " + " and ".join(missing))


@dataclass
class ManagedProcess:
    name: str
    argv: list[str]
    host: str
    port: int
    ready_path: str | None
    log_file: Path | None = None
    env: dict[str, str] | None = None
    proc: subprocess.Popen[bytes] | None = field(default=None, repr=False)

    @property
    def address(self) -> str:
        return f"{self.host}:{self.port}"

    def start(self) -> None:
        out = open(self.log_file, "ab") if self.log_file else subprocess.DEVNULL  # noqa: SIM115
        self.proc = subprocess.Popen(
            self.argv, stdout=out, stderr=subprocess.STDOUT, start_new_session=True, env=self.env
        )

    def wait_ready(self, timeout_s: float = 90.0) -> None:
        deadline = time.monotonic() + timeout_s
        url = f"http://{self.address}{self.ready_path}"
        while time.monotonic() < deadline:
            if self.proc is not None and self.proc.poll() is not None:
                raise RuntimeError(f"{self.name} exited with {self.proc.returncode}; see {self.log_file}")
            if self.ready_path is None:
                if port_open(self.host, self.port):
                    return
                time.sleep(0.1)
                continue
            try:
                with urllib.request.urlopen(url, timeout=1) as r:
                    if r.status < 500:
                        return
            except OSError:
                pass
            time.sleep(0.25)
        raise TimeoutError(f"{self.name} not ready on {url} after {timeout_s}s; see {self.log_file}")

    def stop(self) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        pgid = os.getpgid(self.proc.pid)
        for sig, wait in ((signal.SIGTERM, 10.0), (signal.SIGKILL, 5.0)):
            try:
                os.killpg(pgid, sig)
            except ProcessLookupError:
                return
            try:
                self.proc.wait(timeout=wait)
                # The wrapper may be gone while Java children linger in the group: make sure.
                os.killpg(pgid, 0)
            except ProcessLookupError:
                return
            except subprocess.TimeoutExpired:
                continue
        try:
            os.killpg(pgid, signal.SIGKILL)
        except ProcessLookupError:
            pass


def firestore(port: int, log_dir: Path | None = None) -> ManagedProcess:
    return ManagedProcess(
        "firestore",
        ["gcloud", "emulators", "firestore", "start", f"--host-port=127.0.0.1:{port}", "--quiet"],
        "127.0.0.1",
        port,
        "/",
        log_dir / "firestore.log" if log_dir else None,
    )


def pubsub(port: int, project: str, log_dir: Path | None = None) -> ManagedProcess:
    return ManagedProcess(
        "pubsub",
        [
            "gcloud",
            "beta",
            "emulators",
            "pubsub",
            "start",
            f"--host-port=127.0.0.1:{port}",
            f"--project={project}",
            "--quiet",
        ],
        "127.0.0.1",
        port,
        "/",
        log_dir / "pubsub.log" if log_dir else None,
    )


def storage(port: int, log_dir: Path | None = None) -> ManagedProcess:
    exe = Path(sys.executable).with_name("gcp-storage-emulator")
    return ManagedProcess(
        "storage",
        [str(exe), "start", "--host=127.0.0.1", f"--port={port}", "--in-memory", "--quiet"],
        "127.0.0.1",
        port,
        "/storage/v1/b",
        log_dir / "storage.log" if log_dir else None,
    )


def start_all(emulators: list[ManagedProcess]) -> None:
    """Start in parallel (the JVMs dominate start-up), then wait for each; stop all on failure."""
    try:
        for e in emulators:
            e.start()
        for e in emulators:
            e.wait_ready()
    except BaseException:
        stop_all(emulators)
        raise


def stop_all(emulators: list[ManagedProcess]) -> None:
    for e in reversed(emulators):
        e.stop()
