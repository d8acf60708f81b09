"""``--am-trace`` with the Playwright helpers: a failing test's file holds the page's machines."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

from asyncmachine.debugger import read_session

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from dbg_support import replay

pytest_plugins = ["pytester"]

INNER = """
import os
import asyncmachine as am
from playwright.async_api import async_playwright
from asyncmachine.testing import playwright as amtest

async def test_the_page_is_not_idle():
    async with async_playwright() as p:
        browser = await p.chromium.launch(executable_path=os.environ["CHROMIUM"], args=%r)
        page = await browser.new_page()
        await page.goto(os.environ["AM_TEST_SITE"] + "/dbg-page.html")
        await page.wait_for_function(
            "document.getElementById('status').textContent === 'ready'", timeout=60_000)
        schema = "{Idle: {remove: ['Busy']}, Busy: {remove: ['Idle']}}"
        await page.evaluate(f"am.machine({schema}, {{id: 'ui'}}).add1('Idle')")
        await amtest.wait_ready(page, "ui")
        assert await amtest.add1(page, "ui", "Busy") == am.Executed
        await page.evaluate("__asyncmachine__.machines.get('ui').add1('Idle')")
        await amtest.expect_state(page, "ui", "Busy", timeout=0.5)
"""


def test_a_failing_page_test_leaves_the_pages_machines(
    pytester: pytest.Pytester, site_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    from support import CHROMIUM, CHROMIUM_ARGS

    pytester.makeini(
        "[pytest]\nasyncio_mode = auto\nasyncio_default_fixture_loop_scope = function\n"
    )
    pytester.makepyfile(test_page=INNER % (CHROMIUM_ARGS,))
    monkeypatch.setenv("AM_TEST_SITE", site_url)
    monkeypatch.setenv("CHROMIUM", CHROMIUM)
    result = pytester.runpytest_subprocess("--am-trace=retain-on-failure", "-p", "no:cacheprovider")
    result.assert_outcomes(failed=1)
    path = (
        pytester.path
        / "test-results"
        / "test_page.py-test_the_page_is_not_idle"
        / "am-dbg.jsonl.gz"
    )
    lines = read_session(path)
    history = replay(lines)["ui"]
    # recorded from the first helper call on: Busy (by the helper), then Idle (by the page)
    assert [clock for _, clock in history] == [
        {"Busy": 1, "Exception": 0, "Idle": 2},
        {"Busy": 2, "Exception": 0, "Idle": 3},
    ]
    status = next(json.loads(line) for line in lines if '"status"' in line)
    assert status["proc"]["runtime"] == "pyodide" and status["proc"]["tab"]
