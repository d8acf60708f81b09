"""The demo's live schema graph and its "Inspect the machine" link: the demo server's am-dbg
(local mode streams the tab's machine to it, remote mode the server's), and with no server at all
the static inspector opening what the tab recorded."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest

from asyncmachine.testing.playwright import expect_state, wait_ready

async_api = pytest.importorskip("playwright.async_api")

pytestmark = pytest.mark.asyncio(loop_scope="session")

Page = async_api.Page
expect = async_api.expect
OpenDemo = Callable[[str], Awaitable[Page]]


async def test_the_schema_is_a_live_graph(
    open_demo: OpenDemo, demo: Any, screenshot: Callable[[Page, str], Awaitable[None]]
) -> None:
    page = await open_demo(f"{demo.url}?mode=local")
    await expect_state(page, "upload", "Online")
    graph = page.locator("#schema svg.schema-graph")
    await expect(graph.locator('.node[data-state="Online"]')).to_have_class("node active")
    await page.locator('button[data-state="Selecting"]').click()
    await expect(graph.locator('.node[data-state="Selecting"]')).to_have_class("node active added")
    assert await graph.locator(".node").count() == 11  # the schema's 10 states and Exception
    await page.locator("#schema").scroll_into_view_if_needed()
    await screenshot(page, "schema-graph")
    await page.close()


async def test_inspect_a_local_tab_in_the_demo_servers_am_dbg(
    open_demo: OpenDemo, demo: Any, new_page: Callable[[], Awaitable[Page]]
) -> None:
    page = await open_demo(f"{demo.url}?mode=local")
    await expect_state(page, "upload", "Online")
    await page.locator('button[data-state="Selecting"]').click()
    dbg = demo.server.inspector
    tab_id = await page.evaluate("globalThis.__asyncmachine__.tabId")
    # the server's own "upload" is connected too: the tab's keeps its id with the tab's tag
    key = f"upload@{tab_id[:6]}"
    async with page.context.expect_page() as opened:
        await page.locator("#inspect").click()
    inspector = await opened.value
    await inspector.wait_for_selector("body[data-state=ready]")
    await inspector.wait_for_selector(f'.mach[data-id="{key}"][data-status="connected"]')
    await inspector.wait_for_selector('.mach[data-id="upload"][data-status="connected"]')
    assert inspector.url.startswith(dbg.url)
    await inspector.locator(f'.mach[data-id="{key}"]').click()
    await expect(inspector.locator('#chips .chip[data-state="Selecting"]')).to_have_class(
        "chip active"
    )
    await inspector.close()
    await page.close()


async def test_inspect_the_remote_machine(open_demo: OpenDemo, demo: Any) -> None:
    page = await open_demo(f"{demo.url}?mode=remote")
    await wait_ready(page, "upload")
    href = await page.evaluate(
        "() => { const a = document.querySelector('#inspect'); a.click(); return a.href; }"
    )
    assert href == f"{demo.server.inspector.url}?machine=upload"
    await page.close()


async def test_inspect_without_a_server_opens_what_the_tab_recorded(
    new_page: Callable[[], Awaitable[Page]], demo: Any, site: Path
) -> None:
    page = await new_page()
    static = site / "demo-server.json"  # static hosting: no server, no am-dbg
    await page.route("**/demo-server.json", lambda route: route.fulfill(path=static))
    await page.goto(f"{demo.url}?mode=local")
    await page.wait_for_selector('body[data-ready="true"]', timeout=60_000)
    await expect_state(page, "upload", "Online")
    await page.locator('button[data-state="Selecting"]').click()
    await expect_state(page, "upload", "Selecting")
    async with page.context.expect_page() as opened:
        await page.locator("#inspect").click()
    inspector = await opened.value
    await inspector.wait_for_selector('#conn[data-state="file"]')
    await inspector.wait_for_selector('.mach[data-id="upload"][aria-selected="true"]')
    await expect(inspector.locator('#chips .chip[data-state="Selecting"]')).to_have_class(
        "chip active"
    )
    # the steps were derived in the page (Pyodide) from what it recorded
    await inspector.locator("#timeline .tl-row", has_text="Selecting").first.click()
    await expect(inspector.locator(".d-sec", has_text="Resolution")).to_be_visible()
    await inspector.close()
    await page.close()
