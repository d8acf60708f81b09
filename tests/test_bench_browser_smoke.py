"""``python -m bench.pyodide --quick``: W1/W3 on CPython, inside Pyodide and on XState, validated.

Tiny N: the runners' own checks (transition counts, handler counters, final states) are what is
tested here, not timings.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

if sys.platform == "emscripten":  # pragma: no cover - only inside Pyodide
    pytest.skip("drives Node from CPython", allow_module_level=True)

from bench import pyodide as bench_pyodide

ROOT = Path(__file__).resolve().parents[1]
XSTATE = ROOT / "bench" / "xstate" / "run.mjs"


@pytest.fixture(scope="module")
def node() -> str:
    node = shutil.which("node")
    if node is None or not (ROOT / "node_modules" / "xstate").is_dir():
        pytest.fail("node and node_modules are needed: run `make node`")
    if not (bench_pyodide.DIST / "pyodide-lock.json").is_file():
        pytest.fail("build/site is missing: run `make site`")
    return node


def test_quick_run_validates_every_system(
    node: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "pyodide.jsonl"
    assert bench_pyodide.main(["--quick", "--out", str(out)]) == 0
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    got = sorted((r["system"], r["workload"]) for r in rows)
    assert got == sorted(
        (system, workload)
        for system in ("asyncmachine", "asyncmachine-pyodide", "xstate")
        for workload in ("W1", "W3")
    )
    for row in rows:
        assert row["n"] == bench_pyodide.N_QUICK[row["workload"]]
        assert len(row["ops_per_sec"]) == 5 and row["median_ops_per_sec"] > 0
    assert {r["extra"]["platform"] for r in rows if r["system"] == "asyncmachine-pyodide"} == {
        "emscripten"
    }
    table = capsys.readouterr().out
    assert "| W1 |" in table and "| W3 |" in table and "Pyodide / XState" in table
    assert out.with_suffix(".md").read_text() == table


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--n", "W1=3"], "W1 N must be even"),
        (["--n", "W2=10"], '"W2=10" is not WORKLOAD=positive integer'),
        (["--only", "W4"], 'unknown workload "W4"'),
    ],
)
def test_xstate_runner_refuses_bad_input(node: str, args: list[str], message: str) -> None:
    proc = subprocess.run(
        [node, "--expose-gc", str(XSTATE), *args],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert proc.returncode == 1 and proc.stdout == ""
    assert message in proc.stderr


def test_xstate_runner_needs_a_forced_gc(node: str) -> None:
    proc = subprocess.run(
        [node, str(XSTATE), "--quick"], capture_output=True, text=True, timeout=60, check=False
    )
    assert proc.returncode == 1 and "--expose-gc" in proc.stderr
