"""Browser tests: Playwright driving the system Chromium (Debian's ``chromium``; never a downloaded browser).

They run in ``make test`` (marked ``browser`` and ``integration``: the console serves real emulator data)
and are skipped with a message when Chromium or Playwright is missing. Screenshots of the main pages go to
``test-artifacts/console/`` (gitignored).
"""

from __future__ import annotations

import shutil
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import Gcp
from tests.fixtures.console_world import ROOT, SETTINGS, USER, World, build_world

ARTIFACTS = ROOT / "test-artifacts" / "console"


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "browser: drives the system Chromium through Playwright")


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    here = Path(__file__).parent
    for item in items:
        if here in Path(str(item.fspath)).parents:
            item.add_marker(pytest.mark.browser)
            item.add_marker(pytest.mark.integration)


@pytest.fixture(scope="session")
def chromium() -> Iterator[Any]:
    exe = shutil.which("chromium") or shutil.which("chromium-browser")
    if exe is None:
        pytest.skip("no system Chromium: `make chromium` installs Debian's package (apt-get)")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        pytest.skip("playwright is not installed (requirements-dev.txt)")
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=exe, args=["--no-sandbox", "--disable-dev-shm-usage"])
        yield browser
        browser.close()


@dataclass
class Served:
    url: str
    world: World


@pytest.fixture
def served(gcp: Gcp) -> Iterator[Served]:
    """The console over this test's data on a local port, as functions-framework would serve it."""
    from werkzeug.serving import make_server

    world = build_world(gcp.project)
    server = make_server("127.0.0.1", 0, world.app(SETTINGS), threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield Served(f"http://127.0.0.1:{server.server_port}", world)
    finally:
        server.shutdown()


@pytest.fixture
def page(chromium: Any, served: Served) -> Iterator[Any]:
    """A page whose requests carry the header Identity-Aware Proxy adds for the signed-in user."""
    context = chromium.new_context(
        base_url=served.url,
        extra_http_headers={"X-Goog-Authenticated-User-Email": f"accounts.google.com:{USER}"},
        viewport={"width": 1280, "height": 900},
    )
    context.set_default_timeout(30_000)
    pg = context.new_page()
    yield pg
    context.close()


def shot(page: Any, name: str) -> None:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / f"{name}.png"), full_page=True)
