"""W1-W5 on asyncmachine (this project's engine), through the public API only.

Every workload follows bench/README.md: names, orders, N and validation checks are normative.
Mutations are called as bound methods fetched before the timed region (the same for the peers).
Each workload takes a ``system`` (default: the ``asyncmachine`` package): anything with the same
``Machine`` and ``State`` names, such as the lean floor in ``bench.floor``, runs the very same code
and checks, which is what makes the engine/floor ratios of ``bench.run`` honest.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from types import ModuleType
from typing import Any

import asyncmachine as am
from bench.harness import BenchResult, Run, Timer, check, run_interleaved, w4_names, w4_ops_named

SYSTEM = "asyncmachine"

# The spec's N, except W2: 100,000 cycles take ~25 s per rep here (x6 reps), so 20,000 are run
# (ops/sec is a rate; the N used is recorded in every result line).
N_FULL: dict[str, Any] = {
    "W1": 1_000_000,
    "W2": 20_000,
    "W3": 200_000,
    "W4": {100: 20_000, 1000: 20_000, 10_000: 2_000},
    "W5": 200,  # rounds of 1000 waiters
    "W5g": 20,
}
N_QUICK: dict[str, Any] = {
    "W1": 2_000,
    "W2": 200,
    "W3": 500,
    "W4": {100: 100, 1000: 100, 10_000: 20},
    "W5": 2,
    "W5g": 1,
}
W5_K = 1000


# --- W1 ----------------------------------------------------------------------------------------


def w1(n: int, system: ModuleType = am) -> Callable[[Timer], None]:
    """W1 "toggle": ``A {remove: B}``, ``B {remove: A}``; add1(A) / add1(B) alternated."""
    if n % 2:
        raise ValueError("W1 N must be even")
    schema = {"A": system.State(remove=("B",)), "B": system.State(remove=("A",))}

    def rep(timer: Timer) -> None:
        mach = system.Machine(schema)
        add1 = mach.add1
        with timer:
            for _ in range(n // 2):
                add1("A")
                add1("B")
        check(
            mach.tick("A") + mach.tick("B") == 2 * n - 1,
            f"W1: tick(A)+tick(B) = {mach.tick('A') + mach.tick('B')}, expected {2 * n - 1}",
        )
        check(mach.is1("B") and mach.not1("A"), f"W1: {mach.active_states()}")

    return rep


# --- W2 ----------------------------------------------------------------------------------------

W2_NAMES = [f"S{i:02d}" for i in range(20)]


def w2_schema(system: ModuleType = am) -> dict[str, Any]:
    """S00 adds S01..S18; each S_i requires S_{i-1}; S19 is auto and requires S18."""
    n = W2_NAMES
    schema: dict[str, Any] = {n[0]: system.State(add=tuple(n[1:19]))}
    for i in range(1, 19):
        schema[n[i]] = system.State(require=(n[i - 1],))
    schema[n[19]] = system.State(auto=True, require=(n[18],))
    return schema


def w2(n: int, system: ModuleType = am) -> Callable[[Timer], None]:
    """W2 "relations": a cycle is add1(S00) (+ auto S19), then remove1(S00) (Require cascade)."""
    schema = w2_schema(system)

    def rep(timer: Timer) -> None:
        mach = system.Machine(schema)
        add1, remove1 = mach.add1, mach.remove1
        add1("S00")
        check(len(mach.active_states()) == 20, f"W2 setup add: {mach.active_states()}")
        remove1("S00")
        check(len(mach.active_states()) == 0, f"W2 setup remove: {mach.active_states()}")
        with timer:
            for _ in range(n):
                add1("S00")
                remove1("S00")
        check(
            mach.tick("S19") == 2 * (n + 1),
            f"W2: tick(S19) = {mach.tick('S19')}, expected {2 * (n + 1)}",
        )

    return rep


# --- W3 ----------------------------------------------------------------------------------------


def _w3_handlers_class() -> type:
    """20 handlers by am's naming convention; each body only increments a counter."""

    def enter(self: Any, e: am.Event) -> bool:
        self.counter += 1
        return True

    def final(self: Any, e: am.Event) -> None:
        self.counter += 1

    attrs: dict[str, Any] = {"counter": 0}
    for i in range(5):
        attrs[f"H{i}Enter"] = enter
        attrs[f"H{i}State"] = final
        attrs[f"H{i}Exit"] = enter
        attrs[f"H{i}End"] = final
    return type("W3Handlers", (), attrs)


