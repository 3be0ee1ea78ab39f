"""The whole product on this machine: emulators, topics, push subscriptions and every function.

``python -m infra.local.stack up`` starts everything described in ``infra/topology.yaml`` and blocks
until Ctrl-C, which stops all of it. A second ``up`` while one runs refuses with the running stack's
pid. The e2e tests and ``make demo`` use the same :class:`Stack` class, so what they exercise is what
a developer runs.

Delivery: ``delivery="push"`` (the default) lets the Pub/Sub emulator push, at most two messages in flight
per subscription (its two push loops); ``delivery="concurrent"`` (``up --delivery concurrent``) hands the
subscriptions to :class:`infra.local.delivery.DeliveryBridge`, which pushes as Pub/Sub does in the cloud:
up to each function's ``concurrency`` of the topology (or ``max_concurrency``, when lower) in flight, and
each function's server gets as many threads.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from infra.local import emulators as em
from infra.local.topology import ROOT, Topology, load

STATE_DIR = ROOT / ".stack"
LOCK_FILE = STATE_DIR / "stack.json"


class StackAlreadyRunning(RuntimeError):
    pass


@dataclass
class Ports:
    pubsub: int = 8085
    firestore: int = 8086
    storage: int = 9023
    functions_base: int = 8101

    @classmethod
    def free(cls) -> Ports:
        pubsub, firestore, storage = em.free_ports(3)
        return cls(pubsub, firestore, storage, 0)


@dataclass
class Stack:
    project: str = "demo-payments"
    ports: Ports = field(default_factory=Ports)
    log_dir: Path = STATE_DIR / "logs"
    extra_env: dict[str, str] = field(default_factory=dict)
    topology: Topology = field(default_factory=load)
    use_lock: bool = True
    reuse_emulators: bool = False
    processes: list[em.ManagedProcess] = field(default_factory=list)
    function_urls: dict[str, str] = field(default_factory=dict)
    push_filter: Any = None  # infra.local.pushfilter.PushFilter once a filtered subscription exists
    delivery: str = "push"  # "push": the emulator's push; "concurrent": the bridge (module docstring)
    max_concurrency: int | None = None  # caps every function's concurrency with delivery="concurrent"
    bridge: Any = None  # infra.local.delivery.DeliveryBridge with delivery="concurrent"

    def __post_init__(self) -> None:
        if self.delivery not in ("push", "concurrent"):
            raise ValueError(f"delivery must be 'push' or 'concurrent', not {self.delivery!r}")

    def concurrency(self, fn_key: str) -> int:
        """Deliveries the function takes at once: its topology ``concurrency``, capped by ``max_concurrency``."""
        n = int(self.topology.functions[fn_key].raw.get("concurrency") or 1)
        return max(1, min(n, self.max_concurrency)) if self.max_concurrency else n

    # -- environment ----------------------------------------------------------------------------
    @property
    def emulator_env(self) -> dict[str, str]:
        return {
            "GOOGLE_CLOUD_PROJECT": self.project,
            "FIRESTORE_EMULATOR_HOST": f"127.0.0.1:{self.ports.firestore}",
            "PUBSUB_EMULATOR_HOST": f"127.0.0.1:{self.ports.pubsub}",
            "STORAGE_EMULATOR_HOST": f"http://127.0.0.1:{self.ports.storage}",
        }

    def function_env(self, fn_name: str) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith(("FIRESTORE_", "PUBSUB_", "STORAGE_"))}
        env.update(self.emulator_env)
        env.update(self.extra_env)
        env["PYTHONPATH"] = str(ROOT)
        env.setdefault("PYTHONWARNINGS", "ignore::FutureWarning")  # google-api-core's Python 3.11 notice
        env["K_SERVICE"] = fn_name
        if self.delivery == "concurrent":  # functions-framework's gunicorn has 4 threads per core otherwise
            key = next((f.key for f in self.topology.functions.values() if f.name == fn_name), None)
            if key is not None:
                env["THREADS"] = str(self.concurrency(key))
        return env

    # -- lifecycle ------------------------------------------------------------------------------
    def start(self) -> None:
        self.log_dir.mkdir(parents=True, exist_ok=True)
        if self.use_lock:
            self._take_lock()
        try:
            em.check_prerequisites()
            emus = [
                em.firestore(self.ports.firestore, self.log_dir),
                em.pubsub(self.ports.pubsub, self.project, self.log_dir),
                em.storage(self.ports.storage, self.log_dir),
            ]
            if self.reuse_emulators:
                emus = [e for e in emus if not em.port_open(e.host, e.port)]
            self.processes += emus
            em.start_all(emus)
            self._start_functions()
            self.provision()
        except BaseException:
            self.stop()
            raise

    def stop(self) -> None:
        # A second Ctrl-C (or a SIGTERM) must not interrupt the teardown and orphan the JVMs.
        main = threading.current_thread() is threading.main_thread()
        sigs = (signal.SIGINT, signal.SIGTERM) if main else ()
        old = {sig: signal.signal(sig, signal.SIG_IGN) for sig in sigs}
        try:
            if self.bridge is not None:  # first: no delivery to a function being stopped
                self.bridge.close()
                self.bridge = None
            em.stop_all(self.processes)
            self.processes.clear()
            if self.push_filter is not None:
                self.push_filter.close()
                self.push_filter = None
        finally:
            for sig, handler in old.items():
                signal.signal(sig, handler)
        if self.use_lock and LOCK_FILE.exists():
            try:
                if json.loads(LOCK_FILE.read_text()).get("pid") == os.getpid():
                    LOCK_FILE.unlink()
            except (OSError, ValueError):
                pass

    def _take_lock(self) -> None:
        if LOCK_FILE.exists():
            try:
                info = json.loads(LOCK_FILE.read_text())
                os.kill(int(info["pid"]), 0)
            except (OSError, ValueError, KeyError):
                LOCK_FILE.unlink(missing_ok=True)  # stale: its owner is gone
            else:
                raise StackAlreadyRunning(
                    f"a local stack is already running (pid {info['pid']}, started {info.get('started')}); "
                    "stop it with Ctrl-C in its terminal (or `make down`) before starting another"
                )
        STATE_DIR.mkdir(exist_ok=True)
        LOCK_FILE.write_text(
            json.dumps({"pid": os.getpid(), "started": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())})
        )

    def _start_functions(self) -> None:
        procs = []
        exe = str(Path(sys.executable).with_name("functions-framework"))
        fns = list(self.topology.functions.values())
        free = [] if self.ports.functions_base else em.free_ports(len(fns))  # distinct (em.free_ports)
        for i, fn in enumerate(fns):
            port = self.ports.functions_base + i if self.ports.functions_base else free[i]
            argv = [
                exe,
                f"--target={fn.entry_point}",
                f"--source={fn.source}",
                f"--signature-type={fn.signature_type}",
                "--host=127.0.0.1",
                f"--port={port}",
            ]
            p = em.ManagedProcess(
                fn.name, argv, "127.0.0.1", port, None, self.log_dir / f"fn-{fn.name}.log", self.function_env(fn.name)
            )
            procs.append(p)
            self.function_urls[fn.key] = f"http://127.0.0.1:{port}"
        self.processes += procs
        em.start_all(procs)

    # -- Pub/Sub provisioning -------------------------------------------------------------------
    def provision(self) -> None:
        """Create every topic, dead-letter topic and push subscription of the topology (idempotent)."""
        from google.api_core.exceptions import AlreadyExists
        from google.cloud.pubsub_v1 import PublisherClient, SubscriberClient
        from google.protobuf import duration_pb2

        with _env(self.emulator_env):
            pub = PublisherClient()
            sub = SubscriberClient()
            if self.delivery == "concurrent" and self.bridge is None:
                from infra.local.delivery import DeliveryBridge

                limits = {k: self.concurrency(k) for k in self.topology.functions}
                self.bridge = DeliveryBridge(SubscriberClient(), limits)
            for topic in self.topology.all_topics:
                try:
                    pub.create_topic(name=pub.topic_path(self.project, topic))
                except AlreadyExists:
                    pass
            for s in self.topology.subscriptions.values():
                base = self.function_urls[s.function]
                if s.filter and self.bridge is None:  # the emulator ignores filters: infra/local/pushfilter.py
                    if self.push_filter is None:
                        from infra.local.pushfilter import PushFilter

                        self.push_filter = PushFilter()
                    base = self.push_filter.route(s, base)
                endpoint = f"{base}/projects/{self.project}/topics/{s.topic}"
                request: dict[str, Any] = {
                    "name": sub.subscription_path(self.project, s.name),
                    "topic": pub.topic_path(self.project, s.topic),
                    # The bridge pulls (it pushes itself); a pull subscription has an empty push config.
                    "push_config": {} if self.bridge is not None else {"push_endpoint": endpoint},
                    "ack_deadline_seconds": s.ack_deadline_s,
                    "dead_letter_policy": {
                        "dead_letter_topic": pub.topic_path(self.project, s.dead_letter_topic),
                        "max_delivery_attempts": s.max_delivery_attempts,
                    },
                    "retry_policy": {
                        "minimum_backoff": duration_pb2.Duration(seconds=s.min_backoff_s),
                        "maximum_backoff": duration_pb2.Duration(seconds=s.max_backoff_s),
                    },
                }
                try:
                    sub.create_subscription(request=request)
                except AlreadyExists:
                    sub.modify_push_config(subscription=request["name"], push_config=request["push_config"])
                if self.bridge is not None:
                    self.bridge.route(s, request["name"], endpoint)
                # A pull subscription on each dead-letter topic keeps dead letters for replay.
                try:
                    sub.create_subscription(
                        name=sub.subscription_path(self.project, s.dead_letter_topic),
                        topic=pub.topic_path(self.project, s.dead_letter_topic),
                    )
                except AlreadyExists:
                    pass
            if self.bridge is not None:
                self.bridge.start()

    def describe(self) -> str:
        lines = [f"Local stack for project {self.project}"]
        lines += [f"  {k:<10} {v}" for k, v in self.emulator_env.items() if k != "GOOGLE_CLOUD_PROJECT"]
        for key, url in self.function_urls.items():
            fn = self.topology.functions[key]
            lines.append(f"  function {fn.name:<14} {url}  ({fn.trigger}, entry point {fn.entry_point})")
        if self.bridge is not None:
            lines.append("  delivery: concurrent, up to each function's concurrency (infra/local/delivery.py)")
        lines.append(f"  logs in {self.log_dir}")
        return "\n".join(lines)


@contextmanager
def _env(values: dict[str, str]) -> Iterator[None]:
    old = {k: os.environ.get(k) for k in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for k, v in old.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


@contextmanager
def running(stack: Stack) -> Iterator[Stack]:
    """Start the stack for the duration of a block; always stops what it started."""
    stack.start()
    try:
        yield stack
    finally:
        stack.stop()


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="stack", description=__doc__.splitlines()[0] if __doc__ else None)
    ap.add_argument("command", choices=["up", "down"])
    ap.add_argument(
        "--delivery",
        choices=["push", "concurrent"],
        default="push",
        help="push: the emulator's (two in flight per subscription); concurrent: up to each function's concurrency",
    )
    args = ap.parse_args(argv)
    if args.command == "down":
        if not LOCK_FILE.exists():
            print("no local stack is running")
            return 0
        pid = int(json.loads(LOCK_FILE.read_text())["pid"])
        os.kill(pid, signal.SIGINT)
        print(f"asked the stack (pid {pid}) to stop")
        return 0
    stack = Stack(delivery=args.delivery)
    try:
        stack.start()
    except (StackAlreadyRunning, em.PrerequisiteError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    # Ctrl-C must stop the stack even when started from a shell that ignores SIGINT in background jobs.
    signal.signal(signal.SIGINT, signal.default_int_handler)
    signal.signal(signal.SIGTERM, lambda *_: (_ for _ in ()).throw(KeyboardInterrupt()))
    print(stack.describe())
    print("Ctrl-C stops everything.", flush=True)
    try:
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        print("\nstopping ...")
    finally:
        stack.stop()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
