"""Timing protocol shared by every system (bench/README.md, "Protocol").

A workload is a callable ``rep(timer) -> dict | None``. It builds a fresh machine, binds handlers,
runs the untimed setup, then wraps only the timed region(s) in ``with timer:`` and finally
validates (raising :class:`ValidationError` on a wrong outcome). It may return extra per-rep
numbers (e.g. W5's register-only time), which are reported as medians.

The harness forces ``gc.collect()`` before each rep (and once more right before the first timed
region, so the garbage of an untimed build is not collected inside the timed one); GC is never
disabled. One warm-up rep is run and thrown away, then ``reps`` measured reps; the median rate
and its min..max are reported as one JSON line per workload (the spec's "Result format").
"""

from __future__ import annotations

import gc
import json
import platform
import statistics
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any, TextIO

MASK64 = (1 << 64) - 1

RepFn = Callable[["Timer"], "dict[str, float] | None"]


class ValidationError(AssertionError):
    """A workload ended in a state the spec does not allow: the run is invalid."""


def check(cond: bool, what: str) -> None:
    """Raise :class:`ValidationError` unless ``cond`` holds (never stripped by ``-O``)."""
    if not cond:
        raise ValidationError(what)


class Timer:
    """Accumulates the wall time of one rep's timed region(s) in nanoseconds.

    Used as ``with timer:``; it may be entered many times (W5 times 200 separate rounds).
    """

    __slots__ = ("_collected", "_t0", "ns")

    def __init__(self) -> None:
        self.ns = 0
        self._t0 = 0
        self._collected = False

    def __enter__(self) -> Timer:
        if not self._collected:
            gc.collect()
            self._collected = True
        self._t0 = time.perf_counter_ns()
        return self

    def __exit__(self, *exc: object) -> None:
        self.ns += time.perf_counter_ns() - self._t0


@dataclass
class BenchResult:
    """One JSON line of the spec's result format (plus min/max and a skip reason)."""

    system: str
    workload: str
    param: str
    n: int
    unit: str
    ops_per_sec: list[float] = field(default_factory=list)
    median_ops_per_sec: float = 0.0
    min_ops_per_sec: float = 0.0
    max_ops_per_sec: float = 0.0
    median_ns_per_op: float = 0.0
    extra: dict[str, Any] = field(default_factory=dict)
    skipped: str | None = None

    def to_json(self) -> str:
        d = dict(self.__dict__)
        if d["skipped"] is None:
            del d["skipped"]
        return json.dumps(d, sort_keys=False)


def loadavg() -> str:
    """``/proc/loadavg`` (the spec asks it logged between steps); empty where it does not exist."""
    try:
        with open("/proc/loadavg") as f:
            return f.read().strip()
    except OSError:
        return ""


@dataclass
class Run:
    """One system's workload, ready to run: what ``run_workload`` takes."""

    system: str
    workload: str
    param: str
    n: int
    unit: str
    rep: RepFn
    extra: dict[str, Any] = field(default_factory=dict)


def run_workload(
    system: str,
    workload: str,
    param: str,
    n: int,
    unit: str,
    rep: RepFn,
    *,
    reps: int = 5,
    warmup: int = 1,
    extra: dict[str, Any] | None = None,
    log: TextIO | None = None,
) -> BenchResult:
    """Run ``warmup`` + ``reps`` reps of ``rep`` and summarise the measured ones."""
    run = Run(system, workload, param, n, unit, rep, extra or {})
    return run_interleaved([run], reps=reps, warmup=warmup, log=log)[0]


