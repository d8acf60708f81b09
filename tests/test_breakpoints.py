"""Breakpoints (docs/semantics.md#breakpoints)."""

from __future__ import annotations

from typing import Any

import asyncmachine as am

St = am.State
NO_RELS = {"A": St(), "B": St(), "C": St(), "D": St()}


class BpTracer(am.Tracer):
    """Keeps breakpoint hook calls."""

    def __init__(self) -> None:
        self.hits: list[tuple[Any, Any]] = []

    def breakpoint(self, mach: Any, tx: Any) -> None:
        self.hits.append((mach, tx))


def bp_machine(
    schema: dict[str, am.State] | None = None,
) -> tuple[am.Machine, BpTracer, list[tuple[am.LogLevel, str]]]:
    """A machine with a breakpoint tracer and a collecting logger at CHANGES."""
    t = BpTracer()
    lines: list[tuple[am.LogLevel, str]] = []
    mach = am.Machine(
        dict(schema or NO_RELS),
        tracers=(t,),
        log_level=am.LogLevel.CHANGES,
        logger=lambda lvl, msg: lines.append((lvl, msg)),
        log_id=False,
    )
    return mach, t, lines


def bp_lines(lines: list[tuple[am.LogLevel, str]]) -> list[tuple[am.LogLevel, str]]:
    """Only `[breakpoint]` lines."""
    return [(lvl, m) for lvl, m in lines if m.startswith("[breakpoint]")]


# --- breakpoints ----------------------------------------------------------------------------------


def test_breakpoint_on_added() -> None:
    """Activating the listed states calls the hook with the transition and logs at CHANGES."""
    mach, t, lines = bp_machine()
    mach.add_breakpoint(["A"], [])
    mach.add1("B")
    assert t.hits == []
    assert mach.add1("A") == am.Executed
    assert len(t.hits) == 1
    m, tx = t.hits[0]
    assert m is mach
    assert tx is not None
    assert "A" in list(tx.target_states)
    assert len(bp_lines(lines)) == 1
    assert bp_lines(lines)[0][0] == am.LogLevel.CHANGES
    assert mach.string_all() == "(A:1 B:1) [C:0 D:0 Exception:0]"


def test_breakpoint_on_removed() -> None:
    """Deactivating the listed states hits too."""
    mach, t, lines = bp_machine()
    mach.add(["A", "B"])
    mach.add_breakpoint([], ["A"])
    mach.remove1("B")
    assert t.hits == []
    mach.remove1("A")
    assert len(t.hits) == 1
    assert len(bp_lines(lines)) == 1


def test_breakpoint_needs_all_added() -> None:
    """Non-strict: all of `added` must activate; extra changes are fine."""
    mach, t, _ = bp_machine()
    mach.add_breakpoint(["A", "B"], [])
    mach.add1("A")
    assert t.hits == []
    mach.remove1("A")
    mach.add(["A", "B", "C"])
    assert len(t.hits) == 1


def test_breakpoint_via_relation() -> None:
    """the API: a transition that activates `added` hits, even when A is only implied."""
    mach, t, _ = bp_machine({"A": St(), "B": St(add=("A",))})
    mach.add_breakpoint(["A"], [])
    mach.add1("B")
    assert len(t.hits) == 1


def test_breakpoint_strict() -> None:
    """Strict: exactly those states change."""
    mach, t, _ = bp_machine()
    mach.add_breakpoint(["A"], [], strict=True)
    mach.add(["A", "B"])
    assert t.hits == []
    mach.remove1("A")
    mach.add1("A")
    assert len(t.hits) == 1


def test_breakpoint_not_hit_by_cancelled_transition() -> None:
    """A cancelled transition activates nothing, so no hit; semantics are unchanged."""
    mach, t, lines = bp_machine({"A": St(require=("B",)), "B": St()})
    mach.add_breakpoint(["A"], [])
    assert mach.add1("A") == am.Canceled
    assert t.hits == []
    assert bp_lines(lines) == []