def w3(n: int, system: ModuleType = am) -> Callable[[Timer], None]:
    """W3 "handlers": 5 states H0..H4, 4 handlers each; a cycle is add1(Hi) + remove1(Hi)."""
    schema = {f"H{i}": system.State() for i in range(5)}
    cls = _w3_handlers_class()
    hs = [f"H{i}" for i in range(5)]

    def rep(timer: Timer) -> None:
        mach = system.Machine(schema)
        h: Any = cls()
        mach.bind_handlers(h)
        add1, remove1 = mach.add1, mach.remove1
        with timer:
            for i in range(n):
                s = hs[i % 5]
                add1(s)
                remove1(s)
        check(h.counter == 4 * n, f"W3: counter {h.counter}, expected {4 * n}")
        check(mach.active_states() == [], f"W3: {mach.active_states()}")

    return rep


# --- W4 ----------------------------------------------------------------------------------------


def w4(k: int, n: int, system: ModuleType = am) -> tuple[Callable[[Timer], None], int]:
    """W4 "wide": K states; an op is add(10 states) then set(5 other states)."""
    ops, checksum = w4_ops_named(k, n)
    schema = {s: system.State() for s in w4_names(k)}

    def rep(timer: Timer) -> None:
        mach = system.Machine(schema)
        add, set_ = mach.add, mach.set
        add(ops[0][0])
        set_(ops[0][1])
        check(set(mach.active_states()) == set(ops[0][1]), "W4 setup: active != op0.sets")
        with timer:
            for adds, sets in ops:
                add(adds)
                set_(sets)
        active = mach.active_states()
        check(
            set(active) == set(ops[-1][1]) and len(active) == 5,
            f"W4: active {active}, expected {ops[-1][1]}",
        )

    return rep, checksum


# --- W5 ----------------------------------------------------------------------------------------

W5_NAMES = [f"W{i:04d}" for i in range(W5_K)]


def w5(rounds: int, system: ModuleType = am) -> Callable[[Timer], dict[str, float]]:
    """W5 "subscribe": per round register 1000 when1() waiters, then one add(all 1000 states).

    Timed: register + activate + check that every waiter is done (remove(all) is untimed).
    Register-only and activate-only ns per waiter are reported as extras.
    """
    schema = {s: system.State() for s in W5_NAMES}

    def rep(timer: Timer) -> dict[str, float]:
        mach = system.Machine(schema)
        when1, add, remove = mach.when1, mach.add, mach.remove
        names = W5_NAMES
        reg_ns = act_ns = 0
        pc = time.perf_counter_ns
        for _ in range(rounds):
            with timer:
                t0 = pc()
                ws = [when1(s) for s in names]
                t1 = pc()
                add(names)
                t2 = pc()
                ok = all(w.done() for w in ws)
            reg_ns += t1 - t0
            act_ns += t2 - t1
            check(ok, "W5: a waiter is not resolved when add() returns")
            check(not any(w.cancelled() for w in ws), "W5: a waiter was cancelled")
            remove(names)
            check(mach.active_states() == [], f"W5: {len(mach.active_states())} still active")
        total = rounds * W5_K
        return {"register_ns_per_waiter": reg_ns / total, "activate_ns_per_waiter": act_ns / total}

    return rep


