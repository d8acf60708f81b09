"""Pages that start Python from the site's memory snapshot (``loadAsyncmachine({snapshot})``)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

SNAPSHOT = "/pyodide/asyncmachine-snapshot.bin.gz"
LOAD_TIMEOUT = 60_000

Page = Any


class Console:
    """What a page printed, by message type."""

    def __init__(self) -> None:
        self.messages: list[tuple[str, str]] = []

    def of(self, kind: str) -> list[str]:
        return [text for t, text in self.messages if t == kind]


@pytest.fixture
def open_page(browser: Any, site_url: str) -> Iterator[Any]:
    """Open ``bridge.html?snapshot=...`` in a fresh context; returns (page, console)."""
    contexts = []

    def open_page(snapshot: str) -> tuple[Page, Console]:
        context = browser.new_context()
        contexts.append(context)
        page = context.new_page()
        console = Console()
        page.on("console", lambda msg: console.messages.append((msg.type, msg.text)))
        page.on("pageerror", lambda err: console.messages.append(("pageerror", str(err))))
        page.goto(f"{site_url}/bridge.html?snapshot={snapshot}")
        page.wait_for_function(
            "document.getElementById('status').textContent === 'ready'", timeout=LOAD_TIMEOUT
        )
        return page, console

    yield open_page
    for context in contexts:
        context.close()


def test_python_starts_with_asyncmachine_imported(open_page: Any) -> None:
    page, console = open_page(SNAPSHOT)
    # the demo's extra module was imported before the snapshot was taken: nothing imported it since
    assert page.evaluate("am.pyodide.runPython(`import sys; 'asyncmachine.diagram' in sys.modules`)")
    # modules that were not imported come from the wheel installed after the restore
    out = page.evaluate(
        """() => am.pyodide.runPython(`
import sys
before = 'asyncmachine.pipes' in sys.modules
import asyncmachine.pipes
(before, asyncmachine.pipes.__name__)
`).toJs()"""
    )
    assert out == [False, "asyncmachine.pipes"]
    m = page.evaluate(
        """() => { const m = am.machine({A: {}, B: {remove: ["A"]}}); m.add1("A"); m.add1("B");
                   const s = m.string(); m.dispose(); return s; }"""
    )
    assert m == "(B:1)"
    assert console.messages == []


def test_every_page_draws_its_own_random_numbers(open_page: Any) -> None:
    draws = []
    for _ in range(2):
        page, console = open_page(SNAPSHOT)
        draws.append(page.evaluate("am.pyodide.runPython('import random; random.random()')"))
        draws.append(page.evaluate("(() => { const m = am.machine({A: {}}); m.dispose(); return m.id; })()"))
        assert console.messages == []
    assert len(set(draws)) == 4, draws


@pytest.mark.parametrize(
    ("url", "why"),
    [
        ("/pyodide/no-such-snapshot.bin.gz", "404"),
        ("/pyodide/pyodide-lock.json", "invalid magic number"),
    ],
)
def test_an_unusable_snapshot_boots_python_instead(open_page: Any, url: str, why: str) -> None:
    page, console = open_page(url)
    assert page.evaluate("am.version") == "0.1.0"
    assert page.evaluate("am.pyodide.runPython(`import sys; 'asyncmachine.diagram' in sys.modules`)") is False
    [warning] = console.of("warning")
    assert "not starting from the snapshot" in warning and why in warning
    # only the browser's own report of a missing file
    assert [e for e in console.of("error") if "404" not in e] == []
