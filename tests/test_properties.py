"""Property tests: clock and relation invariants on random schemas and mutation sequences."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

pytest.importorskip("hypothesis")

from hypothesis import given, settings
from hypothesis import strategies as st

import asyncmachine as am

NAMES = ["A", "B", "C", "D", "E", "F", "G", "H"]
OPS = ("add", "remove", "set", "toggle")

Mutation = tuple[str, list[str]]


@st.composite
def schemas(draw: st.DrawFn) -> dict[str, am.State]:
    """3-8 states with random auto/multi/require/add/remove/after (no require-remove conflict)."""
    n = draw(st.integers(min_value=3, max_value=8))
    names = NAMES[:n]
    rel = st.lists(st.sampled_from(names), max_size=2, unique=True)
    schema: dict[str, am.State] = {}
    for name in names:
        require = draw(rel)
        remove = [r for r in draw(rel) if r not in require]
        schema[name] = am.State(
            auto=draw(st.booleans()),
            multi=draw(st.booleans()),
            require=tuple(require),
            add=tuple(draw(rel)),
            remove=tuple(remove),
            after=tuple(draw(rel)),
        )
    return schema


@st.composite
def cases(draw: st.DrawFn) -> tuple[dict[str, am.State], list[Mutation]]:
    """A schema plus a sequence of mutations over its states."""
    schema = draw(schemas())
    names = list(schema)
    muts: list[Mutation] = []
    for _ in range(draw(st.integers(min_value=1, max_value=12))):
        op = draw(st.sampled_from(OPS))
        states = draw(
            st.lists(
                st.sampled_from(names), min_size=0 if op == "set" else 1, max_size=3, unique=True
            )
        )
        muts.append((op, states))
    return schema, muts


def apply(mach: am.Machine, op: str, states: list[str]) -> am.Result:
    """Run one mutation by name."""
    fn = {"add": mach.add, "remove": mach.remove, "set": mach.set, "toggle": mach.toggle}[op]
    return fn(states)


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


@settings(max_examples=100, deadline=None)
@given(cases())
def test_clock_and_relation_invariants(case: tuple[dict[str, am.State], list[Mutation]]) -> None:
    """No handlers: after every mutation the clock and relation invariants hold."""
    schema, muts = case
    mach = am.Machine(dict(schema))
    assert not mach.active_states()
    t = list(mach.time())
    assert t == [0] * len(t)
    for op, states in muts:
        res = apply(mach, op, states)
        t = check_invariants(mach, schema, t, res)


@settings(max_examples=100, deadline=None)
@given(cases(), st.data())
def test_enter_cancel_invariants(
    case: tuple[dict[str, am.State], list[Mutation]], data: st.DataObject
) -> None:
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
