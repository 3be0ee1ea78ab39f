"""``make demo``: start the whole stack on the emulators, play every act, print what happened, stop."""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

from infra.local import emulators as em
from infra.local.acts import DemoContext, function_env, load_acts
from infra.local.stack import Ports, Stack, StackAlreadyRunning, running
from infra.local.topology import ROOT


def main() -> int:
    out = ROOT / "demo-output"
    out.mkdir(exist_ok=True)
    # Free ports: the demo runs happily beside a developer's `make up` on the default ports.
    ports = Ports.free()
    stack = Stack(
        project="demo-payments-demo", ports=ports, extra_env=function_env(), use_lock=False, log_dir=out / "logs"
    )
    t0 = time.monotonic()
    try:
        with running(stack):
            print(stack.describe(), "\n", flush=True)
            for k, v in stack.emulator_env.items():
                os.environ[k] = v
            from shared.config import reset_settings

            reset_settings()
            ctx = DemoContext(stack=stack, output_dir=out)
            acts = load_acts()
            # Acts that watch what others publish (analytics) subscribe before the first act plays.
            for act in acts:
                if hasattr(act, "prepare"):
                    act.prepare(ctx)
            for act in acts:
                print(f"== {act.TITLE}", flush=True)
                act.play(ctx)
                print()
            if os.environ.get("DEMO_KEEP"):  # browse what the demo left (the console) until Ctrl-C
                print(f"stack kept up; console at {stack.function_urls.get('console')}/ ; Ctrl-C stops it", flush=True)
                try:
                    while True:
                        time.sleep(3600)
                except KeyboardInterrupt:
                    print("\nstopping ...")
    except (StackAlreadyRunning, em.PrerequisiteError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(f"demo finished in {time.monotonic() - t0:.1f}s; output in {Path(out).relative_to(ROOT)}/")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
