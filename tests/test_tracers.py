"""Tracers: hook order, binding, detaching, and hooks that raise (docs/semantics.md#tracers)."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import pytest

import asyncmachine as am

St = am.State
NO_RELS = {"A": St(), "B": St(), "C": St(), "D": St()}


class Rec(am.Tracer):
    """Records every hook call as a short string (plus the raw args)."""

    def __init__(self) -> None:
        self.calls: list[str] = []
        self.raw: list[tuple[str, tuple[Any, ...]]] = []

    def _rec(self, name: str, *args: Any) -> None:
        self.calls.append(name)
        self.raw.append((name, args))

    def machine_init(self, mach: Any) -> None:
        self._rec("machine_init", mach)

    def machine_dispose(self, mach_id: str) -> None:
        self._rec("machine_dispose", mach_id)

    def new_submachine(self, parent: Any, child: Any) -> None:
        self._rec("new_submachine", parent, child)

    def verify_states(self, mach: Any) -> None:
        self._rec("verify_states", mach)

    def schema_change(self, mach: Any, old_schema: Any) -> None:
        self._rec("schema_change", mach, old_schema)

    def mutation_queued(self, mach: Any, mutation: Any) -> None:
        self._rec("mutation_queued", mach, mutation)

    def transition_init(self, tx: Any) -> None:
        self._rec("transition_init", tx)

    def transition_start(self, tx: Any) -> None:
        self._rec("transition_start", tx)

    def transition_finals(self, tx: Any) -> None:
        self._rec("transition_finals", tx)

    def handler_start(self, tx: Any, binding_id: str, handler_name: str) -> None:
        self._rec(f"handler_start:{handler_name}", tx, binding_id)

    def handler_end(self, tx: Any, binding_id: str, handler_name: str) -> None:
        self._rec(f"handler_end:{handler_name}", tx, binding_id)

    def transition_end(self, tx: Any) -> None:
        self._rec("transition_end", tx)

    def queue_end(self, mach: Any) -> None:
        self._rec("queue_end", mach)

    def breakpoint(self, mach: Any, tx: Any) -> None:
        self._rec("breakpoint", mach, tx)


HAS_FINALS = hasattr(am.Tracer, "transition_finals")


def handlers() -> SimpleNamespace:
    """AEnter, AState, AnyEnter, AnyState doing nothing."""
    return SimpleNamespace(
        AEnter=lambda e: None,
        AState=lambda e: None,
        AnyEnter=lambda e: None,
        AnyState=lambda e: None,
    )


def test_tracer_base_hooks_do_nothing() -> None:
    """am.Tracer's hooks exist and are no-ops."""
    t = am.Tracer()
    for hook in (
        "machine_init",
        "machine_dispose",
        "new_submachine",
        "verify_states",
        "schema_change",
        "mutation_queued",
        "transition_init",
        "transition_start",
        "handler_start",
        "handler_end",
        "transition_end",
        "queue_end",
        "breakpoint",
    ):
        assert callable(getattr(t, hook))
    mach = am.Machine(dict(NO_RELS), tracers=(t,))
    mach.bind_handlers(handlers())
    assert mach.add1("A") == am.Executed


def test_hook_order_example() -> None:
    """An idle Add1(A) with AEnter, AState, AnyEnter, AnyState bound."""
    t = Rec()
    mach = am.Machine(dict(NO_RELS), tracers=(t,))
    assert t.raw == [("machine_init", (mach,))]
    binding = mach.bind_handlers(handlers())
    t.calls.clear()
    t.raw.clear()
    assert mach.add1("A") == am.Executed
    expected = [
        "mutation_queued",
        "transition_init",
        "transition_start",
        "handler_start:AEnter",
        "handler_end:AEnter",
        "handler_start:AnyEnter",
        "handler_end:AnyEnter",
        *(["transition_finals"] if HAS_FINALS else []),
        "handler_start:AState",
        "handler_end:AState",
        "handler_start:AnyState",
        "handler_end:AnyState",
        "transition_end",
        "queue_end",
    ]
    assert t.calls == expected
    _, (m, mut) = t.raw[0]
    assert m is mach
    assert mut.type == am.MutationType.ADD
    assert list(mut.called) == ["A"]
    for name, args in t.raw:
        if name.startswith("handler_"):
            assert args[1] == binding
    txs = {id(args[0]) for name, args in t.raw[1:-1]}
    assert len(txs) == 1
    tx = t.raw[-2][1][0]
    assert tx.is_accepted and tx.is_completed
    assert t.raw[-1][1] == (mach,)


