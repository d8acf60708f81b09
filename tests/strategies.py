"""Hypothesis strategies shared by the property tests: random schemas and mutation sequences."""

from __future__ import annotations

import os
import sys

from hypothesis import settings
from hypothesis import strategies as st

import asyncmachine as am

NAMES = ["A", "B", "C", "D", "E", "F", "G", "H"]
OPS = ("add", "remove", "set", "toggle")

Mutation = tuple[str, list[str]]
Case = tuple[dict[str, am.State], list[Mutation]]

EXAMPLES = int(os.environ.get("AM_PROPERTY_EXAMPLES", 25 if sys.platform == "emscripten" else 100))
"""Examples per property: fewer inside Pyodide, where every example runs ~10x slower (set
``AM_PROPERTY_EXAMPLES`` for a longer hunt)."""
PROPERTY = settings(max_examples=EXAMPLES, deadline=None)
BIG = settings(max_examples=max(EXAMPLES // 3, 10), deadline=None)
"""For the costlier properties (big machines, explanations): each example costs several small
ones."""


@st.composite
def schemas(draw: st.DrawFn) -> dict[str, am.State]:
    """3-8 states with random auto/multi/require/add/remove/after (no require-remove conflict).

    Sometimes only some states have relations, so states without any are common too.
    """
    n = draw(st.integers(min_value=3, max_value=8))
    names = NAMES[:n]
    related = names[: draw(st.integers(min_value=0, max_value=n))] if draw(st.booleans()) else names
    rel = st.lists(st.sampled_from(related or names), max_size=2, unique=True)
    none: st.SearchStrategy[list[str]] = st.just([])
    schema: dict[str, am.State] = {}
    for name in names:
        if name not in related:
            schema[name] = am.State(multi=draw(st.booleans()))
            continue
        require = draw(rel | none)
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
def cases(draw: st.DrawFn, max_mutations: int = 12) -> Case:
    """A schema plus a sequence of mutations over its states."""
    schema = draw(schemas())
    names = list(schema)
    muts: list[Mutation] = []
    for _ in range(draw(st.integers(min_value=1, max_value=max_mutations))):
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


@st.composite
def big_cases(draw: st.DrawFn) -> Case:
    """40-70 states, a few of them related, and up to 30 mutations (sets of 30-40 states, other
    mutations of 1-5): machines with more active states than the clock keeps in a tuple."""
    n = draw(st.integers(min_value=40, max_value=70))
    names = [f"S{i:02d}" for i in range(n)]
    schema = {name: am.State(multi=draw(st.booleans())) for name in names}
    for name in draw(st.lists(st.sampled_from(names), max_size=4, unique=True)):
        others = st.lists(st.sampled_from(names), max_size=2, unique=True)
        schema[name] = am.State(add=tuple(draw(others)), remove=tuple(draw(others)))
    muts: list[Mutation] = []
    for _ in range(draw(st.integers(min_value=1, max_value=30))):
        op = draw(st.sampled_from(("add", "add", "add", "remove", "set", "toggle")))
        size = draw(st.integers(min_value=0 if op == "set" else 1, max_value=5))
        if op == "set":
            size = draw(st.integers(min_value=30, max_value=40))
        states = draw(st.lists(st.sampled_from(names), min_size=size, max_size=size, unique=True))
        muts.append((op, states))
    return schema, muts
