"""W1, W3, W4 on ``transitions`` (a single-state peer), as bench/README.md describes for peers.

Fastest plain configuration: ``transitions.Machine`` with the machine as its own model, no queue,
``auto_transitions=False`` (W4 needs the ``to_<S>`` jumps, so it turns them on: that is exactly
the K^2 transitions the spec counts).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from transitions import Machine

from bench.harness import (
    BenchResult,
    Timer,
    check,
    run_workload,
    skipped,
    w3_peer_callbacks,
    w4_names,
    w4_ops_named,
)

SYSTEM = "transitions"

# A peer may use a smaller N than the spec (ops/sec is a rate); these are the N used.
N_FULL = {"W1": 100_000, "W3": 20_000, "W4": {100: 2_000, 1000: 2_000}}
N_QUICK = {"W1": 2_000, "W3": 500, "W4": {100: 100}}
# K^2 transitions: K=10000 means 10^8 Transition objects (hours and tens of GB).
W4_SKIP = {
    1000: "skipped in --quick (K^2 = 10^6 transitions: ~9 s build)",
    10_000: "quadratic build: K^2 = 10^8 transitions (~9 s at K=1000: hours, tens of GB)",
}


def w1(n: int) -> Callable[[Timer], None]:
    """W1 "toggle": ``go_b: A->B``, ``go_a: B->A`` alternated from A; unit = transition."""
    if n % 2:
        raise ValueError("W1 N must be even")

    def rep(timer: Timer) -> None:
        m = Machine(
            states=["A", "B"],
            transitions=[
                {"trigger": "go_b", "source": "A", "dest": "B"},
                {"trigger": "go_a", "source": "B", "dest": "A"},
            ],
            initial="A",
            auto_transitions=False,
        )
        go_a: Callable[[], bool] = m.go_a
        go_b: Callable[[], bool] = m.go_b
        with timer:
            for _ in range(n // 2):
                go_b()
                go_a()
        # N even: the last transition (i = N-1) is go_a, so A is the state.
        check(m.state == "A", f"W1: state {m.state!r}, expected 'A'")

    return rep


def _w3_machine_class() -> type[Machine]:
    """A Machine subclass carrying the 20 callbacks by ``transitions``' naming convention."""
    attrs = w3_peer_callbacks(lambda i: f"H{i}")
    return type("W3Machine", (Machine,), attrs)


def w3(n: int) -> Callable[[Timer], None]:
    """W3 "handlers": ``add_Hi: idle->Hi`` / ``rm_Hi: Hi->idle`` with the 4 callbacks."""
    cls = _w3_machine_class()
    names = [f"H{i}" for i in range(5)]
    trans = []
    for s in names:
        trans.append(
            {"trigger": f"add_{s}", "source": "idle", "dest": s, "conditions": f"can_enter_{s}"}
        )
        trans.append(
            {"trigger": f"rm_{s}", "source": s, "dest": "idle", "conditions": f"can_exit_{s}"}
        )

    def rep(timer: Timer) -> None:
        m: Any = cls(
            states=["idle", *names], transitions=trans, initial="idle", auto_transitions=False
        )
        m.counter = 0
        adds = [getattr(m, f"add_{s}") for s in names]
        rms = [getattr(m, f"rm_{s}") for s in names]
        with timer:
            for i in range(n):
                j = i % 5
                adds[j]()
                rms[j]()
        check(m.counter == 4 * n, f"W3: counter {m.counter}, expected {4 * n}")
        check(m.state == "idle", f"W3: state {m.state!r}, expected 'idle'")

    return rep


# From this K on, one machine is built per workload and reused by every rep: its K^2 build takes
# ~9 s at K=1000 (x6 reps). Reuse changes nothing measured: a single-state machine has no memory
# beyond its current state, which the untimed setup op resets at the start of every rep.
W4_REUSE_FROM_K = 1000


def w4(k: int, n: int) -> tuple[Callable[[Timer], dict[str, float]], int]:
    """W4 "wide": an op is 15 ``to_<S>`` jumps (10 adds, then 5 sets); unit = op."""
    ops, checksum = w4_ops_named(k, n)
    names = w4_names(k)

    def build() -> Any:
        return Machine(states=names, initial=names[0], auto_transitions=True)

    shared = build() if k >= W4_REUSE_FROM_K else None

    def rep(timer: Timer) -> dict[str, float]:
        m: Any = shared if shared is not None else build()
        jumps = [[getattr(m, "to_" + s) for s in adds + sets] for adds, sets in ops]
        for j in jumps[0]:
            j()
        check(m.state == ops[0][1][-1], "W4 setup: wrong state")
        with timer:
            for op in jumps:
                for j in op:
                    j()
        # Single-state: only the last "set" of the last op can be active.
        check(m.state == ops[-1][1][-1], f"W4: state {m.state!r}, expected {ops[-1][1][-1]!r}")
        return {}

    return rep, checksum


def run(quick: bool = False) -> list[BenchResult]:
    """All of this peer's workloads, one after another."""
    cfg = N_QUICK if quick else N_FULL
    reps = 5
    out: list[BenchResult] = []
    n1 = int(cfg["W1"])  # type: ignore[call-overload]
    out.append(
        run_workload(
            SYSTEM,
            "W1",
            "",
            n1,
            "transition",
            w1(n1),
            reps=reps,
            extra={"config": "auto_transitions=False, model=machine"},
        )
    )
    n3 = int(cfg["W3"])  # type: ignore[call-overload]
    out.append(run_workload(SYSTEM, "W3", "", n3, "cycle", w3(n3), reps=reps))
    w4n: dict[int, int] = cfg["W4"]  # type: ignore[assignment]
    for k in (100, 1000, 10_000):
        param = f"K={k}"
        if k not in w4n:
            out.append(skipped(SYSTEM, "W4", param, "op", W4_SKIP[k]))
            continue
        rep, checksum = w4(k, w4n[k])
        ex: dict[str, Any] = {"checksum": checksum, "jumps_per_op": 15}
        if k >= W4_REUSE_FROM_K:
            ex["machine_reused_across_reps"] = "K^2 build ~9 s; setup op resets the state"
        out.append(run_workload(SYSTEM, "W4", param, w4n[k], "op", rep, reps=reps, extra=ex))
    return out
