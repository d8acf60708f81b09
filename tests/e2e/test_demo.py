"""The upload demo end to end: the machine in the page (local mode), two tabs sharing the demo
server's machine (remote mode), the server going away and coming back, and no server at all.

The page's conventions: machine id ``upload``; ``?mode=local|remote``; ``body[data-ready]`` once
interactive; a button ``[data-state=X]`` adds X and is disabled when ``canAdd1`` says no; chips
``[data-chip=X]`` carry X's tick in ``data-tick``; ``#log``, ``#connection``, ``#offline-notice``.
"""

from __future__ import annotations

import re
import socket
import statistics
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio

import asyncmachine as am
from asyncmachine.testing.playwright import (
    add1,
    clock,
    expect_clock,
    expect_not_state,
    expect_state,
    expect_tick,
    string_all,
    tick,
    wait_ready,
)

async_api = pytest.importorskip("playwright.async_api")

pytestmark = pytest.mark.asyncio(loop_scope="session")

Page = async_api.Page
expect = async_api.expect
UPLOAD = "upload"
UPLOAD_TIMEOUT = 15.0
"""Seconds: a simulated upload takes 20 chunks of 150 ms."""
# the browser reports each refused connection attempt on its console
REFUSED_SOCKET = re.compile(
    r"^WebSocket connection to 'ws://127\.0\.0\.1:\d+/rpc' failed: .*net::ERR_CONNECTION_REFUSED$"
)
# a first connect that fails asks the same URL over HTTP why (the socket API does not say)
REFUSED_PROBE = re.compile(r"^Failed to load resource: net::ERR_CONNECTION_REFUSED$")

OpenDemo = Callable[[str], Awaitable[Page]]
Screenshot = Callable[[Page, str], Awaitable[None]]


def button(page: Page, state: str) -> Any:
    return page.locator(f'button[data-state="{state}"]')


async def click(page: Page, state: str) -> None:
    """Click the button of ``state`` as a user would: in the tab brought to the front (Chromium
    renders background tabs rarely, and Playwright waits for a rendered frame before it clicks)."""
    await page.bring_to_front()
    await button(page, state).click()


def chip(page: Page, state: str) -> Any:
    return page.locator(f'[data-chip="{state}"]')


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def local_tab(open_demo: OpenDemo, demo: Any, timings: dict[str, float]) -> Page:
    page = await open_demo(f"{demo.url}?mode=local")
    timings["local_tab_interactive_ms"] = await page.evaluate("readyMs")
    return page


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def tabs(open_demo: OpenDemo, demo: Any, timings: dict[str, float]) -> tuple[Page, Page]:
    """Two remote tabs on the demo server's machine, opened one after the other (Pyodide's start
    is CPU-bound: two at once take longer than both in a row)."""
    pages = []
    for name in ("a", "b"):
        page = await open_demo(f"{demo.url}?mode=remote")
        timings[f"remote_tab_{name}_interactive_ms"] = await page.evaluate("readyMs")
        pages.append(page)
    return pages[0], pages[1]


async def test_local_upload_reaches_done(local_tab: Page, screenshot: Screenshot) -> None:
    page = local_tab
    await expect(page.locator("body")).to_have_attribute("data-mode", "local")
    await expect(page.locator("#connection")).to_contain_text("Local")
    await expect_state(page, UPLOAD, "Online")
    await expect(button(page, "Uploading")).to_be_disabled()  # nothing selected yet
    await click(page, "Selecting")
    await expect_state(page, UPLOAD, "Selecting")
    await expect(page.locator("#chooser")).to_be_visible()
    await click(page, "Selected")  # "Use this file": the first sample, report.pdf
    await expect_state(page, UPLOAD, "Uploading")
    await click(page, "Paused")
    await expect_state(page, UPLOAD, "Paused")
    await expect_not_state(page, UPLOAD, "Busy")
    await click(page, "Uploading")  # resume
    await expect_state(page, UPLOAD, "Done", timeout=UPLOAD_TIMEOUT)
    done = await tick(page, UPLOAD, "Done")
    await expect(chip(page, "Done")).to_have_attribute("data-tick", str(done))
    await expect(chip(page, "Done")).to_have_class(re.compile(r"\bactive\b"))
    await expect(page.locator("#file-status")).to_have_text("Uploaded")
    await expect(page.locator("#file-name")).to_have_text("report.pdf")
    assert await tick(page, UPLOAD, "Exception") == 0
    await screenshot(page, "local")


async def test_local_cancel_shows_its_reason(local_tab: Page) -> None:
    page = local_tab
    uploads = await tick(page, UPLOAD, "Uploading")
    await click(page, "Selecting")
    await page.locator("#samples").get_by_text("notes.txt").click()  # an empty file
    await click(page, "Selected")
    await expect_state(page, UPLOAD, "Selected")
    log = page.locator("#log li")
    await expect(log.filter(has_text="[cancel]").last).to_contain_text("by UploadingEnter")
    await expect(log.filter(has_text="[exter]").last).to_have_text(
        "[exter] refused: notes.txt is empty"
    )
    assert await tick(page, UPLOAD, "Uploading") == uploads
    # canAdd1 runs the same negotiation, so the button says no before anyone clicks it
    await expect(button(page, "Uploading")).to_be_disabled()