def test_auto_mutation_is_reported_as_queued() -> None:
    """The prepended auto mutation goes through mutation_queued with is_auto."""
    t = Rec()
    mach = am.Machine({"A": St(), "X": St(auto=True)}, tracers=(t,))
    mach.add1("A")
    muts = [args[1] for name, args in t.raw if name == "mutation_queued"]
    assert [(list(m.called), m.is_auto) for m in muts] == [(["A"], False), (["X"], True)]
    assert t.calls.count("transition_end") == 2
    assert t.calls.count("queue_end") == 1
    assert t.calls[-1] == "queue_end"


def test_cancelled_transition_ends_too() -> None:
    """transition_end is called for a cancelled transition, with is_accepted False."""
    t = Rec()
    mach = am.Machine({"A": St(require=("B",)), "B": St()}, tracers=(t,))
    assert mach.add1("A") == am.Canceled
    ends = [args[0] for name, args in t.raw if name == "transition_end"]
    assert len(ends) == 1
    assert not ends[0].is_accepted
    assert t.calls[-1] == "queue_end"


def test_bind_and_detach() -> None:
    """bind_tracer starts the calls (no machine_init), detach_tracer stops them."""
    mach = am.Machine(dict(NO_RELS))
    t = Rec()
    mach.bind_tracer(t)
    assert t.calls == []
    mach.add1("A")
    assert "transition_end" in t.calls
    mach.detach_tracer(t)
    t.calls.clear()
    mach.add1("B")
    assert t.calls == []
    with pytest.raises(KeyError):
        mach.detach_tracer(t)


def test_detach_unknown_tracer() -> None:
    """Detaching a tracer that was never bound raises KeyError."""
    with pytest.raises(KeyError):
        am.Machine(dict(NO_RELS)).detach_tracer(Rec())


def test_raising_hook_is_logged_not_propagated() -> None:
    """A hook's exception is logged; the transition and later tracers carry on."""

    class Bad(am.Tracer):
        def transition_start(self, tx: Any) -> None:
            raise RuntimeError("tracer boom")

        def queue_end(self, mach: Any) -> None:
            raise RuntimeError("tracer boom at end")

    lines: list[str] = []
    good = Rec()
    mach = am.Machine(
        dict(NO_RELS),
        tracers=(Bad(), good),
        log_level=am.LogLevel.EVERYTHING,
        logger=lambda lvl, msg: lines.append(msg),
        log_id=False,
    )
    mach.bind_handlers(handlers())
    assert mach.add1("A") == am.Executed
    assert mach.string_all() == "(A:1) [B:0 C:0 D:0 Exception:0]"
    assert not mach.is_err()
    assert "transition_start" in good.calls
    assert good.calls[-1] == "queue_end"
    assert any("tracer boom" in m for m in lines)
    assert any("tracer boom at end" in m for m in lines)


def test_lifecycle_hooks() -> None:
    """new_submachine on the parent's tracers, verify_states, machine_dispose."""
    t = Rec()
    parent = am.Machine(dict(NO_RELS), tracers=(t,))
    child = am.Machine(dict(NO_RELS), parent=parent)
    assert child.parent_id == parent.id
    assert ("new_submachine", (parent, child)) in t.raw
    parent.verify_states(["D", "C", "B", "A", "Exception"])
    assert ("verify_states", (parent,)) in t.raw
    parent.dispose()
    assert t.raw[-1] == ("machine_dispose", (parent.id,))