def run_interleaved(
    runs: list[Run], *, reps: int = 5, warmup: int = 1, log: TextIO | None = None
) -> list[BenchResult]:
    """Runs alternating rep by rep (A, B, A, B, ...), one result each.

    On a shared box the load drifts within seconds; alternating makes it hit every run alike, so
    their ratio is what the systems differ by, not what the box did meanwhile.
    """
    log = log if log is not None else sys.stderr
    rates: list[list[float]] = [[] for _ in runs]
    extras: list[dict[str, list[float]]] = [{} for _ in runs]
    la = loadavg()
    wall0 = time.perf_counter()
    for i in range(warmup + reps):
        for k, run in enumerate(runs):
            gc.collect()
            timer = Timer()
            rep_extra = run.rep(timer) or {}
            if timer.ns <= 0:
                raise ValidationError(
                    f"{run.system} {run.workload} {run.param}: empty timed region"
                )
            if i < warmup:
                continue
            rates[k].append(run.n / (timer.ns / 1e9))
            for key, v in rep_extra.items():
                extras[k].setdefault(key, []).append(v)
    wall = time.perf_counter() - wall0
    out: list[BenchResult] = []
    for run, run_rates, run_extras in zip(runs, rates, extras, strict=True):
        med = statistics.median(run_rates)
        res = BenchResult(
            system=run.system,
            workload=run.workload,
            param=run.param,
            n=run.n,
            unit=run.unit,
            ops_per_sec=[round(r, 1) for r in run_rates],
            median_ops_per_sec=round(med, 1),
            min_ops_per_sec=round(min(run_rates), 1),
            max_ops_per_sec=round(max(run_rates), 1),
            median_ns_per_op=round(1e9 / med, 1),
            extra={
                **run.extra,
                **{key: round(statistics.median(v), 1) for key, v in run_extras.items()},
            },
        )
        res.extra.setdefault("loadavg_before", la)
        res.extra["wall_s"] = round(wall, 2)
        if len(runs) > 1:
            res.extra["interleaved_with"] = [r.system for r in runs if r is not run]
        print(
            f"  {run.system:<20} {run.workload:<4} {run.param:<10} n={run.n:<8} "
            f"median {res.median_ops_per_sec:>12,.1f} {run.unit}/s "
            f"({res.min_ops_per_sec:,.1f}..{res.max_ops_per_sec:,.1f})  {wall:.1f} s, load {la}",
            file=log,
            flush=True,
        )
        out.append(res)
    return out


def skipped(system: str, workload: str, param: str, unit: str, reason: str) -> BenchResult:
    """A result line recording a workload that was not run, and why."""
    print(f"  {system:<20} {workload:<4} {param:<10} skipped: {reason}", file=sys.stderr)
    return BenchResult(system, workload, param, 0, unit, skipped=reason)


def env_info() -> dict[str, str]:
    """Interpreter details recorded with every run."""
    return {
        "python": sys.version.split()[0],
        "implementation": platform.python_implementation(),
        "machine": platform.machine(),
    }


# --- W4 op generator ---------------------------------------------------------------------------


def splitmix64(seed: int) -> Iterator[int]:
    """The spec's splitmix64 stream (all arithmetic mod 2**64)."""
    s = seed & MASK64
    while True:
        s = (s + 0x9E3779B97F4A7C15) & MASK64
        z = s
        z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & MASK64
        z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & MASK64
        yield z ^ (z >> 31)


W4Op = tuple[list[int], list[int]]


def w4_ops(k: int, count: int, seed: int = 42) -> tuple[list[W4Op], int]:
    """``count`` W4 ops for ``k`` states and their checksum (sum of every index of every op).

    An op is 10 distinct "add" indexes in draw order, then 5 distinct "set" indexes that are not
    among that op's adds; duplicates are redrawn.
    """
    rng = splitmix64(seed)
    ops: list[W4Op] = []
    checksum = 0
    for _ in range(count):
        adds: list[int] = []
        while len(adds) < 10:
            i = next(rng) % k
            if i not in adds:
                adds.append(i)
        sets: list[int] = []
        while len(sets) < 5:
            i = next(rng) % k
            if i not in adds and i not in sets:
                sets.append(i)
        checksum += sum(adds) + sum(sets)
        ops.append((adds, sets))
    return ops, checksum


def w4_names(k: int) -> list[str]:
    """The W4 state names ``S00000`` .. for ``k`` states."""
    return [f"S{i:05d}" for i in range(k)]


def w4_ops_named(k: int, count: int) -> tuple[list[tuple[list[str], list[str]]], int]:
    """:func:`w4_ops` with indexes mapped to state names (done outside the timed region)."""
    names = w4_names(k)
    ops, checksum = w4_ops(k, count)
    return [([names[i] for i in a], [names[i] for i in s]) for a, s in ops], checksum


def w3_peer_callbacks(state_of: Callable[[int], str]) -> dict[str, Any]:
    """The 20 W3 callbacks of the single-state peers, by their shared naming convention:
    ``can_enter_Hi``/``can_exit_Hi`` conditions (= HiEnter/HiExit) and ``on_enter_<S>``/
    ``on_exit_<S>`` actions (= HiState/HiEnd), each counting on ``self.counter``."""

    def true_cb(self: Any) -> bool:
        self.counter += 1
        return True

    def plain_cb(self: Any) -> None:
        self.counter += 1

    attrs: dict[str, Any] = {}
    for i in range(5):
        attrs[f"can_enter_H{i}"] = true_cb
        attrs[f"on_enter_{state_of(i)}"] = plain_cb
        attrs[f"can_exit_H{i}"] = true_cb
        attrs[f"on_exit_{state_of(i)}"] = plain_cb
    return attrs
