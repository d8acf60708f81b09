"""W1, W3 (+ W3p), W4 (+ W4p) on python-statemachine 3.x, as bench/README.md describes for peers.

Classes are built dynamically with the library's own metaclasses (the same as writing the class
statement). The class is the schema, built once per workload; every rep makes a fresh instance
(the machine). ``StateMachine`` is used (not ``StateChart``): the plain configuration, and it
raises ``TransitionNotAllowed`` on an event that does not apply, which doubles as validation.
"""

from __future__ import annotations

import time
import types
from collections.abc import Callable
from typing import Any

from statemachine import State, StateMachine
from statemachine.state import NestedStateFactory

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

SYSTEM = "python-statemachine"

# A peer may use a smaller N than the spec (ops/sec is a rate); these are the N used.
N_FULL: dict[str, Any] = {
    "W1": 10_000,
    "W3": 4_000,
    "W3p": 2_000,
    "W4": {100: 200},
    "W4p": {100: 30, 1000: 1},
}
N_QUICK: dict[str, Any] = {
    "W1": 200,
    "W3": 50,
    "W3p": 50,
    "W4": {100: 5},
    "W4p": {100: 1},
}
# Measured on the 2-core box: ~75 us of class build per Transition, and every jump scans the
# event's K transitions; in W4p each event costs O(K) (2 ms at K=100, 75 ms at K=1000) and the
# K=10000 chart takes ~110 s to define plus ~330 s to instantiate.
W4_SKIP = {
    1000: "quadratic build: K^2 = 10^6 transitions, ~75 s class build (+ O(K) per jump)",
    10_000: "quadratic build: K^2 = 10^8 transitions (hours, tens of GB)",
}
W4P_SKIP = {
    10_000: "build ~110 s (class) + ~330 s (instance) and ~1 s per event: minutes per op",
}
W4P_SKIP_QUICK = {1000: "skipped in --quick (build ~2.5 s, ~75 ms per event)"}


def _new_machine_class(name: str, attrs: dict[str, Any]) -> type[StateMachine]:
    """``class <name>(StateMachine): <attrs>`` through the library's metaclass."""
    return types.new_class(name, (StateMachine,), exec_body=lambda ns: ns.update(attrs))