class HandlersOnly(am.Tracer):
    """Overrides only the handler hooks."""

    def __init__(self) -> None:
        self.calls: list[str] = []

    def handler_start(self, tx: Any, binding_id: str, handler_name: str) -> None:
        self.calls.append(f"start:{handler_name}")

    def handler_end(self, tx: Any, binding_id: str, handler_name: str) -> None:
        self.calls.append(f"end:{handler_name}")


def test_handler_hooks_wrap_refusing_and_raising_handlers() -> None:
    """On a machine that logs nothing, handler hooks still pair up around every call, also
    around a handler that refuses and one that raises (its end is reported before the error)."""
    t = HandlersOnly()
    mach = am.Machine(dict(NO_RELS), tracers=(t,))

    def b_enter(e: am.Event) -> bool:
        return False

    def c_state(e: am.Event) -> None:
        raise ValueError("boom")

    mach.bind_handlers(
        SimpleNamespace(
            AExit=lambda e: None, BEnter=b_enter, CState=c_state, AnyEnter=lambda e: None
        )
    )
    mach.add1("A")
    t.calls.clear()
    assert mach.add1("B") == am.Canceled
    assert t.calls == ["start:BEnter", "end:BEnter"]
    t.calls.clear()
    mach.remove1("A")
    assert t.calls == ["start:AExit", "end:AExit", "start:AnyEnter", "end:AnyEnter"]
    t.calls.clear()
    mach.add1("C")
    assert t.calls[:4] == ["start:AnyEnter", "end:AnyEnter", "start:CState", "end:CState"]
    assert mach.is_err()


def test_a_tracer_pays_only_for_the_hooks_it_overrides() -> None:
    """A tracer with only life-cycle hooks leaves transitions unobserved; one transition hook
    makes them observed; detaching it makes them unobserved again."""

    class LifeOnly(am.Tracer):
        def machine_dispose(self, mach_id: str) -> None:
            pass

    class EndOnly(am.Tracer):
        def transition_end(self, tx: Any) -> None:
            pass

    mach = am.Machine(dict(NO_RELS), tracers=(LifeOnly(), am.Tracer()))
    observer = mach._observer
    assert not observer.traced and set(observer.hooks) == {"machine_dispose"}
    end = EndOnly()
    mach.bind_tracer(end)
    assert observer.traced and set(observer.hooks) == {"machine_dispose", "transition_end"}
    mach.detach_tracer(end)
    assert not observer.traced


def test_a_duck_typed_tracer_is_called_for_what_it_has() -> None:
    """A tracer that does not subclass am.Tracer gets the hooks it defines, no errors for the
    ones it lacks."""

    class Duck:
        def __init__(self) -> None:
            self.ends = 0

        def transition_end(self, tx: Any) -> None:
            self.ends += 1

    lines: list[str] = []
    duck = Duck()
    mach = am.Machine(dict(NO_RELS), logger=lambda lvl, msg: lines.append(msg))
    mach.bind_tracer(duck)  # type: ignore[arg-type]
    mach.add1("A")
    mach.remove1("A")
    assert duck.ends == 2
    assert not [line for line in lines if "error" in line]


def test_creation_hooks_see_every_machine_until_removed() -> None:
    """``on_machine_created``: every machine built while the hook is on, after ``machine_init``;
    a raising hook is logged on the machine and never breaks its construction."""
    from asyncmachine._tracer import on_machine_created

    seen: list[str] = []
    remove = on_machine_created(lambda mach: seen.append(mach.id))

    def bad(mach: am.Machine) -> None:
        raise RuntimeError("hook boom")

    remove_bad = on_machine_created(bad)
    lines: list[str] = []
    try:
        parent = am.Machine(
            dict(NO_RELS),
            id="p",
            logger=lambda lvl, msg: lines.append(msg),
            log_level=am.LogLevel.CHANGES,
        )
        am.Machine(dict(NO_RELS), id="c", parent=parent, logger=lambda lvl, msg: None)
    finally:
        remove()
        remove_bad()
    am.Machine(dict(NO_RELS), id="after")
    assert seen == ["p", "c"]
    assert any("hook boom" in line for line in lines)
    assert parent.add1("A") == am.Executed
