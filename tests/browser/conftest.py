"""Chromium fixtures: the built site served on 127.0.0.1 and one page with the bridge loaded.

These tests run on CPython only (they drive a browser); the suite inside Pyodide skips them.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from support import CHROMIUM, CHROMIUM_ARGS, serve_files

playwright_sync = pytest.importorskip("playwright.sync_api")

ROOT = Path(__file__).resolve().parents[2]
SITE = ROOT / "build" / "site"
PAGES = {
    "/bridge.html": Path(__file__).with_name("bridge.html"),
    "/react-app.mjs": ROOT / "build" / "test-react" / "react-app.mjs",  # test_js_api.py bundles it
}


@pytest.fixture(scope="session")
def site_url() -> Iterator[str]:
    if not (SITE / "pyodide" / "pyodide-lock.json").exists():
        pytest.fail("build/site is missing: run `make site` first")
    with serve_files(SITE, PAGES) as url:  # the built site, plus this folder's test pages
        yield url


class PageWatch:
    """Console errors and requests that tried to leave 127.0.0.1."""

    def __init__(self) -> None:
        self.errors: list[str] = []
        self.blocked: list[str] = []


@pytest.fixture(scope="session")
def browser() -> Iterator[Any]:
    with playwright_sync.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield browser
        browser.close()


def _open_page(browser: Any, site_url: str) -> Iterator[tuple[Any, PageWatch]]:
    context = browser.new_context()
    watch = PageWatch()

    def route(route: Any) -> None:
        url = route.request.url
        if url.startswith(("http://127.0.0.1", "ws://127.0.0.1", "data:")):
            route.continue_()
        else:
            watch.blocked.append(url)
            route.abort()

    context.route("**/*", route)
    page = context.new_page()
    page.on("console", lambda msg: msg.type == "error" and watch.errors.append(msg.text))
    page.on("pageerror", lambda err: watch.errors.append(str(err)))
    page.goto(f"{site_url}/bridge.html")
    page.wait_for_function(
        "document.getElementById('status').textContent === 'ready'", timeout=60_000
    )
    yield page, watch
    context.close()
    assert watch.errors == [], f"console errors: {watch.errors}"
    assert watch.blocked == [], f"requests left 127.0.0.1: {watch.blocked}"


@pytest.fixture(scope="module")
def bridge_page(browser: Any, site_url: str) -> Iterator[tuple[Any, PageWatch]]:
    """One page with Pyodide and the bridge loaded, shared by a module's tests."""
    yield from _open_page(browser, site_url)


class RpcServer:
    """An ``asyncmachine.rpc.Server`` on 127.0.0.1 with one shared machine, on its own loop
    (the browser tests drive Playwright synchronously)."""

    def __init__(self) -> None:
        import asyncio

        import asyncmachine as am
        from asyncmachine import rpc

        self.loop = asyncio.new_event_loop()
        self.machine = am.Machine(
            {
                "Idle": am.State(auto=True, remove=("Busy",)),
                "Busy": am.State(remove=("Idle",)),
                "Clicked": am.State(multi=True),
            },
            id="shared",
        )
        self.machine.add1("Idle")
        self.server = rpc.Server([self.machine], heartbeat=1.0)
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()
        self.call(self.server.start())

    def call(self, coro: Any) -> Any:
        import asyncio

        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(30)

    def run(self, fn: Any) -> Any:
        """Run ``fn()`` on the server's loop (the machine is not thread-safe)."""

        async def inside() -> Any:
            return fn()

        return self.call(inside())

    def close(self) -> None:
        self.call(self.server.stop())
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(10)
        self.loop.close()


@pytest.fixture(scope="module")
def rpc_server() -> Iterator[RpcServer]:
    pytest.importorskip("websockets")
    server = RpcServer()
    yield server
    server.close()


@pytest.fixture(scope="module")
def second_page(browser: Any, site_url: str) -> Iterator[tuple[Any, PageWatch]]:
    """Another tab, in its own browser context."""
    yield from _open_page(browser, site_url)
