"""Property tests: clock and relation invariants on random schemas and mutation sequences."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

pytest.importorskip("hypothesis")

from hypothesis import given
from hypothesis import strategies as st
from strategies import BIG, PROPERTY, Case, apply, big_cases, cases

import asyncmachine as am


def check_invariants(
    mach: am.Machine, schema: dict[str, am.State], before: list[int], res: am.Result
) -> list[int]:
    """The per-mutation invariants; returns the new time."""
    names = mach.state_names()
    now = list(mach.time())
    assert res in (am.Executed, am.Canceled)
    # odd ticks are exactly the active states
    odd = {n for n, t in zip(names, now, strict=True) if t % 2 == 1}
    assert set(mach.active_states()) == odd
    assert len(mach.active_states()) == len(odd)
    # requirements of active states are active
    for s in odd:
        for r in schema.get(s, am.State()).require:
            assert r in odd, (s, r, mach.string_all())
    # ticks never decrease; a change strictly raises the sum
    assert all(a >= b for a, b in zip(now, before, strict=True))
    if now != before:
        assert sum(now) > sum(before)
    # a cancelled mutation changes no tick
    if res == am.Canceled:
        assert now == before, mach.string_all()
    return now


@PROPERTY
@given(cases())
def test_clock_and_relation_invariants(case: Case) -> None:
    """No handlers: after every mutation the clock and relation invariants hold."""
    schema, muts = case
    mach = am.Machine(dict(schema))
    assert not mach.active_states()
    t = list(mach.time())
    assert t == [0] * len(t)
    for op, states in muts:
        res = apply(mach, op, states)
        t = check_invariants(mach, schema, t, res)


@PROPERTY
@given(cases(), st.data())
def test_enter_cancel_invariants(case: Case, data: st.DataObject) -> None:
    """XEnter returning False for a random X: a Canceled result leaves the clock unchanged."""
    schema, muts = case
    x = data.draw(st.sampled_from(list(schema)))
    mach = am.Machine(dict(schema))
    obj = SimpleNamespace()
    setattr(obj, f"{x}Enter", lambda e: False)
    mach.bind_handlers(obj)
    t = list(mach.time())
    for op, states in muts:
        res = apply(mach, op, states)
        t = check_invariants(mach, schema, t, res)


def three_ways(schema: dict[str, am.State], refuse: str | None) -> list[am.Machine]:
    """The same machine three times: unobserved (remembered resolutions and fast paths), traced
    (a transition object per mutation), and logged at DECISIONS (every resolution from scratch)."""
    lean = am.Machine(dict(schema))
    traced = am.Machine(dict(schema), tracers=[am.Tracer()])
    logged = am.Machine(dict(schema), log_level=am.LogLevel.DECISIONS, logger=lambda lvl, m: None)
    if refuse is not None:
        for mach in (lean, traced, logged):
            mach.bind_handlers({f"{refuse}Enter": lambda e: False})
    return [lean, traced, logged]


@PROPERTY
@given(cases(max_mutations=20), st.data())
def test_shortcuts_change_nothing(case: Case, data: st.DataObject) -> None:
    """Remembered resolutions, the no-relations fast path and the object-free path give exactly
    what resolving every mutation from scratch gives: results, clocks and active orders."""
    schema, muts = case
    refuse = data.draw(st.none() | st.sampled_from(list(schema)))
    machines = three_ways(schema, refuse)
    for op, states in muts * 2:  # twice: the second round hits what the first remembered
        results = [apply(mach, op, states) for mach in machines]
        assert results[0] == results[1] == results[2], (op, states, results)
        views = [(m.active_states(), list(m.time()), m.queue_tick()) for m in machines]
        assert views[0] == views[1] == views[2], (op, states)


class Befores(am.Tracer):
    """What each transition said its before and target states were."""

    def __init__(self) -> None:
        self.seen: list[tuple[list[str], list[str], list[str]]] = []

    def transition_end(self, tx: am.Transition) -> None:
        self.seen.append((tx.states_before, tx.target_states, list(tx.time_before)))


@BIG
@given(big_cases())
def test_big_machines_keep_their_order(case: Case) -> None:
    """With many active states the clock keeps the order as a log; every add, remove and set
    gives the same order, and transitions the same before/target states, as a machine that
    resolves everything from scratch."""
    schema, muts = case
    lean = am.Machine(dict(schema))
    traced, logged = Befores(), Befores()
    mach_traced = am.Machine(dict(schema), tracers=[traced])
    mach_logged = am.Machine(
        dict(schema), tracers=[logged], log_level=am.LogLevel.OPS, logger=lambda lvl, m: None
    )
    machines = [lean, mach_traced, mach_logged]
    for op, states in muts:
        results = [apply(mach, op, states) for mach in machines]
        assert results[0] == results[1] == results[2], (op, states)
        # (the traced machine is read only at the end: reading the order between mutations
        # would hide how its transitions see their before states)
        assert lean.active_states() == mach_logged.active_states(), (op, states)
        assert list(lean.time()) == list(mach_logged.time())
    assert traced.seen == logged.seen
    assert mach_traced.active_states() == lean.active_states()


class FirstTransition(am.Tracer):
    """The first transition that ends after ``reset()``."""

    def __init__(self) -> None:
        self.tx: am.Transition | None = None

    def transition_end(self, tx: am.Transition) -> None:
        if self.tx is None and not tx.mutation.is_check:
            self.tx = tx


@BIG
@given(cases(), st.data())
def test_explanations_tell_what_happens(case: Case, data: st.DataObject) -> None:
    """explain_add/explain_remove answer what add/remove then return, with the same target,
    enters and exits, and name a rejected state exactly when the relations drop one."""
    schema, muts = case
    refuse = data.draw(st.none() | st.sampled_from(list(schema)))
    first = FirstTransition()
    mach = am.Machine(dict(schema), tracers=[first])
    if refuse is not None:
        mach.bind_handlers({f"{refuse}Enter": lambda e: False})
    for op, states in muts:
        if op not in ("add", "remove"):
            apply(mach, op, states)
            continue
        explain = mach.explain_add if op == "add" else mach.explain_remove
        ex = explain(states)
        first.tx = None
        assert apply(mach, op, states) == ex.result, (op, states, ex)
        tx = first.tx
        assert tx is not None
        assert (tx.target_states, tx.enters, tx.exits) == (ex.target, ex.added, ex.removed)
        assert bool(ex.rejected) == (op == "add" and not set(states) <= set(ex.target))
        assert (ex.canceled_by is not None) == (ex.result == am.Canceled and not ex.rejected)
