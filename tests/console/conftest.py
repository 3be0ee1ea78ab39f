"""Console tests run on the shared emulators (integration), one fresh project per test."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.conftest import Gcp
from tests.fixtures.console_world import World, build_world


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    here = Path(__file__).parent
    for item in items:
        if here in Path(str(item.fspath)).parents:
            item.add_marker(pytest.mark.integration)


@pytest.fixture
def world(gcp: Gcp) -> World:
    return build_world(gcp.project)
