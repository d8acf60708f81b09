"""``asyncmachine.testing.playwright`` against the bridge test page in Chromium; its remote
machines (Promises, ``connection=True``) are exercised by the demo's tests in ``test_demo.py``.

Here rather than in ``tests/browser``: the helpers are async, and the sync Playwright fixtures
there keep an event loop marked as running for the whole session.
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio

import asyncmachine as am
from asyncmachine.testing import playwright as amtest

async_api = pytest.importorskip("playwright.async_api")

pytestmark = pytest.mark.asyncio(loop_scope="session")

Page = async_api.Page
BRIDGE_PAGE = Path(__file__).resolve().parents[1] / "browser" / "bridge.html"
SCHEMA = '{Idle: {remove: ["Busy"]}, Busy: {remove: ["Idle"]}}'


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def bridge_page(new_page: Callable[[], Awaitable[Page]], demo: Any) -> AsyncIterator[Page]:
    """The bridge test page of ``tests/browser``, at the demo server's origin."""
    page = await new_page()
    url = f"{demo.url}bridge.html"
    await page.route(url, lambda route: route.fulfill(path=BRIDGE_PAGE))
    await page.goto(url)
    await page.wait_for_function("window.am !== undefined", timeout=60_000)
    yield page
    await page.close()


@pytest_asyncio.fixture(loop_scope="session")
async def page(bridge_page: Page) -> AsyncIterator[Page]:
    """The page with a fresh machine ``local``: ``(Idle:1) [Busy:0 Exception:0]``."""
    await bridge_page.evaluate(f"am.machine({SCHEMA}, {{id: 'local'}}).add1('Idle')")
    yield bridge_page
    await bridge_page.evaluate("__asyncmachine__.machines.get('local').dispose()")


async def test_reads_and_mutations(page: Page) -> None:
    await page.evaluate(
        """() => { __asyncmachine__.machines.get("local").bind(
            {BusyEnter: (e) => e.args.allowed !== false}); }"""
    )
    assert await amtest.string_all(page, "local") == "(Idle:1) [Busy:0 Exception:0]"
    assert await amtest.add1(page, "local", "Busy", {"allowed": False}) == am.Canceled
    assert await amtest.add1(page, "local", "Busy", {"allowed": True}) == am.Executed
    assert await amtest.tick(page, "local", "Busy") == 1
    assert await amtest.clock(page, "local", ["Busy", "Idle"]) == {"Busy": 1, "Idle": 2}
    assert await amtest.clock(page, "local") == {"Busy": 1, "Exception": 0, "Idle": 2}
    assert await amtest.set(page, "local", ["Idle"]) == am.Executed
    assert await amtest.remove1(page, "local", "Idle") == am.Executed
    assert await amtest.string_all(page, "local") == "() [Busy:2 Exception:0 Idle:4]"


async def test_waits_for_a_later_mutation(page: Page) -> None:
    assert await amtest.tick(page, "local", "Busy") == 0
    await page.evaluate("setTimeout(() => __asyncmachine__.machines.get('local').add1('Busy'), 50)")
    await amtest.expect_state(page, "local", "Busy")
    await amtest.expect_not_state(page, "local", "Idle")
    await amtest.expect_states(page, "local", ["Busy"])
    await amtest.expect_tick(page, "local", "Busy", 1)
    await amtest.expect_clock(page, "local", await amtest.clock(page, "local"))


async def test_wait_ready_waits_for_the_machine_to_appear(page: Page) -> None:
    await page.evaluate("setTimeout(() => window.later = am.machine({A: {}}, {id: 'later'}), 30)")
    await amtest.wait_ready(page, "later")
    assert await amtest.string_all(page, "later") == "() [A:0 Exception:0]"
    await page.evaluate("later.dispose()")
    with pytest.raises(
        LookupError, match=r"no machine 'later' in the page \(live machines: 'local'\)"
    ):
        await amtest.tick(page, "later", "A")


