"""``python -m bench.node --quick``: every row filled by a real pool of hashing workers."""

from __future__ import annotations

import sys

import pytest

pytest.importorskip("websockets")
if sys.platform == "emscripten":
    pytest.skip("needs subprocesses and listening sockets", allow_module_level=True)

import json
from pathlib import Path

from bench import node as bench_node


def test_quick_run_writes_every_row(tmp_path: Path) -> None:
    out = tmp_path / "node.jsonl"
    assert bench_node.main(["--quick", "--out", str(out)]) == 0
    rows = {row["workload"]: row for row in map(json.loads, out.read_text().splitlines())}
    assert sorted(rows) == ["replace", "req_worker", "startup", "throughput"]
    assert 0 < rows["startup"]["p50"] and rows["startup"]["workers"] == 4
    assert 0 < rows["req_worker"]["p50"] <= rows["req_worker"]["p99"]
    assert rows["throughput"]["pool"] > 0 and rows["throughput"]["speedup"] > 0
    assert 0 < rows["replace"]["p50"] <= rows["replace"]["max"]
    assert "|" in out.with_suffix(".md").read_text()
