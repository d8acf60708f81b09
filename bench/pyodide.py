"""W1 and W3 inside Pyodide against XState v5 on the same V8, and against CPython, in one run.

``python -m bench.pyodide [--quick] [--out build/bench/pyodide.jsonl] [--dist build/site/pyodide]``
runs, one after another: the two workloads on CPython (this interpreter), then per workload the
same code inside Pyodide under Node (``tools/run_pyodide_bench.mjs``) and XState's version under
the same Node (``bench/xstate/run.mjs``), back to back so that a busy machine skews both alike. It
writes every result as a JSON line and prints the rates with the browser targets: Pyodide/XState
>= 0.5 for W1 and >= 1.0 for W3.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from bench import workloads_am
from bench.harness import BenchResult, loadavg, run_workload
from bench.report import write_report

ROOT = Path(__file__).resolve().parents[1]
DIST = ROOT / "build" / "site" / "pyodide"
N_FULL = {"W1": 200_000, "W3": 40_000}
N_QUICK = {"W1": 2_000, "W3": 500}
UNITS = {"W1": "mutation", "W3": "cycle"}
CPYTHON, PYODIDE, XSTATE = "asyncmachine", "asyncmachine-pyodide", "xstate"
TARGETS = {"W1": 0.5, "W3": 1.0}
"""The lowest acceptable Pyodide / XState rate per workload."""
TIMEOUT = 900


class RunnerError(RuntimeError):
    """A Node runner failed or printed something other than result lines."""


def measure(
    quick: bool = False, system: str = CPYTHON, only: Sequence[str] = tuple(N_FULL)
) -> list[BenchResult]:
    """W1 and/or W3 in this interpreter (CPython, or Pyodide when the Node runner calls it)."""
    sizes = N_QUICK if quick else N_FULL
    makers = {"W1": workloads_am.w1, "W3": workloads_am.w3}
    extra = {"python": sys.version.split()[0], "platform": sys.platform, "quick": quick}
    return [
        run_workload(
            system, name, "", sizes[name], UNITS[name], makers[name](sizes[name]), extra=extra
        )
        for name in only
    ]


def _node(args: list[str], what: str) -> list[dict[str, Any]]:
    """Run a Node runner; its stdout is JSON lines, its stderr (progress) goes to ours."""
    proc = subprocess.run(
        ["node", *args],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        text=True,
        timeout=TIMEOUT,
        check=False,
    )
    if proc.returncode != 0:
        raise RunnerError(f"{what} failed (exit {proc.returncode})")
    try:
        return [json.loads(line) for line in proc.stdout.splitlines() if line.strip()]
    except json.JSONDecodeError as err:
        raise RunnerError(f"{what} printed something that is not a result line: {err}") from err


def in_pyodide(dist: Path, quick: bool, name: str) -> list[dict[str, Any]]:
    """Workload ``name`` inside Pyodide under Node, from the distribution folder ``dist``."""
    if not (dist / "pyodide-lock.json").is_file():
        raise RunnerError(f"{dist} has no pyodide-lock.json: build it with `make site`")
    args = [str(ROOT / "tools" / "run_pyodide_bench.mjs"), str(dist), f"--only={name}"]
    return _node([*args, "--quick"] if quick else args, "the Pyodide runner")


def in_xstate(quick: bool, name: str) -> list[dict[str, Any]]:
    """XState's version of workload ``name`` under Node, with the N of the Python runs."""
    n = (N_QUICK if quick else N_FULL)[name]
    args = ["--expose-gc", str(ROOT / "bench" / "xstate" / "run.mjs"), "--only", name]
    args += ["--n", f"{name}={n}"]
    return _node([*args, "--quick"] if quick else args, "the XState runner")


def render(rows: Sequence[dict[str, Any]]) -> str:
    """Markdown: median rates per system, Pyodide/CPython and Pyodide/XState with the targets."""
    rate = {(r["system"], r["workload"]): float(r["median_ops_per_sec"]) for r in rows}
    out = [
        "| workload | CPython | Pyodide (Node) | XState (Node) | Pyodide / CPython "
        "| Pyodide / XState | target | verdict |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for name, goal in TARGETS.items():
        cp, py, xs = (rate.get((s, name), 0.0) for s in (CPYTHON, PYODIDE, XSTATE))
        vs_cp = f"{py / cp:.2f}" if cp else "n/a"
        vs_xs = py / xs if xs else 0.0
        verdict = "PASS" if xs and vs_xs >= goal else "FAIL"
        out.append(
            f"| {name} | {cp:,.0f} | {py:,.0f} | {xs:,.0f} | {vs_cp} | {vs_xs:.2f} "
            f"| >= {goal:g} | {verdict} |"
        )
    return "\n".join(out)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="tiny N: checks, not timings")
    parser.add_argument("--out", type=Path, default=ROOT / "build" / "bench" / "pyodide.jsonl")
    parser.add_argument("--dist", type=Path, default=DIST, help="the Pyodide distribution")
    args = parser.parse_args(argv)
    try:
        print(f"CPython, load {loadavg()}", file=sys.stderr)
        rows: list[dict[str, Any]] = [json.loads(r.to_json()) for r in measure(args.quick)]
        for name in N_FULL:
            print(f"{name}: Pyodide under Node, load {loadavg()}", file=sys.stderr)
            rows += in_pyodide(args.dist, args.quick, name)
            print(f"{name}: XState under Node, load {loadavg()}", file=sys.stderr)
            rows += in_xstate(args.quick, name)
    except (RunnerError, subprocess.TimeoutExpired) as err:
        print(f"bench.pyodide: {err}", file=sys.stderr)
        return 1
    write_report(args.out, rows, render(rows))
    return 0


if __name__ == "__main__":
    sys.exit(main())