def w1(n: int) -> Callable[[Timer], None]:
    """W1 "toggle": ``go_b: A->B``, ``go_a: B->A`` alternated from A; unit = transition."""
    if n % 2:
        raise ValueError("W1 N must be even")
    a = State(initial=True)
    b = State()
    cls = _new_machine_class("W1", {"A": a, "B": b, "go_b": a.to(b), "go_a": b.to(a)})

    def rep(timer: Timer) -> None:
        m: Any = cls()
        go_a, go_b = m.go_a, m.go_b
        with timer:
            for _ in range(n // 2):
                go_b()
                go_a()
        check(m.current_state_value == "A", f"W1: state {m.current_state_value!r}, expected 'A'")

    return rep


def _w3_rep(
    cls: type[StateMachine], n: int, final_ok: Callable[[Any], bool]
) -> Callable[[Timer], None]:
    def rep(timer: Timer) -> None:
        m: Any = cls()
        m.counter = 0
        adds = [getattr(m, f"add_H{i}") for i in range(5)]
        rms = [getattr(m, f"rm_H{i}") for i in range(5)]
        with timer:
            for i in range(n):
                j = i % 5
                adds[j]()
                rms[j]()
        check(m.counter == 4 * n, f"W3: counter {m.counter}, expected {4 * n}")
        check(final_ok(m), f"W3: final configuration {m.current_state_value!r}")

    return rep


def w3(n: int) -> Callable[[Timer], None]:
    """W3 "handlers": single state; ``add_Hi: idle->Hi``, ``rm_Hi: Hi->idle``."""
    idle = State(initial=True)
    attrs: dict[str, Any] = {"idle": idle}
    for i in range(5):
        h = State()
        attrs[f"H{i}"] = h
        attrs[f"add_H{i}"] = idle.to(h, cond=f"can_enter_H{i}")
        attrs[f"rm_H{i}"] = h.to(idle, cond=f"can_exit_H{i}")
    attrs.update(w3_peer_callbacks(lambda i: f"H{i}"))
    cls = _new_machine_class("W3", attrs)
    return _w3_rep(cls, n, lambda m: m.current_state_value == "idle")


def w3p(n: int) -> Callable[[Timer], None]:
    """W3p: 5 parallel regions ``{off_Hi, on_Hi}``: true multi-state activity, same callbacks."""
    regions: dict[str, Any] = {}
    for i in range(5):
        off = State(initial=True)
        on = State()
        regions[f"R{i}"] = NestedStateFactory(
            f"R{i}",
            (State.Compound,),
            {
                f"off_H{i}": off,
                f"on_H{i}": on,
                f"add_H{i}": off.to(on, cond=f"can_enter_H{i}"),
                f"rm_H{i}": on.to(off, cond=f"can_exit_H{i}"),
            },
        )
    attrs: dict[str, Any] = {"regions": NestedStateFactory("regions", (State.Parallel,), regions)}
    attrs.update(w3_peer_callbacks(lambda i: f"on_H{i}"))
    cls = _new_machine_class("W3p", attrs)
    offs = {f"off_H{i}" for i in range(5)}
    return _w3_rep(cls, n, lambda m: offs <= set(m.configuration_values))


def w4(k: int, n: int) -> tuple[Callable[[Timer], None], int, float]:
    """W4 single-state: an op is 15 jumps ``to_<S>`` (each from every state: K^2 transitions)."""
    ops, checksum = w4_ops_named(k, n)
    names = w4_names(k)
    t0 = time.perf_counter()
    states = {s: State(initial=(i == 0)) for i, s in enumerate(names)}
    every = list(states.values())
    attrs: dict[str, Any] = dict(states)
    for s in names:
        attrs["to_" + s] = states[s].from_(*every)
    cls = _new_machine_class("W4", attrs)
    build_s = time.perf_counter() - t0

    def rep(timer: Timer) -> None:
        m: Any = cls()
        jumps = [[getattr(m, "to_" + s) for s in adds + sets] for adds, sets in ops]
        for j in jumps[0]:
            j()
        check(m.current_state_value == ops[0][1][-1], "W4 setup: wrong state")
        with timer:
            for op in jumps:
                for j in op:
                    j()
        want = ops[-1][1][-1]
        check(m.current_state_value == want, f"W4: {m.current_state_value!r}, expected {want!r}")

    return rep, checksum, build_s


def w4p(k: int, n: int) -> tuple[Callable[[Timer], None], int, float]:
    """W4p: K parallel regions ``{off_S, on_S}``; add = ``add_S`` per inactive state,
    set = ``rm_S``/``add_S`` events for the diff, computed by user code (no relations)."""
    ops, checksum = w4_ops_named(k, n)
    names = w4_names(k)
    t0 = time.perf_counter()
    regions: dict[str, Any] = {}
    for s in names:
        off = State(initial=True)
        on = State()
        regions[f"R_{s}"] = NestedStateFactory(
            f"R_{s}",
            (State.Compound,),
            {f"off_{s}": off, f"on_{s}": on, f"add_{s}": off.to(on), f"rm_{s}": on.to(off)},
        )
    par = NestedStateFactory("regions", (State.Parallel,), regions)
    cls = _new_machine_class("W4p", {"regions": par})
    build_s = time.perf_counter() - t0

    def rep(timer: Timer) -> None:
        m: Any = cls()
        add_ev = {s: getattr(m, "add_" + s) for s in names}
        rm_ev = {s: getattr(m, "rm_" + s) for s in names}
        active: dict[str, None] = {}  # an ordered set: deterministic event order

        def apply(adds: list[str], sets: list[str]) -> None:
            for s in adds:
                if s not in active:
                    add_ev[s]()
                    active[s] = None
            want = set(sets)
            for s in [s for s in active if s not in want]:
                rm_ev[s]()
                del active[s]
            for s in sets:
                if s not in active:
                    add_ev[s]()
                    active[s] = None

        def on_states() -> set[str]:
            return {v[3:] for v in m.configuration_values if v.startswith("on_")}

        apply(*ops[0])
        check(on_states() == set(ops[0][1]), "W4p setup: active != op0.sets")
        with timer:
            for adds, sets in ops:
                apply(adds, sets)
        check(on_states() == set(ops[-1][1]), "W4p: active != last op's sets")

    return rep, checksum, build_s


def run(quick: bool = False) -> list[BenchResult]:
    """All of this peer's workloads, one after another."""
    cfg = N_QUICK if quick else N_FULL
    out: list[BenchResult] = []
    cf = {"config": "StateMachine (sync engine), events called as bound methods"}
    out.append(run_workload(SYSTEM, "W1", "", cfg["W1"], "transition", w1(cfg["W1"]), extra=cf))
    out.append(run_workload(SYSTEM, "W3", "", cfg["W3"], "cycle", w3(cfg["W3"]), extra=cf))
    out.append(run_workload(SYSTEM, "W3p", "", cfg["W3p"], "cycle", w3p(cfg["W3p"]), extra=cf))
    for k in (100, 1000, 10_000):
        param = f"K={k}"
        if k not in cfg["W4"]:
            out.append(skipped(SYSTEM, "W4", param, "op", W4_SKIP[k]))
            continue
        rep, checksum, build_s = w4(k, cfg["W4"][k])
        out.append(
            run_workload(
                SYSTEM,
                "W4",
                param,
                cfg["W4"][k],
                "op",
                rep,
                extra={
                    "checksum": checksum,
                    "jumps_per_op": 15,
                    "class_build_s": round(build_s, 3),
                },
            )
        )
    for k in (100, 1000, 10_000):
        param = f"K={k}"
        if k not in cfg["W4p"]:
            why = W4P_SKIP.get(k) or W4P_SKIP_QUICK[k]
            out.append(skipped(SYSTEM, "W4p", param, "op", why))
            continue
        rep, checksum, build_s = w4p(k, cfg["W4p"][k])
        out.append(
            run_workload(
                SYSTEM,
                "W4p",
                param,
                cfg["W4p"][k],
                "op",
                rep,
                extra={"checksum": checksum, "class_build_s": round(build_s, 3)},
            )
        )
    return out
