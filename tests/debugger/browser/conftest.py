"""Chromium fixtures for the inspector: a real am-dbg per test, the built site on 127.0.0.1.

Async Playwright on one session loop (am-dbg and the machines run on it too), in a pytest process
of its own (``make pytest-inspector``): the sync Playwright fixtures of ``tests/browser`` keep an
event loop marked as running. Requests that would leave 127.0.0.1 are blocked; they and console
errors fail the test that caused them. Screenshots go to ``build/screenshots/``.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio
from support import (
    CHROMIUM,
    CHROMIUM_ARGS,
    Watch,
    keep_local,
    serve_files,
    watch_page,
)

async_api = pytest.importorskip("playwright.async_api")
pytest.importorskip("websockets")

ROOT = Path(__file__).resolve().parents[3]
SITE = ROOT / "build" / "site"
SCREENSHOTS = ROOT / "build" / "screenshots"
PAGES = {"/dbg-page.html": Path(__file__).with_name("dbg-page.html")}
DESKTOP = {"width": 1280, "height": 800}
MOBILE = {"width": 390, "height": 844}

Page = Any


@pytest.fixture(scope="session")
def site_url() -> Iterator[str]:
    """``build/site`` (with the inspector in ``/inspector/``) on a free port."""
    if not (SITE / "inspector" / "index.html").is_file():
        pytest.fail("build/site/inspector is missing: run `make site` first")
    with serve_files(SITE, PAGES) as url:
        yield url


@pytest_asyncio.fixture(scope="session", loop_scope="session")
async def browser() -> AsyncIterator[Any]:
    async with async_api.async_playwright() as playwright:
        browser = await playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield browser
        await browser.close()


@pytest.fixture(scope="session")
def watch() -> Watch:
    return Watch()


@pytest.fixture(autouse=True)
def no_errors_and_no_leaks(watch: Watch) -> Iterator[None]:
    """Fail the test during which a page logged an error or tried to leave 127.0.0.1."""
    yield
    watch.check()


async def watched_page(browser: Any, watch: Watch, **options: Any) -> tuple[Any, Page]:
    """A page in a new context that only reaches 127.0.0.1, its console errors watched."""
    context = await browser.new_context(**options)
    await keep_local(context, watch)
    return context, watch_page(await context.new_page(), watch)


@pytest_asyncio.fixture(loop_scope="session")
async def new_page(browser: Any, watch: Watch) -> AsyncIterator[Callable[..., Awaitable[Page]]]:
    """Open pages, each in a fresh context; all closed after the test."""
    contexts: list[Any] = []

    async def new_page(viewport: dict[str, int] | None = None, dark: bool = False) -> Page:
        context, page = await watched_page(
            browser,
            watch,
            viewport=viewport or DESKTOP,
            color_scheme="dark" if dark else "light",
            accept_downloads=True,
        )
        contexts.append(context)
        return page

    yield new_page
    for context in contexts:
        await context.close()


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def tab(browser: Any, site_url: str, watch: Watch) -> AsyncIterator[Page]:
    """A tab with Pyodide and the JS bridge loaded (``window.am``), shared by a module."""
    context, page = await watched_page(browser, watch)
    await page.goto(f"{site_url}/dbg-page.html")
    await page.wait_for_function(
        "document.getElementById('status').textContent === 'ready'", timeout=60_000
    )
    yield page
    await context.close()


@pytest_asyncio.fixture(loop_scope="session")
async def dbg() -> AsyncIterator[Any]:
    """A fresh am-dbg for each test, on the session loop."""
    from asyncmachine.debugger import DebugServer
    from asyncmachine.telemetry import _debug_stream

    server = DebugServer()
    await server.start("127.0.0.1", 0)
    yield server
    await server.stop()
    for stream in list(_debug_stream._streams.values()):
        await stream.close()
    _debug_stream._streams.clear()


@pytest.fixture(scope="session")
def screenshot() -> Callable[[Page, str], Awaitable[None]]:
    """Save ``build/screenshots/inspector-<name>.png``."""

    async def screenshot(page: Page, name: str) -> None:
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        await page.screenshot(path=SCREENSHOTS / f"inspector-{name}.png")

    return screenshot


@pytest.fixture
def inspector(new_page: Callable[..., Awaitable[Page]]) -> Callable[..., Awaitable[Page]]:
    """Open the inspector at a URL and wait until it has shown what it loaded."""

    async def open_inspector(url: str, **kw: Any) -> Page:
        page = await new_page(**kw)
        await page.goto(url)
        await page.wait_for_selector("body[data-state=ready]", timeout=15_000)
        return page

    return open_inspector