async def test_timeouts_show_the_machine_states(page: Page) -> None:
    now = "now (Idle:1) [Busy:0 Exception:0]"
    cases = [
        (amtest.expect_state(page, "local", "Busy", timeout=0.1), "expected Busy within 0.1 s"),
        (amtest.expect_not_state(page, "local", "Idle", timeout=0.1), "expected not Idle"),
        (amtest.expect_states(page, "local", ["Idle", "Busy"], timeout=0.1), "expected Idle Busy"),
        (amtest.expect_tick(page, "local", "Busy", 3, timeout=0.1), "expected tick(Busy) >= 3"),
        (
            amtest.expect_clock(page, "local", {"Idle": 7}, timeout=0.1),
            "expected clock {'Idle': 7}",
        ),
    ]
    for wait, expected in cases:
        with pytest.raises(AssertionError) as failed:
            await wait
        assert str(failed.value).startswith(f"machine 'local': {expected}")
        assert str(failed.value).endswith(now)


async def test_timeout_without_the_machine(page: Page) -> None:
    with pytest.raises(AssertionError) as failed:
        await amtest.wait_ready(page, "nope", timeout=0.1)
    assert str(failed.value) == (
        "machine 'nope': expected to be in the page within 0.1 s; "
        "now no machine 'nope' in the page (live machines: 'local')"
    )


async def test_bad_input_fails_clearly(page: Page) -> None:
    with pytest.raises(TypeError, match="list of state names, got the string 'Busy'"):
        await amtest.expect_states(page, "local", "Busy")
    with pytest.raises(ValueError, match="timeout must be positive"):
        await amtest.expect_state(page, "local", "Idle", timeout=0)
    with pytest.raises(ValueError, match="at least one state"):
        await amtest.expect_clock(page, "local", {})
    with pytest.raises(LookupError, match="'local' is local: it has no connection machine"):
        await amtest.string_all(page, "local", connection=True)
    # a typo fails at once, not as a timeout (is1 answers false for an unknown name)
    for call in (
        amtest.add1(page, "local", "Nope"),
        amtest.tick(page, "local", "Nope"),
        amtest.clock(page, "local", ["Idle", "Nope"]),
        amtest.expect_state(page, "local", "Nope"),
        amtest.expect_clock(page, "local", {"Idle": 1, "Nope": 0}),
    ):
        with pytest.raises(am.StateMissingError, match=r"missing states: Nope .* for local"):
            await call


async def test_mutations_of_a_disconnected_remote_machine_time_out(
    open_demo: Callable[[str], Awaitable[Page]], demo: Any, watch: Any
) -> None:
    """While the page is disconnected, a mutation helper fails after its timeout, naming the
    connection's states, instead of waiting for the server forever."""
    page = await open_demo(f"{demo.url}?mode=remote")
    await amtest.expect_state(page, "upload", "Ready", connection=True, timeout=15)
    assert await amtest.add1(page, "upload", "Offline") == am.Executed
    # reconnect attempts while the server is down
    watch.expected.append(re.compile(r"^WebSocket connection to .* net::ERR_CONNECTION_REFUSED$"))
    await demo.stop()
    try:
        await amtest.expect_state(page, "upload", "Disconnected", connection=True)
        with pytest.raises(TimeoutError) as late:
            await amtest.add1(page, "upload", "Online", timeout=0.3)
        assert str(late.value).startswith(
            "machine 'upload': add1(Online) got no answer within 0.3 s"
        )
        assert "Disconnected:" in str(late.value)
        with pytest.raises(ValueError, match="timeout must be positive"):
            await amtest.set(page, "upload", ["Online"], timeout=0)
    finally:
        await demo.start()
    await amtest.expect_state(page, "upload", "Ready", connection=True, timeout=15)
    await page.close()


async def test_importable_in_pyodide_without_playwright(page: Page) -> None:
    names = await page.evaluate(
        """am.pyodide.runPythonAsync(`
import sys, asyncmachine.testing.playwright as helpers
(helpers.__all__, "playwright" in sys.modules)
`).then((out) => out.toJs())"""
    )
    assert names == [amtest.__all__, False]
