"""The inspector page in Chromium against a real am-dbg: machines appear live, time travel shows
old clocks, links jump across machines, export then import gives the same timeline."""

from __future__ import annotations

import asyncio
import json
import os
import sys
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest
from playwright.async_api import expect

import asyncmachine as am
from asyncmachine import telemetry

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
import scenario
from dbg_support import PROCESS, replay

pytestmark = pytest.mark.asyncio(loop_scope="session")

Page = Any
Open = Callable[..., Awaitable[Page]]
MOBILE = {"width": 390, "height": 844}


# the inspector's own view of a machine, read through its debugging handle
VIEW = """(id) => {
    const {ui} = window.__inspector;
    const m = ui.session.machines.get(id);
    if (!m) return null;
    return {
        rows: document.querySelectorAll('#timeline .tl-row:not([hidden])').length,
        count: m.entries.length,
        chips: Object.fromEntries([...document.querySelectorAll('#chips .chip')].map(
            (c) => [c.dataset.state, Number(c.querySelector('.tk').textContent)])),
        active: [...document.querySelectorAll('#chips .chip.active')].map((c) => c.dataset.state),
        position: document.querySelector('#position').textContent,
        selected: ui.machId,
        connected: m.connected,
    };
}"""


async def view(page: Page, mach_id: str) -> dict[str, Any]:
    """What the page shows of a machine, once its pending render is done."""
    await page.evaluate("() => new Promise((r) => requestAnimationFrame(() => setTimeout(r)))")
    return dict(await page.evaluate(VIEW, mach_id))


async def test_a_python_process_with_am_dbg_addr_appears_with_states_and_transitions(
    dbg: Any, inspector: Open, screenshot: Any
) -> None:
    page = await inspector(dbg.url)
    assert await page.locator(".empty h2").text_content() == "Waiting for machines"
    await screenshot(page, "empty")
    env = {**os.environ, "AM_DBG_ADDR": dbg.addr}
    proc = await asyncio.create_subprocess_exec(sys.executable, "-c", PROCESS, env=env)
    assert await proc.wait() == 0
    await page.wait_for_selector('.mach[data-id="worker"]')
    await page.wait_for_function("() => document.querySelector('#tl-count').textContent === '8'")
    seen = await view(page, "worker")
    assert seen["chips"] == {"Exception": 0, "Ready": 8, "Start": 8}
    assert seen["active"] == [] and seen["position"] == "8 / 8"
    # the process exited: still listed, marked disconnected
    await page.wait_for_selector('.mach[data-id="worker"][data-status="disconnected"]')
    assert "pid" in (await page.locator(".group-title").first.text_content() or "")


async def test_live_updates_and_follow(dbg: Any, inspector: Open) -> None:
    mach = am.Machine({"A": am.State(remove=("B",)), "B": am.State(remove=("A",))}, id="live")
    telemetry.debug(mach, dbg.addr)
    mach.add1("A")
    page = await inspector(dbg.url)
    await page.wait_for_selector('.mach[data-id="live"][data-status="connected"]')
    latencies = []
    for n in range(2, 7):
        started = time.perf_counter()
        mach.add1("AB"[n % 2])
        await page.wait_for_function(
            "(n) => window.__inspector.ui.session.machines.get('live')?.entries.length === n",
            arg=n,
            polling="raf",
        )
        latencies.append(time.perf_counter() - started)
    seen = await view(page, "live")
    assert seen["position"] == "6 / 6"  # following: the newest is selected
    assert seen["active"] == ["A"]
    assert max(latencies) < 2.0, latencies  # a safety net; bench/dbg.py measures it


