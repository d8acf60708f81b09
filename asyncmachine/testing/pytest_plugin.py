"""pytest plugin: the "trace viewer" for state machines.

``pytest --am-trace=retain-on-failure`` records the machines of every test and, when a test
fails, writes them to ``test-results/<test>/am-dbg.jsonl.gz``: open it in the inspector (its
Open button, or ``am-dbg --import FILE``) to step through what the machines did up to the
failure. ``--am-trace=on`` keeps a file for every test; ``--am-trace-output DIR`` moves them.

Which machines: every machine built while the plugin is on (from its construction), those
instrumented for am-dbg before that (``telemetry.mach_debug_env`` or ``telemetry.debug``), their
submachines, the machines of pages driven by ``asyncmachine.testing.playwright`` (recorded from
the first helper call on), and, as a snapshot without history, any other machine that the
failing test's frames or fixtures hold. Loaded through the ``pytest11`` entry point; off unless
asked for.
"""

from __future__ import annotations

import gc
import json
import re
from collections.abc import Generator, Iterable
from pathlib import Path
from typing import Any

import pytest

from .._machine import Machine
from .._tracer import on_machine_created
from ..debugger import Session, write_session
from ..telemetry._recording import Recorder, snapshot_lines
from . import playwright as _playwright

MODES = ("off", "on", "retain-on-failure")
FILE_NAME = "am-dbg.jsonl.gz"


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("asyncmachine", "asyncmachine: machines of failing tests")
    group.addoption(
        "--am-trace",
        choices=MODES,
        default="off",
        help="record the machines of each test and write an am-dbg session file: "
        "on (every test), retain-on-failure (failing tests), off (default)",
    )
    group.addoption(
        "--am-trace-output",
        default="test-results",
        metavar="DIR",
        help="where session files go, one folder per test (default: test-results)",
    )


def pytest_configure(config: pytest.Config) -> None:
    mode = config.getoption("--am-trace", "off")
    if mode != "off":
        output = Path(config.getoption("--am-trace-output"))
        config.pluginmanager.register(Tracing(mode, output), "asyncmachine-tracing")


class Tracing:
    """Records machines per test; writes the session file of a test when it is due."""

    def __init__(self, mode: str, output: Path) -> None:
        self.mode = mode
        self.output = output
        self.recorder = Recorder()
        self.pages = PageRecordings()
        self._remove_hook = on_machine_created(self.recorder.record)
        self._written: set[str] = set()
        _playwright._recording = self.pages

    def pytest_unconfigure(self, config: pytest.Config) -> None:
        self._remove_hook()
        _playwright._recording = None
        self.recorder.close()

    @pytest.hookimpl(tryfirst=True)
    def pytest_runtest_setup(self, item: pytest.Item) -> None:
        self.recorder.mark()
        self.pages.start_test()

    @pytest.hookimpl(hookwrapper=True)
    def pytest_runtest_makereport(
        self, item: pytest.Item, call: pytest.CallInfo[None]
    ) -> Generator[None, Any, None]:
        outcome = yield
        report: pytest.TestReport = outcome.get_result()
        due = report.failed or (self.mode == "on" and report.when == "teardown")
        if not due or item.nodeid in self._written:
            return
        self._written.add(item.nodeid)
        held = _held_machines(item, call) if report.failed else []
        path = self.write(item.nodeid, held)
        report.sections.append(
            ("am-dbg", f"machines recorded in {path}\nopen it with: am-dbg --import {path}")
        )
        item.user_properties.append(("am_dbg_session", str(path)))

    def write(self, nodeid: str, held: Iterable[Machine]) -> Path:
        gc.collect()  # machines of earlier tests, left in reference cycles, are not this test's
        session = Session()
        session.receive(session.connect("python"), "\n".join(self.recorder.lines()))
        for lines in self.pages.take():
            session.receive(session.connect("page"), "\n".join(lines))
        unrecorded = [m for m in held if not self.recorder.recorded(m)]
        snapshots = [line for line in snapshot_lines(unrecorded) if _new(session, line)]
        if snapshots:
            session.receive(session.connect("snapshot"), "\n".join(snapshots))
        path = self.output / _slug(nodeid) / FILE_NAME
        write_session(path, session.lines())
        return path


class PageRecordings:
    """Lines pulled from the pages the Playwright helpers touched during the current test."""

    def __init__(self) -> None:
        self._lines: dict[int, list[list[str]]] = {}

    def start_test(self) -> None:
        self._lines = {}

    async def pull(self, page: Any) -> None:
        """Start recording the page's machines (first time) and take what they did since."""
        first = id(page) not in self._lines
        text = await page.evaluate(_PULL, first)
        if text:
            self._lines.setdefault(id(page), []).append(str(text).split("\n"))

    def take(self) -> list[list[str]]:
        out = [line for chunks in self._lines.values() for line in chunks]
        self._lines = {}
        return out


# start recording the page's machines if that is not on yet, then take what they did
_PULL = """(greeting) => {
    const r = globalThis.__asyncmachine__;
    if (!r?.record || !r.recording) return "";
    if (!r.recordAll) r.record();
    return r.recording(greeting);
}"""


def _held_machines(item: pytest.Item, call: pytest.CallInfo[None]) -> list[Machine]:
    """Machines in the failing test's fixtures and frames (and one attribute deep)."""
    values: list[Any] = list(getattr(item, "funcargs", {}).values())
    if call.excinfo is not None:
        for entry in call.excinfo.traceback:
            values.extend(entry.frame.f_locals.values())
    found: dict[int, Machine] = {}
    for value in values:
        for candidate in (value, *_attributes(value)):
            if isinstance(candidate, Machine):
                found[id(candidate)] = candidate
    return list(found.values())


def _attributes(value: Any) -> list[Any]:
    try:
        return list(vars(value).values())
    except TypeError:
        return []


def _new(session: Session, schema_line: str) -> bool:
    return json.loads(schema_line)["id"] not in session.machines


def _slug(nodeid: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "-", nodeid).strip("-")[:200]
