"""``python -m bench.rpc --quick``: a real server and real clients on 127.0.0.1 fill every row."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

if sys.platform == "emscripten":  # pragma: no cover - only inside Pyodide
    pytest.skip("the benchmark needs a listening socket", allow_module_level=True)
pytest.importorskip("websockets")

from bench import rpc

LATENCIES = ("rtt", "echo", "fanout")


def test_quick_run_writes_every_row(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "rpc.jsonl"
    assert rpc.main(["--quick", "--out", str(out)]) == 0

    rows = [json.loads(line) for line in out.read_text().splitlines()]
    by = {row["workload"]: row for row in rows}
    assert sorted(by) == sorted(
        [*LATENCIES, "rtt/echo", "bytes", "push", "throughput", "connections"]
    )
    assert all(row["server"] == "inproc" and row["quick"] and row["n"] > 0 for row in rows)
    for workload in LATENCIES:
        assert 0 < by[workload]["p50"] <= by[workload]["p99"]
    assert by["rtt/echo"]["p50"] > 0 and by["rtt/echo"]["p99"] > 0
    assert by["rtt"]["mutations_per_s"] > 0
    assert by["fanout"]["clients"] == rpc.QUICK.fanout_clients
    assert by["throughput"]["mutations_per_s"] > 0
    assert by["throughput"]["n"] == rpc.QUICK.tp_clients * rpc.QUICK.tp_mutations
    conns = by["connections"]
    assert conns["connections"] == rpc.QUICK.connections
    assert 0 < conns["connect_p50"] <= conns["connect_p99"] and conns["connect_all_s"] >= 0
    assert 0 < conns["p50"] <= conns["p99"]

    # a mutation is one frame up and its result (carrying its diff) down; a push is one diff
    sent = by["bytes"]
    assert (sent["frames_up"], sent["frames_down"]) == (1, 1)
    assert 0 < sent["up"] < sent["up_wire"] and 0 < sent["down"] < sent["down_wire"]
    assert sent["snap"] > 0
    assert by["push"]["frames_down"] == 1 and 0 < by["push"]["down"] < by["push"]["down_wire"]

    assert "| mutation round trip p50 / p99" in capsys.readouterr().out
    assert out.with_suffix(".md").read_text().startswith("| measure |")
