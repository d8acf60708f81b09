"""``python -m bench.coldstart --quick``: one cold and one warm visit of the demo and the bare page.

Tiny: each page must become interactive without console errors or requests leaving 127.0.0.1,
and the warm visit must be served from the cache (timings are the benchmark's business).
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def coldstart(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "bench.coldstart", *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


def test_quick_run(tmp_path: Path) -> None:
    out = tmp_path / "coldstart.jsonl"
    proc = coldstart("--quick", "--out", str(out))
    assert proc.returncode == 0, proc.stderr
    rows = {r["param"]: r for r in map(json.loads, out.read_text().splitlines())}
    assert sorted(rows) == ["bare-cold", "bare-warm", "demo-cold", "demo-warm"]
    assert all(r["n"] == 1 and r["median_ms"] > 0 for r in rows.values())
    for page in ("demo", "bare"):
        cold = rows[f"{page}-cold"]["median_transferred_bytes"]
        warm = rows[f"{page}-warm"]["median_transferred_bytes"]
        # the cold visit fetches the runtime (compressed), the warm one only revalidates
        assert cold > 2_000_000 and warm < 20_000, (page, cold, warm)
    assert "| demo cold / bare loadPyodide cold |" in proc.stdout
    assert out.with_suffix(".md").read_text().startswith("| page | cache |")


def test_bad_arguments(tmp_path: Path) -> None:
    proc = coldstart("--reps", "0")
    assert proc.returncode == 2 and "--reps must be at least 1" in proc.stderr
    proc = coldstart("--site", str(tmp_path))
    assert proc.returncode == 1 and "run `make site`" in proc.stderr