async def test_stepping_back_shows_the_old_clock(
    dbg: Any, inspector: Open, screenshot: Any
) -> None:
    await scenario.streamed(dbg.addr, rounds=3)
    page = await inspector(f"{dbg.url}?machine=upload-server")
    await page.wait_for_function(
        "() => document.querySelector('#position').textContent.includes('/')"
    )
    lines = dbg.session.lines()
    truth = replay(lines)["upload-server"]
    now = await view(page, "upload-server")
    assert now["selected"] == "upload-server"
    assert now["chips"] == {k: v for k, v in truth[-1][1].items()}
    for back in range(1, 6):
        await page.keyboard.press("ArrowLeft")
        await page.wait_for_function(
            "(p) => document.querySelector('#position').textContent.startsWith(p + ' /')",
            arg=str(len(truth) - back),
        )
        seen = await view(page, "upload-server")
        assert seen["chips"] == truth[-1 - back][1], f"{back} steps back"
        graph_ticks = await page.evaluate(
            "() => Object.fromEntries([...document.querySelectorAll('#graph .node')].map("
            "(n) => [n.dataset.state, Number(n.querySelector('.tick').textContent)]))"
        )
        assert graph_ticks == truth[-1 - back][1]
    await page.keyboard.press("Home")
    first = await view(page, "upload-server")
    assert first["position"].startswith("1 /") and first["chips"] == truth[0][1]
    await page.keyboard.press("End")
    assert (await view(page, "upload-server"))["chips"] == truth[-1][1]


async def test_a_cause_in_another_machine_is_one_click_away(
    dbg: Any, inspector: Open, screenshot: Any
) -> None:
    await scenario.streamed(dbg.addr, rounds=2)
    page = await inspector(f"{dbg.url}?machine=thumbs-worker")
    await page.wait_for_selector('.mach[data-id="thumbs-worker"][aria-selected="true"]')
    # the worker's first Working: caused by the server's Receiving, caused by the page's Uploading
    await page.locator("#timeline .tl-row", has_text="Working").first.click()
    await page.locator(".d-sec", has_text="Caused by").locator("button.txlink").click()
    await page.wait_for_selector('.mach[data-id="upload-server"][aria-selected="true"]')
    await expect(page.locator(".d-title")).to_contain_text("Receiving")
    await page.locator(".d-sec", has_text="Caused by").locator("button.txlink").click()
    await page.wait_for_selector('.mach[data-id="browser-page"][aria-selected="true"]')
    await expect(page.locator(".d-title")).to_contain_text("Uploading")
    await page.click("#tab-sequence")
    await expect(page.locator("#sequence .msg.selected")).not_to_have_count(0)
    assert await page.locator("#sequence .msg").count() >= 4
    await screenshot(page, "sequence")


async def test_filters_and_search(dbg: Any, inspector: Open) -> None:
    await scenario.streamed(dbg.addr, rounds=3)
    page = await inspector(f"{dbg.url}?machine=upload-server")
    await page.wait_for_selector('.mach[data-id="upload-server"][aria-selected="true"]')
    total = (await view(page, "upload-server"))["count"]
    count = page.locator("#tl-count")
    await page.uncheck("#f-auto")
    await page.wait_for_function(
        "() => document.querySelector('#tl-count').textContent.includes('of')"
    )
    autos = sum(1 for e in _entries(dbg, "upload-server") if e.get("auto"))
    assert await count.text_content() == f"{total - autos} of {total}"
    await page.check("#f-auto")
    await page.uncheck("#f-canceled")
    canceled = sum(
        1 for e in _entries(dbg, "upload-server") if e["kind"] == "tx" and not e["accepted"]
    )
    await page.wait_for_function(
        "(t) => document.querySelector('#tl-count').textContent === t",
        arg=f"{total - canceled} of {total}",
    )
    await page.check("#f-canceled")
    await page.fill("#search", "disk full")
    # the transition whose handler raised logs the error, the Exception transition carries it
    entries = _entries(dbg, "upload-server")
    hits = sum(1 for e in entries if e["kind"] == "tx" and _says(e, "disk full"))
    assert hits >= 1
    await page.wait_for_function(
        "(t) => document.querySelector('#tl-count').textContent.startsWith(t)", arg=f"{hits} of"
    )
    await page.fill("#search", "")
    await page.click('#chips .chip[data-state="Stored"]')  # a state's chip filters by it
    touching = sum(
        1
        for e in _entries(dbg, "upload-server")
        if e["kind"] == "tx" and ("Stored" in e["called"] or "Stored" in e["ticks"])
    )
    await page.wait_for_function(
        "(t) => document.querySelector('#tl-count').textContent === t", arg=f"{touching} of {total}"
    )
    assert await page.locator("#f-state").input_value() == "Stored"