async def test_remote_tabs_converge(
    tabs: tuple[Page, Page], demo: Any, screenshot: Screenshot
) -> None:
    a, b = tabs
    for page in tabs:
        await expect(page.locator("body")).to_have_attribute("data-mode", "remote")
        await expect_state(page, UPLOAD, "Ready", connection=True)
        await expect(page.locator("#connection")).to_contain_text("Ready")
    offline = await tick(b, UPLOAD, "Offline")
    await click(a, "Offline")
    await expect_tick(b, UPLOAD, "Offline", offline + 1)
    await expect(chip(b, "Offline")).to_have_attribute("data-tick", str(offline + 1))
    await click(b, "Online")
    await expect_state(a, UPLOAD, "Online")
    server = demo.machine.clock()
    for page in tabs:
        await expect_clock(page, UPLOAD, server)
    assert await clock(a, UPLOAD) == await clock(b, UPLOAD) == server
    # mutations from the helpers go through the server too, and return its result
    assert await add1(b, UPLOAD, "Offline") == am.Executed
    assert demo.machine.is1("Offline")
    assert await add1(b, UPLOAD, "Online") == am.Executed
    # an upload started in tab A runs on the server; tab B shows its states and progress
    await click(a, "Selecting")
    await expect(b.locator("#chooser")).to_be_visible()
    await click(a, "Selected")
    await expect_state(b, UPLOAD, "Uploading")
    await expect_state(b, UPLOAD, "Done", timeout=UPLOAD_TIMEOUT)
    await expect(b.locator("#file-name")).to_have_text("report.pdf")
    await expect(b.locator("#file-status")).to_have_text("Uploaded")
    await expect_clock(a, UPLOAD, demo.machine.clock())
    assert await string_all(a, UPLOAD) == await string_all(b, UPLOAD) == demo.machine.string_all()
    await screenshot(b, "remote")


async def test_remote_round_trip(tabs: tuple[Page, Page], timings: dict[str, float]) -> None:
    times = await tabs[0].evaluate(
        """async () => {
        const m = __asyncmachine__.machines.get("upload");
        const times = [];
        for (let i = 0; i < 20; i++) {
            const started = performance.now();
            await m.add1(i % 2 ? "Online" : "Offline");
            times.push(performance.now() - started);
        }
        return times;
    }"""
    )
    timings["remote_add1_round_trip_median_ms"] = statistics.median(times)
    timings["remote_add1_round_trip_max_ms"] = max(times)
    assert statistics.median(times) < 500


async def test_a_phone_screen_has_no_sideways_scroll(tabs: tuple[Page, Page]) -> None:
    """At 390 px (a phone), in remote mode (the longer mode label is chosen), nothing overflows
    the page's width."""
    page = tabs[0]
    before = page.viewport_size
    await page.set_viewport_size({"width": 390, "height": 844})
    try:
        widths = await page.evaluate(
            "[document.documentElement.scrollWidth, document.documentElement.clientWidth]"
        )
    finally:
        await page.set_viewport_size(before)
    assert widths[0] <= widths[1], f"page is {widths[0]} px wide in a {widths[1]} px viewport"


async def test_server_restart(tabs: tuple[Page, Page], demo: Any, watch: Any) -> None:
    watch.expected.append(REFUSED_SOCKET)  # reconnect attempts while the server is down
    await demo.stop()
    for page in tabs:
        await expect_state(page, UPLOAD, "Disconnected", connection=True)
        await expect(page.locator("#connection")).to_contain_text("Disconnected")
        await expect(button(page, "Selecting")).to_be_disabled()
    await demo.start()  # the same port: the tabs reconnect by themselves
    for page in tabs:
        await expect_state(page, UPLOAD, "Ready", connection=True, timeout=15)
        await expect(page.locator("#connection")).to_contain_text("Ready")
        await expect_clock(page, UPLOAD, demo.machine.clock())  # the new server's machine
    a, b = tabs
    await click(a, "Offline")
    await expect_state(b, UPLOAD, "Offline")
    await click(b, "Online")
    await expect_state(a, UPLOAD, "Online")


async def test_no_server_at_load(
    new_page: Callable[[], Awaitable[Page]],
    demo: Any,
    site: Path,
    watch: Any,
    screenshot: Screenshot,
) -> None:
    watch.expected += [REFUSED_SOCKET, REFUSED_PROBE]
    with socket.socket() as closed:
        closed.bind(("127.0.0.1", 0))  # a port nobody listens on: connections are refused
        refused = {"rpc": f"ws://127.0.0.1:{closed.getsockname()[1]}/rpc"}
        page = await new_page()
        await page.route("**/demo-server.json", lambda route: route.fulfill(json=refused))
        await page.goto(f"{demo.url}?mode=remote")
        await page.wait_for_selector('body[data-ready="true"]', timeout=60_000)
        notice = page.locator("#offline-notice")
        await expect(notice).to_be_visible()
        await expect(notice).to_contain_text("can't be reached (refused)")
        await expect(page.locator("#connection")).to_contain_text("unavailable")
        await screenshot(page, "offline")
    # local mode still works, without reloading
    await page.locator("#use-local").click()
    await page.wait_for_selector('body[data-ready="true"][data-mode="local"]')
    await expect(notice).to_be_hidden()
    await wait_ready(page, UPLOAD)
    await click(page, "Selecting")
    await expect_state(page, UPLOAD, "Selecting")
    # static hosting (Netlify) has no server at all: its demo-server.json says so
    static = site / "demo-server.json"
    await page.unroute("**/demo-server.json")
    await page.route("**/demo-server.json", lambda route: route.fulfill(path=static))
    await page.get_by_label("On the demo server").check()
    await page.wait_for_selector('body[data-ready="true"][data-mode="remote"]')
    await expect(notice).to_contain_text("static hosting")
    await page.close()
