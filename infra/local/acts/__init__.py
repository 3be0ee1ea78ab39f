"""Acts of the demo scenario, one module per product area, played in ``ORDER``.

Each module defines ``ORDER: int``, ``TITLE: str``, ``play(ctx) -> None`` and optionally ``ENV`` (or
``env()`` when building it has to start something): environment for the functions (clearly fake
demo/test secrets, never real ones). Adding an area to the
demo is adding a module here; the e2e tests start the stack with the same ``ENV``.
"""

from __future__ import annotations

import importlib
import pkgutil
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from infra.local.stack import Stack


@dataclass
class DemoContext:
    stack: Stack
    output_dir: Path
    facts: dict[str, Any] = field(default_factory=dict)  # what earlier acts left for later ones

    def say(self, text: str = "") -> None:
        print(text, flush=True)


def load_acts() -> list[ModuleType]:
    mods = [importlib.import_module(f"{__name__}.{m.name}") for m in pkgutil.iter_modules(__path__)]
    return sorted(mods, key=lambda m: int(m.ORDER))


def function_env() -> dict[str, str]:
    env: dict[str, str] = {}
    for m in load_acts():
        env.update(m.env() if hasattr(m, "env") else getattr(m, "ENV", {}))
    return env
