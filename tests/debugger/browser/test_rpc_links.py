"""One timeline across a browser tab and a server: a tab's mutation of a remote machine is linked
to the server machine's transition it caused, in am-dbg and in the inspector.

The server machine (hosted by ``rpc.Server``) and the tab's own machine both stream to am-dbg. A
handler of the tab's machine mutates the remote one: the server's transition names the tab
machine's transition as its source (the RPC client reads it from ``am.current_transition()``);
a mutation from a click (no handler) names the tab it came from.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import pytest
import pytest_asyncio
from playwright.async_api import expect

import asyncmachine as am
from asyncmachine import rpc, telemetry

pytestmark = pytest.mark.asyncio(loop_scope="session")

Page = Any


@pytest_asyncio.fixture(loop_scope="session")
async def server(dbg: Any) -> AsyncIterator[Any]:
    mach = am.Machine({"Busy": am.State(), "Clicked": am.State(multi=True)}, id="shared")
    telemetry.debug(mach, dbg.addr)
    srv = rpc.Server([mach])
    await srv.start("127.0.0.1", 0)
    yield srv
    await srv.stop()


async def test_a_tabs_mutation_of_a_remote_machine_links_to_the_servers_transition(
    dbg: Any, server: Any, tab: Page, inspector: Callable[..., Awaitable[Page]], screenshot: Any
) -> None:
    tab_id = await tab.evaluate(
        """async ([rpcUrl, dbgUrl]) => {
            const remote = await am.connect(rpcUrl, {id: "shared", clientId: "tab-client"});
            const ui = am.machine({Go: {}, Clicked: {multi: true}}, {id: "tab-ui", debug: dbgUrl});
            // a handler of the tab's machine mutates the server's machine
            ui.bind({GoState() { remote.add1("Busy"); }});
            ui.add1("Go");
            await remote.when1("Busy");
            await remote.add1("Clicked");  // as a button would: no handler, no transition
            window.linked = {remote, ui};
            return globalThis.__asyncmachine__.tabId;
        }""",
        [server.url, f"ws://{dbg.addr}/dbg"],
    )
    page = await inspector(f"{dbg.url}?machine=shared")
    await page.wait_for_selector('.mach[data-id="tab-ui"]')
    await expect(page.locator("#tl-count")).to_have_text("2")
    shared = [json.loads(line) for line in dbg.session.machines["shared"].ring]
    tab_txs = [json.loads(line) for line in dbg.session.machines["tab-ui"].ring]
    go = next(m for m in tab_txs if m["kind"] == "tx" and m["called"] == ["Go"])
    busy = next(m for m in shared if m["kind"] == "tx" and m["called"] == ["Busy"])
    clicked = next(m for m in shared if m["kind"] == "tx" and m["called"] == ["Clicked"])
    assert busy["source"]["mach"] == "tab-ui" and busy["source"]["tx"] == go["tx"]
    assert busy["source"]["client"] == "tab-client" and busy["source"]["tab"] == tab_id
    assert clicked["source"]["tab"] == tab_id and not clicked["source"].get("tx")
    # in the inspector: from the server's transition to the tab's, one click
    await page.locator("#timeline .tl-row", has_text="Busy").click()
    await page.locator(".d-sec", has_text="Caused by").locator("button.txlink").click()
    await page.wait_for_selector('.mach[data-id="tab-ui"][aria-selected="true"]')
    await expect(page.locator(".d-title")).to_contain_text("Go")
    await page.click("#tab-sequence")
    await expect(page.locator("#sequence .msg")).to_have_count(2)  # tab-ui → shared, tab → shared
    await screenshot(page, "rpc-sequence")
