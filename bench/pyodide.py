"""W1 and W3 inside Pyodide against XState v5 on the same V8, and against CPython, in one run.

``python -m bench.pyodide [--quick] [--out build/bench/pyodide.jsonl] [--dist build/site/pyodide]``
runs the two workloads on CPython (this interpreter), then in one Node process
(``tools/run_pyodide_bench.mjs``) the same code inside Pyodide and XState's version
(``bench/xstate/workloads.mjs``), rep by rep in turn so that a machine that gets busier or quieter
weighs on both alike. It writes every result as a JSON line and prints the rates with the browser
targets: Pyodide/XState >= 0.5 for W1 and >= 1.0 for W3.
"""

from __future__ import annotations

import argparse
import gc
import json
import subprocess
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from bench import workloads_am
from bench.harness import BenchResult, Timer, ValidationError, loadavg, run_workload
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


MAKERS = {"W1": workloads_am.w1, "W3": workloads_am.w3}


def measure(quick: bool = False) -> list[BenchResult]:
    """W1 and W3 on CPython."""
    sizes = N_QUICK if quick else N_FULL
    extra = {"python": sys.version.split()[0], "platform": sys.platform, "quick": quick}
    return [
        run_workload(CPYTHON, name, "", n, UNITS[name], MAKERS[name](n), extra=extra)
        for name, n in sizes.items()
    ]


def one_rep(name: str, n: int) -> Callable[[], int]:
    """What the Node runner calls once per rep inside Pyodide: a fresh machine, the timed region
    in ns (``gc.collect()`` first, as ``run_workload`` does), the workload's own checks."""
    rep = MAKERS[name](n)

    def run() -> int:
        gc.collect()
        timer = Timer()
        rep(timer)
        if timer.ns <= 0:
            raise ValidationError(f"{PYODIDE} {name}: empty timed region")
        return timer.ns

    return run


def in_node(dist: Path, quick: bool) -> list[dict[str, Any]]:
    """W1 and W3 inside Pyodide and on XState in one Node process, from the distribution
    folder ``dist``."""
    if not (dist / "pyodide-lock.json").is_file():
        raise RunnerError(f"{dist} has no pyodide-lock.json: build it with `make site`")
    args = ["node", "--expose-gc", str(ROOT / "tools" / "run_pyodide_bench.mjs"), str(dist)]
    proc = subprocess.run(
        [*args, "--quick"] if quick else args,
        cwd=ROOT,
        stdout=subprocess.PIPE,
        text=True,
        timeout=TIMEOUT,
        check=False,
    )
    if proc.returncode != 0:
        raise RunnerError(f"the Node runner failed (exit {proc.returncode})")
    try:
        return [json.loads(line) for line in proc.stdout.splitlines() if line.strip()]
    except json.JSONDecodeError as err:
        raise RunnerError(f"the Node runner printed something that is not a result: {err}") from err


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
        print(f"Pyodide and XState in turn under Node, load {loadavg()}", file=sys.stderr)
        rows += in_node(args.dist, args.quick)
    except (RunnerError, subprocess.TimeoutExpired) as err:
        print(f"bench.pyodide: {err}", file=sys.stderr)
        return 1
    write_report(args.out, rows, render(rows))
    return 0


if __name__ == "__main__":
    sys.exit(main())
