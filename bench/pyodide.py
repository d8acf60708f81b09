"""W1 and W3 of the core workloads inside Pyodide, against CPython in the same run.

``python -m bench.pyodide`` (after ``make testdist``) runs the two workloads here on CPython, then
the same code inside Pyodide under Node (``tools/run_pyodide_bench.mjs``), and prints both rates
and the Pyodide/CPython ratio.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

from bench import workloads_am
from bench.harness import run_workload

ROOT = Path(__file__).resolve().parents[1]
N = {"W1": 200_000, "W3": 40_000}


def measure() -> dict[str, float]:
    """Median ops/s of W1 and W3 in this interpreter."""
    rates: dict[str, float] = {}
    for name, make in (("W1", workloads_am.w1), ("W3", workloads_am.w3)):
        result = run_workload("asyncmachine", name, "-", N[name], "op", make(N[name]))
        rates[name] = result.median_ops_per_sec
    return rates


def main() -> int:
    cpython = measure()
    proc = subprocess.run(
        [
            "node",
            "--experimental-wasm-stack-switching",
            str(ROOT / "tools" / "run_pyodide_bench.mjs"),
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=600,
        check=True,
    )
    pyodide: dict[str, Any] = json.loads(proc.stdout.strip().splitlines()[-1])
    print("| workload | CPython ops/s | Pyodide ops/s | Pyodide / CPython |")
    print("|---|---|---|---|")
    for name in N:
        ratio = pyodide[name] / cpython[name]
        print(f"| {name} | {cpython[name]:,.0f} | {pyodide[name]:,.0f} | {ratio:.2f} |")
    return 0


if __name__ == "__main__":
    if sys.argv[1:] == ["--measure"]:
        print(json.dumps(measure()))
    else:
        sys.exit(main())
