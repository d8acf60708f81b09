"""The lean floor runs the engine's workloads and passes the same checks; the ratio table reads
the results it is given (bench/floor.py, bench/run.py)."""

from __future__ import annotations

import sys

import pytest

if sys.platform == "emscripten":  # pragma: no cover - only inside Pyodide
    pytest.skip("bench/ is not part of the package", allow_module_level=True)

from bench import floor, run, workloads_am
from bench.harness import Run, Timer, ValidationError, run_interleaved


def tiny(runs: list[Run]) -> dict[str, Run]:
    return {f"{r.workload} {r.param}".strip(): r for r in runs}


def test_floor_does_the_work_of_every_workload() -> None:
    """Each quick workload's rep runs and validates on the floor (and on the engine)."""
    for system, name in ((floor, "floor"), (workloads_am.am, "asyncmachine")):
        runs = tiny(workloads_am.specs(quick=True, system=system, name=name))
        assert {"W1", "W2", "W3", "W4 K=100", "W5 K=1000", "W5s K=1000"} <= set(runs)
        for key, spec in runs.items():
            if key.startswith("W4") and key != "W4 K=100":
                continue  # the same code with more states
            if name == "floor" and key.startswith("W5s"):
                continue  # W5's code, one add1 at a time: the floor's O(active) adds take a second
            timer = Timer()
            spec.rep(timer)
            assert timer.ns > 0, key


def test_floor_validation_catches_a_wrong_machine() -> None:
    """The checks are real: a floor that forgets ticks fails W1's validation."""

    class Broken(floor.Machine):
        def tick(self, state: str) -> int:
            return 0

    broken = type("BrokenFloor", (), {"Machine": Broken, "State": floor.State})
    with pytest.raises(ValidationError, match="W1"):
        workloads_am.w1(10, broken)(Timer())  # type: ignore[arg-type]


def test_floor_semantics_on_the_workload_schemas() -> None:
    """W1's mutual removal and W2's add/require/auto chain come out as the engine's."""
    w1 = floor.Machine({"A": floor.State(remove=("B",)), "B": floor.State(remove=("A",))})
    w1.add1("A")
    w1.add1("B")
    assert w1.active_states() == ["B"] and (w1.tick("A"), w1.tick("B")) == (2, 1)
    w2 = floor.Machine(workloads_am.w2_schema(floor))
    w2.add1("S00")
    assert len(w2.active_states()) == 20
    w2.remove1("S00")
    assert w2.active_states() == [] and w2.tick("S19") == 2


def test_interleaved_runs_report_each_system() -> None:
    runs = [
        Run(n, "W1", "", 10, "mutation", workloads_am.w1(10, s))
        for n, s in (("floor", floor), ("asyncmachine", workloads_am.am))
    ]
    results = run_interleaved(runs, reps=1, warmup=0)
    assert [r.system for r in results] == ["floor", "asyncmachine"]
    assert results[0].extra["interleaved_with"] == ["asyncmachine"]


def row(system: str, workload: str, param: str, rate: float) -> dict[str, object]:
    return {
        "system": system,
        "workload": workload,
        "param": param,
        "unit": "op",
        "n": 1,
        "median_ops_per_sec": rate,
        "min_ops_per_sec": rate,
        "max_ops_per_sec": rate,
    }


def test_target_table_ratios() -> None:
    """Ratios to the floor, to a constant (Go's W2) and between two params, PASS/FAIL each."""
    rows = [
        row("asyncmachine", "W1", "", 90.0),
        row("floor", "W1", "", 100.0),
        row("asyncmachine", "W2", "", 30_207.0),
        row("asyncmachine", "W4", "K=100", 100.0),
        row("asyncmachine", "W4", "K=10000", 70.0),
        {**row("asyncmachine", "W5s", "K=1000", 1.0), "extra": {"late_early_add1": 1.3}},
    ]
    table = run.render_table(rows)
    assert "| W1 am / lean floor (mutations/s) | 0.90 | >= 0.8 | PASS |" in table
    assert "| W2 am / asyncmachine-go 10,069 cycles/s | 3.00 | >= 1.5 | PASS |" in table
    assert "| W4 am K=10000 / am K=100 | 0.70 | >= 0.8 | FAIL |" in table
    assert "| W3 am / lean floor (cycles/s) | n/a |" in table
    assert "first 100 (single add O(called + changed)) | 1.30 | <= 2 | PASS |" in table
