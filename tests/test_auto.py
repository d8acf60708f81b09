"""Auto states: when they trigger, which ones, partial acceptance, no chaining
(docs/semantics.md#auto-states)."""

from __future__ import annotations

from types import SimpleNamespace

import asyncmachine as am

St = am.State


def mk(schema: dict[str, am.State], **kw: object) -> am.Machine:
    """A quiet machine, so tests don't depend on log output unless they ask for it."""
    return am.Machine(schema, **kw)  # type: ignore[arg-type]


def recorder(calls: list[str], *names: str, cancel: tuple[str, ...] = ()) -> SimpleNamespace:
    """Handler object recording each call; names in `cancel` return False."""
    obj = SimpleNamespace()
    for name in names:

        def h(e: am.Event, _n: str = name) -> bool | None:
            calls.append(_n)
            return False if _n in cancel else None

        setattr(obj, name, h)
    return obj


def logged(level: am.LogLevel, schema: dict[str, am.State]) -> tuple[am.Machine, list[str]]:
    """A machine whose log lines (without the id prefix) are collected."""
    lines: list[str] = []
    mach = am.Machine(
        schema, log_level=level, logger=lambda _lvl, msg: lines.append(msg), log_id=False
    )
    return mach, lines


def test_auto_not_activated_at_construction() -> None:
    """New runs no mutation; the first clock change activates the auto state."""
    mach = mk({"A": St(), "X": St(auto=True)})
    assert mach.string_all() == "() [A:0 Exception:0 X:0]"
    assert mach.add1("A") == am.Executed
    assert mach.string_all() == "(A:1 X:1) [Exception:0]"


def test_remove_of_auto_state_is_undone() -> None:
    """Remove1(X) is Executed (result decided before auto), then X is re-added."""
    mach = mk({"A": St(), "X": St(auto=True)})
    mach.add1("A")
    assert mach.remove1("X") == am.Executed
    assert mach.string_all() == "(A:1 X:3) [Exception:0]"


def test_set_empty_re_adds_auto_state() -> None:
    """Set([]) on {A,X} drops both, then the auto state comes back."""
    mach = mk({"A": St(), "X": St(auto=True)})
    mach.add1("A")
    assert mach.set([]) == am.Executed
    assert mach.string_all() == "(X:3) [A:2 Exception:0]"


def test_healthcheck_and_heartbeat_do_not_trigger_auto() -> None:
    """Add of exactly Healthcheck or Heartbeat skips auto; Remove1(Heartbeat) triggers it."""
    mach = mk({"Healthcheck": St(multi=True), "Heartbeat": St(), "X": St(auto=True)})
    assert mach.add1("Healthcheck") == am.Executed
    assert mach.string_all() == "(Healthcheck:1) [Exception:0 Heartbeat:0 X:0]"
    assert mach.add1("Healthcheck") == am.Executed
    assert mach.string_all() == "(Healthcheck:3) [Exception:0 Heartbeat:0 X:0]"
    assert mach.add1("Heartbeat") == am.Executed
    assert mach.string_all() == "(Healthcheck:3 Heartbeat:1) [Exception:0 X:0]"
    assert mach.remove1("Heartbeat") == am.Executed
    assert mach.string_all() == "(Healthcheck:3 X:1) [Exception:0 Heartbeat:2]"


def test_add_of_both_health_states_triggers_auto() -> None:
    """Only an Add of exactly one health state is exempt."""
    mach = mk({"Healthcheck": St(multi=True), "Heartbeat": St(), "X": St(auto=True)})
    assert mach.add(["Healthcheck", "Heartbeat"]) == am.Executed
    assert mach.string_all() == "(Healthcheck:1 Heartbeat:1 X:1) [Exception:0]"


def test_no_auto_without_clock_change_cancel_or_check() -> None:
    """Unchanged clock, cancelled transitions and dry runs never schedule auto states."""
    mach = mk({"A": St(), "B": St(require=("Z",)), "X": St(auto=True), "Z": St()})
    assert mach.remove1("A") == am.Executed
    assert mach.add1("B") == am.Canceled
    assert mach.can_add1("A") == am.Executed
    assert mach.string_all() == "() [A:0 B:0 Exception:0 X:0 Z:0]"


def test_auto_never_triggers_auto_and_blocked_candidates() -> None:
    """Example: blocked candidates are skipped, an auto transition triggers no other."""
    schema = {
        "A": St(),
        "B": St(auto=True, require=("A",), remove=("X",)),
        "C": St(auto=True),
        "X": St(remove=("C",)),
        "D": St(),
    }
    mach = mk(schema)
    assert mach.set(["X"]) == am.Executed
    assert mach.string_all() == "(X:1) [A:0 B:0 C:0 D:0 Exception:0]"
    assert mach.add1("A") == am.Executed
    assert mach.string_all() == "(A:1 B:1) [C:0 D:0 Exception:0 X:2]"
    assert mach.add1("D") == am.Executed
    assert mach.string_all() == "(A:1 B:1 C:1 D:1) [Exception:0 X:2]"


