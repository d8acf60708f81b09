"""End-to-end fixtures: the upload demo (``wasm-demo/``) in Chromium, with Playwright's async API.

``wasm-demo/server.py`` serves ``build/site`` (``make site``) and hosts the shared ``upload``
machine on one port, on the tests' event loop. Every page opens in one browser context, where
requests that would leave 127.0.0.1 are blocked and recorded; those, and console errors, fail
the test during which they happened. Starting Pyodide takes seconds per tab, so test modules share
their tabs. These tests run on CPython only (``make pytest-e2e``), in a pytest process of their
own: the sync Playwright fixtures of ``tests/browser`` keep an event loop marked as running.
"""

from __future__ import annotations

import importlib.util
import json
import sys
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
import pytest_asyncio
from support import (
    CHROMIUM,
    CHROMIUM_ARGS,
    Watch,
    keep_local,
    watch_page,
)

async_api = pytest.importorskip("playwright.async_api")
pytest.importorskip("websockets")

ROOT = Path(__file__).resolve().parents[2]
SITE = ROOT / "build" / "site"
SCREENSHOTS = ROOT / "build" / "screenshots"
TIMINGS = ROOT / "build" / "e2e-timings.json"
LOAD_TIMEOUT = 60_000
"""Milliseconds a page may take to become interactive: Pyodide starts in every tab."""

# when the demo page first says it is interactive, in ms since its navigation started
READY_AT = """new MutationObserver((_, observer) => {
    if (document.body?.dataset.ready === "true") {
        window.readyMs = performance.now();
        observer.disconnect();
    }
}).observe(document, {subtree: true, attributes: true, attributeFilter: ["data-ready"]});"""

Page = async_api.Page


def _import_demo_server() -> ModuleType:
    """``wasm-demo/server.py`` by path: ``wasm-demo`` is not a package."""
    spec = importlib.util.spec_from_file_location("demo_server", ROOT / "wasm-demo" / "server.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look up their module while the class is built
    spec.loader.exec_module(module)
    return module


demo_server = _import_demo_server()


class Demo:
    """The demo server, which a test may stop and start again on the same port."""

    def __init__(self, server: Any) -> None:
        self.server = server
        self.port: int = server.rpc.port

    @property
    def url(self) -> str:
        return str(self.server.url)

    @property
    def machine(self) -> Any:
        """The shared ``upload`` machine (a new one after each start)."""
        return self.server.machine

    async def stop(self) -> None:
        await self.server.stop()

    async def start(self) -> None:
        self.server = await demo_server.serve(SITE, "127.0.0.1", self.port)


@pytest.fixture(scope="session")
def site() -> Path:
    if (
        not (SITE / "index.html").is_file()
        or not (SITE / "pyodide" / "pyodide-lock.json").is_file()
    ):
        pytest.fail("build/site is missing or has no demo: run `make site` first")
    return SITE


@pytest_asyncio.fixture(scope="session", loop_scope="session")
async def demo(site: Path) -> AsyncIterator[Demo]:
    demo = Demo(await demo_server.serve(site, "127.0.0.1", 0))
    yield demo
    await demo.stop()


@pytest.fixture(scope="session")
def watch() -> Watch:
    return Watch()


@pytest.fixture(autouse=True)
def no_errors_and_no_leaks(watch: Watch) -> Iterator[None]:
    """Fail the test during which a page logged an error or tried to leave 127.0.0.1."""
    yield
    watch.check()


@pytest_asyncio.fixture(scope="session", loop_scope="session")
async def context(watch: Watch) -> AsyncIterator[Any]:
    """One browser context (each tab starts its own Pyodide) that only reaches 127.0.0.1."""
    async with async_api.async_playwright() as playwright:
        browser = await playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        context = await browser.new_context()
        await keep_local(context, watch)
        await context.add_init_script(READY_AT)
        yield context
        await browser.close()


@pytest_asyncio.fixture(scope="session", loop_scope="session")
async def new_page(context: Any, watch: Watch) -> Callable[[], Awaitable[Page]]:
    """Open a tab whose console errors go to the watch."""

    async def new_page() -> Page:
        return watch_page(await context.new_page(), watch)

    return new_page


@pytest.fixture(scope="session")
def timings() -> Iterator[dict[str, float]]:
    """Measurements the tests make, saved to ``build/e2e-timings.json``."""
    timings: dict[str, float] = {}
    yield timings
    TIMINGS.write_text(json.dumps(timings, indent=2) + "\n")


@pytest.fixture(scope="session")
def open_demo(new_page: Callable[[], Awaitable[Page]]) -> Callable[[str], Awaitable[Page]]:
    """Open a demo tab at a URL, and wait until it is interactive."""

    async def open_demo(url: str) -> Page:
        page = await new_page()
        await page.goto(url)
        await page.wait_for_selector('body[data-ready="true"]', timeout=LOAD_TIMEOUT)
        return page

    return open_demo


@pytest.fixture(scope="session")
def screenshot() -> Callable[[Page, str], Awaitable[None]]:
    """Save a full-page screenshot as ``build/screenshots/e2e-<name>.png`` (not committed)."""

    async def screenshot(page: Page, name: str) -> None:
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        await page.screenshot(path=SCREENSHOTS / f"e2e-{name}.png", full_page=True)

    return screenshot
