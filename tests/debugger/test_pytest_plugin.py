"""``--am-trace``: a failing test leaves a session file with the machines it ran."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from dbg_support import replay

from asyncmachine.debugger import read_session

pytest_plugins = ["pytester"]

TESTS = """
import asyncmachine as am
from asyncmachine import telemetry

SCHEMA = {"A": am.State(), "B": am.State(require=["A"])}

def test_passes():
    telemetry.mach_debug_env(am.Machine(SCHEMA, id="quiet")).__class__

def test_fails():
    mach = am.Machine(SCHEMA, id="traced")
    telemetry.mach_debug_env(mach)
    child = am.Machine(SCHEMA, id="child", parent=mach)
    mach.add1("A")
    mach.add1("B")
    child.add1("B")  # canceled: requires A
    plain = am.Machine({"X": am.State()}, id="plain")
    plain.add1("X")
    assert mach.is1("Nope"), "the machine is not where the test expected"
"""


@pytest.fixture(autouse=True)
def ini(pytester: pytest.Pytester) -> None:
    pytester.makeini("[pytest]\nasyncio_default_fixture_loop_scope = function\n")


def session_file(root: Path, test: str) -> Path:
    return root / "test-results" / f"test_machines.py-{test}" / "am-dbg.jsonl.gz"


def test_a_failing_test_leaves_a_session_file(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_machines=TESTS)
    result = pytester.runpytest("--am-trace=retain-on-failure", "-p", "no:cacheprovider")
    result.assert_outcomes(passed=1, failed=1)
    path = session_file(pytester.path, "test_fails")
    result.stdout.fnmatch_lines(
        ["*- am-dbg -*", f"*machines recorded in {path.relative_to(pytester.path)}*"]
    )
    assert not session_file(pytester.path, "test_passes").exists()
    lines = read_session(path)
    history = replay(lines)
    assert [clock for _, clock in history["traced"]] == [
        {"A": 1, "B": 0, "Exception": 0},
        {"A": 1, "B": 1, "Exception": 0},
    ]
    assert len(history["child"]) == 1  # the submachine, recorded with its parent
    schemas = {json.loads(line)["id"]: json.loads(line) for line in lines if '"schema"' in line}
    assert "quiet" not in schemas  # from the test that passed
    assert schemas["child"]["parent"] == "traced"
    # not instrumented, but built during the test: recorded from its first transition on
    assert [clock for _, clock in history["plain"]] == [{"Exception": 0, "X": 1}]
    assert "snapshot" not in schemas["plain"]["tags"]


def test_on_keeps_a_file_for_every_test(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_machines=TESTS)
    out = pytester.path / "out"
    result = pytester.runpytest(
        "--am-trace=on", f"--am-trace-output={out}", "-p", "no:cacheprovider"
    )
    result.assert_outcomes(passed=1, failed=1)
    quiet = read_session(out / "test_machines.py-test_passes" / "am-dbg.jsonl.gz")
    assert "quiet" in replay(quiet)
    assert (out / "test_machines.py-test_fails" / "am-dbg.jsonl.gz").is_file()


def test_off_by_default(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_machines=TESTS)
    pytester.runpytest("-p", "no:cacheprovider").assert_outcomes(passed=1, failed=1)
    assert not (pytester.path / "test-results").exists()


def test_bad_mode_is_refused(pytester: pytest.Pytester) -> None:
    result = pytester.runpytest("--am-trace=sometimes")
    assert result.ret != 0
    result.stderr.fnmatch_lines(["*--am-trace: invalid choice: 'sometimes'*"])