def w5s(system: ModuleType = am) -> Callable[[Timer], dict[str, float]]:
    """W5s: one round, activated by 1000 separate add1() calls.

    Also reported: ``late_early_add1``, what the last 100 calls cost over the first 100 (with
    900 more states active): about 1 when a single add costs O(called + changed), about 10 or
    more when it costs O(active states).
    """
    schema = {s: system.State() for s in W5_NAMES}
    first, middle, last = W5_NAMES[:100], W5_NAMES[100:-100], W5_NAMES[-100:]

    def rep(timer: Timer) -> dict[str, float]:
        mach = system.Machine(schema)
        when1, add1 = mach.when1, mach.add1
        names = W5_NAMES
        pc = time.perf_counter_ns
        with timer:
            t0 = pc()
            ws = [when1(s) for s in names]
            t1 = pc()
            for s in first:
                add1(s)
            t2 = pc()
            for s in middle:
                add1(s)
            t3 = pc()
            for s in last:
                add1(s)
            t4 = pc()
            ok = all(w.done() for w in ws)
        check(ok, "W5s: a waiter is not resolved")
        check(len(mach.active_states()) == W5_K, "W5s: not all active")
        return {
            "register_ns_per_waiter": (t1 - t0) / W5_K,
            "activate_ns_per_waiter": (t4 - t1) / W5_K,
            "late_early_add1": round((t4 - t3) / (t2 - t1), 2),
        }

    return rep


def w5g(rounds: int) -> Callable[[Timer], dict[str, float]]:
    """W5g: every waiter is awaited by its own asyncio task; time until all woke (gather).

    Per round, timed: register 1000 waiters, start 1000 tasks awaiting them, let them all
    suspend, one add(all), then ``asyncio.gather`` until every task has woken.
    """
    schema = {s: am.State() for s in W5_NAMES}

    async def waiter_task(w: am.Waiter, woke: list[int]) -> None:
        await w
        woke[0] += 1

    async def run_rounds(timer: Timer) -> dict[str, float]:
        mach = am.Machine(schema)
        when1, add, remove = mach.when1, mach.add, mach.remove
        names = W5_NAMES
        pc = time.perf_counter_ns
        wake_ns = 0
        for _ in range(rounds):
            woke = [0]
            with timer:
                ws = [when1(s) for s in names]
                tasks = [asyncio.create_task(waiter_task(w, woke)) for w in ws]
                await asyncio.sleep(0)  # every task runs up to its await
                t0 = pc()
                add(names)
                await asyncio.gather(*tasks)
                wake_ns += pc() - t0
            check(woke[0] == W5_K, f"W5g: {woke[0]} tasks woke, expected {W5_K}")
            remove(names)
            check(mach.active_states() == [], "W5g: states still active")
        return {"activate_wake_ns_per_waiter": wake_ns / (rounds * W5_K)}

    def rep(timer: Timer) -> dict[str, float]:
        return asyncio.run(run_rounds(timer))

    return rep


# --- entry point -------------------------------------------------------------------------------


def specs(quick: bool = False, system: ModuleType = am, name: str = SYSTEM) -> list[Run]:
    """Every workload for ``system`` (reported as ``name``); W5g only where waiters are
    awaitable (the engine)."""
    cfg = N_QUICK if quick else N_FULL
    out = [
        Run(name, "W1", "", cfg["W1"], "mutation", w1(cfg["W1"], system)),
        Run(name, "W2", "", cfg["W2"], "cycle", w2(cfg["W2"], system)),
        Run(name, "W3", "", cfg["W3"], "cycle", w3(cfg["W3"], system)),
    ]
    for k in (100, 1000, 10_000):
        rep, checksum = w4(k, cfg["W4"][k], system)
        out.append(Run(name, "W4", f"K={k}", cfg["W4"][k], "op", rep, {"checksum": checksum}))
    waiter = "resolved waiter"
    n5 = cfg["W5"] * W5_K
    out.append(
        Run(name, "W5", f"K={W5_K}", n5, waiter, w5(cfg["W5"], system), {"rounds": cfg["W5"]})
    )
    out.append(Run(name, "W5s", f"K={W5_K}", W5_K, waiter, w5s(system), {"rounds": 1}))
    if system is am:
        rounds = cfg["W5g"]
        out.append(
            Run(name, "W5g", f"K={W5_K}", rounds * W5_K, waiter, w5g(rounds), {"rounds": rounds})
        )
    return out


def run(quick: bool = False) -> list[BenchResult]:
    """All asyncmachine workloads, one after another."""
    return [run_interleaved([spec])[0] for spec in specs(quick)]