def _entries(dbg: Any, mach_id: str) -> list[dict[str, Any]]:
    return [json.loads(line) for line in dbg.session.machines[mach_id].ring]


def _says(entry: dict[str, Any], text: str) -> bool:
    """A transition entry's log lines or error mention ``text``."""
    error = entry.get("error") or {}
    said = [line for _, line in entry.get("log", [])]
    said.append(f"{error.get('type', '')} {error.get('message', '')}")
    return any(text in line.lower() for line in said)


async def test_export_then_import_reproduces_the_timeline(
    dbg: Any, inspector: Open, site_url: str, tmp_path: Path, screenshot: Any
) -> None:
    await scenario.streamed(dbg.addr, rounds=3)
    page = await inspector(dbg.url)
    await page.wait_for_selector('.mach[data-id="upload-server"]')
    async with page.expect_download() as download:
        await page.click("#export")
    path = tmp_path / "session.jsonl.gz"
    await (await download.value).save_as(path)
    live = await page.evaluate(TIMELINES)
    # the static site's inspector, no server: open the file
    static = await inspector(f"{site_url}/inspector/")
    assert await static.locator("#conn").text_content() == "No session"
    await static.set_input_files("#file", str(path))
    await static.wait_for_selector('#conn[data-state="file"]')
    assert await static.evaluate(TIMELINES) == live
    await screenshot(static, "file")
    # and am-dbg reads it back too
    from asyncmachine.debugger import Session, read_session

    again = Session()
    assert again.load(read_session(path)) == 3
    assert replay(again.lines()) == replay(dbg.session.lines())


# every machine's timeline as (tx id, full clock after it), as the page rebuilds it
TIMELINES = """() => {
    const out = {};
    for (const [id, m] of window.__inspector.ui.session.machines) {
        out[id] = m.entries.filter((e) => e.kind === 'tx').map((e) => [e.tx, m.clockAt(e.i)]);
    }
    return out;
}"""


async def test_a_bad_file_is_reported_and_the_view_kept(
    dbg: Any, inspector: Open, site_url: str, tmp_path: Path
) -> None:
    page = await inspector(f"{site_url}/inspector/")
    good = tmp_path / "good.jsonl"
    good.write_text("\n".join(dbg.session.lines()))  # a header and no machines
    bad = tmp_path / "bad.jsonl.gz"
    bad.write_bytes(b"\x1f\x8bnot gzip at all")
    await page.set_input_files("#file", str(bad))
    await page.wait_for_selector("#banner:not([hidden])")
    assert "Could not open bad.jsonl.gz" in (await page.locator("#banner").text_content() or "")
    await page.set_input_files("#file", str(good))
    await page.wait_for_function(
        "() => document.querySelector('#banner').textContent.includes('no machines')"
    )
    assert await page.locator("#conn").text_content() == "No session"


async def test_screenshots(dbg: Any, inspector: Open, screenshot: Any) -> None:
    """The main views, light and dark, desktop and phone (build/screenshots/inspector-*.png)."""
    await scenario.streamed(dbg.addr, rounds=4)
    select = """(i) => {
        const {ui, go} = window.__inspector;
        go(ui.session.machines.get('upload-server').entries[i]);
    }"""
    page = await inspector(f"{dbg.url}?machine=upload-server")
    await page.wait_for_selector('.mach[data-id="upload-server"][aria-selected="true"]')
    await screenshot(page, "desktop")
    await page.evaluate(select, 2)
    await screenshot(page, "desktop-canceled")
    dark = await inspector(f"{dbg.url}?machine=upload-server", dark=True)
    await dark.wait_for_selector('.mach[data-id="upload-server"][aria-selected="true"]')
    await dark.evaluate(select, 11)
    await screenshot(dark, "desktop-dark-error")
    phone = await inspector(
        f"{dbg.url}?machine=upload-server", viewport={"width": 390, "height": 844}
    )
    await phone.wait_for_selector(
        '.mach[data-id="upload-server"][aria-selected="true"]', state="attached"
    )
    for view_name in ("timeline", "graph", "detail", "machines"):
        await phone.click(f'.mobile-nav [data-view="{view_name}"]')
        await screenshot(phone, f"mobile-{view_name}")
