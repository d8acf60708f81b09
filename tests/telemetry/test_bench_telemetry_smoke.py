"""``python -m bench.telemetry --quick``: every variant runs against a real receiver process."""

from __future__ import annotations

import sys

import pytest

if sys.platform == "emscripten":  # pragma: no cover - only inside Pyodide
    pytest.skip("the benchmark needs a receiver process", allow_module_level=True)

import json
from pathlib import Path

from bench import telemetry


def test_quick_run_writes_every_variant(tmp_path: Path) -> None:
    out = tmp_path / "telemetry.jsonl"
    assert telemetry.main(["--quick", "--out", str(out)]) == 0
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    assert [r["param"] for r in rows] == [f"telemetry={v}" for v in telemetry.VARIANTS]
    for row in rows:
        assert row["n"] == telemetry.N_QUICK and row["median_ops_per_sec"] > 0
        assert row["extra"]["ratio_to_none"] > 0
        assert row["extra"].get("loki_dropped", 0) == 0
        assert row["extra"].get("otel_not_exported", 0) == 0