def test_require_chain_settles_in_one_auto_transition() -> None:
    """TestRequireOrder: A,B,C,D activate in one auto transition, required states first."""
    schema = {
        "A": St(auto=True, require=("B", "C")),
        "B": St(auto=True, require=("D",)),
        "C": St(auto=True),
        "D": St(auto=True),
        "Start": St(),
    }
    mach = mk(schema)
    calls: list[str] = []
    mach.bind_handlers(
        recorder(calls, "AState", "BState", "CState", "DState", "AnyEnter", "AnyState")
    )
    assert mach.add1("Start") == am.Executed
    assert mach.string_all() == "(A:1 B:1 C:1 D:1 Start:1) [Exception:0]"
    assert calls == [
        "AnyEnter",
        "AnyState",
        "AnyEnter",
        "DState",
        "BState",
        "CState",
        "AState",
        "AnyState",
    ]


def test_partial_auto_by_relations_logs_auto_line() -> None:
    """TestPartialAutoStates: B misses its requirement, A goes ahead alone."""
    schema = {
        "A": St(auto=True),
        "B": St(auto=True, after=("A",), require=("C",)),
        "C": St(),
        "D": St(),
    }
    mach, lines = logged(am.LogLevel.CHANGES, schema)
    assert mach.add1("D") == am.Executed
    assert mach.string_all() == "(A:1 D:1) [B:0 C:0 Exception:0]"
    assert lines == ["[state] +D", "[auto_] +A"]


def test_auto_fully_rejected_is_cancelled() -> None:
    """Every candidate rejected by relations: `[cancel:reject] C D`, nothing changes."""
    schema = {
        "A": St(),
        "C": St(auto=True, require=("X",)),
        "D": St(auto=True, require=("X",)),
        "X": St(),
    }
    mach, lines = logged(am.LogLevel.OPS, schema)
    assert mach.add1("A") == am.Executed
    assert mach.string_all() == "(A:1) [C:0 D:0 Exception:0 X:0]"
    assert "[cancel:reject] C D" in lines


def test_partial_auto_by_enter_handler_re_resolves() -> None:
    """AEnter cancels A only; E (implied by A alone) disappears with it."""
    schema = {"A": St(auto=True, add=("E",)), "B": St(auto=True), "C": St(), "E": St()}
    mach = mk(schema)
    calls: list[str] = []
    mach.bind_handlers(recorder(calls, "AEnter", "BState", cancel=("AEnter",)))
    assert mach.add1("C") == am.Executed
    assert mach.string_all() == "(B:1 C:1) [A:0 E:0 Exception:0]"
    assert calls == ["AEnter", "BState"]


def test_non_auto_self_handler_cancels_whole_auto_transition() -> None:
    """TestPartialAutoStatesBySelfHandler: CC (C not auto) cancels every auto candidate."""
    mach = mk({"A": St(auto=True), "B": St(auto=True), "C": St()})
    calls: list[str] = []
    mach.bind_handlers(recorder(calls, "CC", cancel=("CC",)))
    assert mach.add1("C") == am.Executed
    assert mach.string_all() == "(C:1) [A:0 B:0 Exception:0]"
    assert calls == ["CC"]


def test_auto_mutation_runs_before_queued_mutations() -> None:
    """The auto mutation is prepended, so X runs before the B queued from AState."""
    mach = mk({"A": St(), "B": St(), "X": St(auto=True, require=("A",))})
    calls: list[str] = []
    results: list[int] = []

    def a_state(e: am.Event) -> None:
        calls.append("AState")
        results.append(e.machine.add1("B"))

    obj = recorder(calls, "BState", "XState")
    obj.AState = a_state
    mach.bind_handlers(obj)
    assert mach.add1("A") == am.Executed
    assert results == [3]
    assert calls == ["AState", "XState", "BState"]
    assert mach.string_all() == "(A:1 B:1 X:1) [Exception:0]"
    assert mach.queue_tick() == 3


def test_multi_auto_state_is_never_re_ticked_by_auto() -> None:
    """An auto state is only ever called while inactive, so Multi never gives +2."""
    mach = mk({"A": St(), "B": St(), "M": St(auto=True, multi=True)})
    mach.add1("A")
    mach.add1("B")
    assert mach.string_all() == "(A:1 B:1 M:1) [Exception:0]"


def test_auto_candidates_use_state_names_order() -> None:
    """Deterministic candidate order (decisions.md): enters follow state_names()."""
    mach = mk({"Z": St(auto=True), "Y": St(auto=True), "A": St()})
    calls: list[str] = []
    mach.bind_handlers(recorder(calls, "YEnter", "ZEnter"))
    mach.add1("A")
    assert calls == ["YEnter", "ZEnter"]
    assert mach.string_all() == "(A:1 Y:1 Z:1) [Exception:0]"


def test_auto_state_refused_by_its_handler_is_not_added_back_by_relations() -> None:
    """Decision: an auto state whose Enter refused stays out, even if another auto state adds it."""
    mach = am.Machine(
        {"A": am.State(auto=True), "B": am.State(), "C": am.State(auto=True, add=("A",))}
    )

    class Refuse:
        def AEnter(self, e: am.Event) -> bool:
            return False

    mach.bind_handlers(Refuse())
    assert mach.add1("B") == am.Executed
    assert mach.string_all() == "(B:1 C:1) [A:0 Exception:0]"
