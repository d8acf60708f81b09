"""A machine in a browser tab (Pyodide, through the JS bridge) streams to am-dbg with the `debug`
option, keeps running while am-dbg is away, and catches up when it comes back."""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable
from typing import Any

import pytest
from playwright.async_api import expect

pytestmark = pytest.mark.asyncio(loop_scope="session")

Page = Any
SCHEMA = """{
    Start: {},
    Ready: {auto: true, require: ["Start"]},
    Clicked: {multi: true, require: ["Ready"]},
}"""


async def test_a_pyodide_page_machine_appears(
    dbg: Any, tab: Page, inspector: Callable[..., Awaitable[Page]], screenshot: Any
) -> None:
    tab_id = await tab.evaluate(
        """([url]) => {
            const m = am.machine("""
        + SCHEMA
        + """, {id: "tab-machine", debug: url});
            m.bind({ClickedState(e) { m.log("clicked " + e.args.n); }});
            m.add1("Start");
            for (let n = 0; n < 5; n++) m.add1("Clicked", {n});
            window.tabMachine = m;
            return globalThis.__asyncmachine__.tabId;
        }""",
        [f"ws://{dbg.addr}/dbg"],
    )
    page = await inspector(f"{dbg.url}?machine=tab-machine")
    await page.wait_for_selector('.mach[data-id="tab-machine"][data-status="connected"]')
    await expect(page.locator("#tl-count")).to_have_text("7")  # Start, auto Ready, 5 clicks
    await expect(page.locator(".group-title")).to_contain_text(f"Browser tab {tab_id[:6]}")
    mach = dbg.session.machines["tab-machine"]
    assert mach.proc["runtime"] == "pyodide" and mach.proc["tab"] == tab_id
    assert await page.locator('#chips .chip[data-state="Clicked"] .tk').text_content() == "9"
    await screenshot(page, "pyodide-tab")
    await tab.evaluate("window.tabMachine.dispose()")
    await page.wait_for_selector('.mach[data-id="tab-machine"][data-status="disposed"]')


async def test_the_page_keeps_running_while_am_dbg_is_away(dbg: Any, tab: Page, watch: Any) -> None:
    from asyncmachine.debugger import DebugServer

    await tab.evaluate(
        """([url]) => {
            window.steady = am.machine("""
        + SCHEMA
        + """, {id: "steady-tab", debug: url});
            window.steady.add1("Start");
        }""",
        [f"ws://{dbg.addr}/dbg"],
    )
    await _until(lambda: "steady-tab" in dbg.session.machines, tab)
    port = dbg.port
    watch.expected.append(re.compile(r"WebSocket connection to 'ws://127\.0\.0\.1:\d+/dbg' failed"))
    await dbg.stop()
    ticks = await tab.evaluate(
        """() => {
            for (let n = 0; n < 12000; n++) window.steady.add1("Clicked");
            return window.steady.tick("Clicked");
        }"""
    )
    assert ticks == 2 * 12000 - 1  # every mutation ran
    again = DebugServer()
    await again.start("127.0.0.1", port)
    try:
        await _until(lambda: _caught_up(again), tab, timeout=20)
        mach = again.session.machines["steady-tab"]
        dropped = sum(1 for line in mach.ring if '"kind":"dropped"' in line)
        assert dropped >= 1  # the outbox kept the newest 10,000 and counted the rest
        assert await tab.evaluate("window.steady.tick('Clicked')") == 23999
    finally:
        await again.stop()


def _caught_up(server: Any) -> bool:
    mach = server.session.machines.get("steady-tab")
    return mach is not None and any('"Clicked":23999' in line for line in mach.ring)


async def _until(check: Callable[[], bool], page: Page, timeout: float = 10.0) -> None:
    """Poll a Python-side condition while the page's event loop keeps sending."""
    for _ in range(int(timeout / 0.05)):
        if check():
            return
        await page.wait_for_timeout(50)
    raise AssertionError("condition not met in time")
