"""Relations, ordering and acceptance: what a mutation resolves to
(docs/semantics.md#relations, #ordering).

Decided against upstream: `add` relations are followed transitively, and orders are deterministic
(`state_names()` order in the Require walk and for auto candidates).
"""

from __future__ import annotations

import pytest
from support import NO_RELS, Rec, active, logged

import asyncmachine as am

# --- States to set --------------------------------------------------------------------------------


def test_add_puts_called_first() -> None:
    """Add1(A); Add1(B); Add1(C) -> active_states() == [C, B, A]."""
    mach = am.Machine(NO_RELS)
    mach.add1("A")
    mach.add1("B")
    mach.add1("C")
    assert mach.active_states() == ["C", "B", "A"]


def test_remove_keeps_active_order() -> None:
    """Remove: active minus called, in active order."""
    mach = am.Machine(NO_RELS)
    mach.add(["A", "B", "C"])
    mach.remove1("B")
    assert mach.active_states() == ["A", "C"]


def test_set_uses_called_order() -> None:
    """Set: the called states, in call order."""
    mach = am.Machine(NO_RELS)
    mach.add1("B")
    mach.set(["D", "A"])
    assert mach.active_states() == ["D", "A"]


def test_called_deduplicated_first_wins() -> None:
    """The called list is de-duplicated, first occurrence wins."""
    mach = am.Machine(NO_RELS)
    rec = Rec("AEnter", "BEnter")
    mach.bind_handlers(rec)
    assert mach.add(["B", "A", "B"]) == am.Executed
    assert rec.calls == ["BEnter", "AEnter"]
    assert mach.active_states() == ["B", "A"]


# --- Target states: Add ---------------------------------------------------------------------------


def test_add_relations_transitive() -> None:
    """Decided: A{add:B}, B{add:C}, C{add:D}: add1(A) -> A, B, C, D all active."""
    mach = am.Machine(
        {
            "A": am.State(add=("B",)),
            "B": am.State(add=("C",)),
            "C": am.State(add=("D",)),
            "D": am.State(),
        }
    )
    assert mach.add1("A") == am.Executed
    assert mach.string_all() == "(A:1 B:1 C:1 D:1) [Exception:0]"


def test_add_relations_transitive_long_chain() -> None:
    """Decided: transitivity has no hop limit (a 6-state chain)."""
    names = ["S0", "S1", "S2", "S3", "S4", "S5"]
    schema = {
        n: am.State(add=(names[i + 1],) if i + 1 < len(names) else ()) for i, n in enumerate(names)
    }
    mach = am.Machine(schema)
    assert mach.add1("S0") == am.Executed
    assert active(mach) == set(names)


def test_add_relations_cycle_terminates() -> None:
    """Transitive Add over a cycle terminates."""
    mach = am.Machine({"A": am.State(add=("B",)), "B": am.State(add=("A",)), "C": am.State()})
    assert mach.add1("A") == am.Executed
    assert mach.string_all() == "(A:1 B:1) [C:0 Exception:0]"


def test_add_relation_of_active_state_not_reapplied() -> None:
    """upstream TestAddRelation: A{Remove:[D]}, C{Add:[D]}: Set(C) -> {C,D}; Set(A,C) -> {A,C}."""
    mach = am.Machine(
        {"A": am.State(remove=("D",)), "B": am.State(), "C": am.State(add=("D",)), "D": am.State()}
    )
    assert mach.set(["C"]) == am.Executed
    assert active(mach) == {"C", "D"}
    assert mach.set(["A", "C"]) == am.Executed
    assert active(mach) == {"A", "C"}
    assert mach.clock(["A", "C", "D"]) == {"A": 1, "C": 1, "D": 2}


def test_remove_multi_implied() -> None:
    """upstream TestRemoveMultiImplied: A{Multi,Add:[B],Require:}, B{Require:}: Remove1(B)"""
    mach = am.Machine(
        {
            "A": am.State(multi=True, add=("B",), require=("C",)),
            "B": am.State(require=("C",)),
            "C": am.State(),
        }
    )
    mach.add(["A", "C"])
    assert active(mach) == {"A", "B", "C"}
    assert mach.remove1("B") == am.Executed
    assert active(mach) == {"A", "C"}
    assert mach.clock() == {"A": 1, "B": 2, "C": 1, "Exception": 0}


def test_active_multi_add_reapplied_on_add() -> None:
    """Active Multi states re-apply their Add on every add (B comes back with an unrelated Add)."""
    mach = am.Machine({"A": am.State(multi=True, add=("B",)), "B": am.State(), "C": am.State()})
    mach.add1("A")
    mach.remove1("B")
    assert active(mach) == {"A"}
    assert mach.add1("C") == am.Executed
    assert mach.string_all() == "(A:1 B:3 C:1) [Exception:0]"


# --- Target states: Require -----------------------------------------------------------------------


def test_called_state_requirement_missing() -> None:
    """Foo{Require:[Bar]}: Add1(Foo) -> Canceled."""
    mach = am.Machine({"Foo": am.State(require=("Bar",)), "Bar": am.State()})
    assert mach.add1("Foo") == am.Canceled
    assert mach.string_all() == "() [Bar:0 Exception:0 Foo:0]"


def test_reject_log() -> None:
    """upstream TestRequireRelationWhenRequiredIsntActive: the dropped state is logged [reject]
    C(-D)."""
    mach, lines = logged({"C": am.State(require=("D",)), "D": am.State()})
    assert mach.add1("C") == am.Canceled
    assert "[reject] C(-D)" in lines
    assert "[cancel:reject] C" in lines


def test_implied_state_requirement_missing() -> None:
    """A{Add:[B]}, B{Require:}: Add1(A) -> Executed, {A}."""
    mach = am.Machine({"A": am.State(add=("B",)), "B": am.State(require=("C",)), "C": am.State()})
    assert mach.add1("A") == am.Executed
    assert mach.string_all() == "(A:1) [B:0 C:0 Exception:0]"


def test_require_cascade() -> None:
    """A{Require:[B]}, C{Require:[A]}, all active: Remove1(B) -> all inactive, ticks 2."""
    mach = am.Machine(
        {"A": am.State(require=("B",)), "B": am.State(), "C": am.State(require=("A",))}
    )
    assert mach.set(["A", "B", "C"]) == am.Executed
    assert active(mach) == {"A", "B", "C"}
    assert mach.remove1("B") == am.Executed
    assert mach.string_all() == "() [A:2 B:2 C:2 Exception:0]"


def test_requirement_supplied_by_same_mutation() -> None:
    """[T] C{Require:[D]}: Set(C,D) -> {C,D}; A{Add:[B], Require:[B]}: Add1(A) -> {A,B}."""
    mach = am.Machine({"C": am.State(require=("D",)), "D": am.State()})
    assert mach.set(["C", "D"]) == am.Executed
    assert mach.string_all() == "(C:1 D:1) [Exception:0]"
    mach2 = am.Machine({"A": am.State(add=("B",), require=("B",)), "B": am.State()})
    assert mach2.add1("A") == am.Executed
    assert mach2.string_all() == "(A:1 B:1) [Exception:0]"


def test_set_keeps_required_state_out() -> None:
    """A{Require:[B]}, active {A,B}: Set(A) -> Canceled, unchanged."""
    mach = am.Machine({"A": am.State(require=("B",)), "B": am.State()})
    mach.add(["A", "B"])
    assert mach.set(["A"]) == am.Canceled
    assert mach.string_all() == "(A:1 B:1) [Exception:0]"


# --- Target states: Remove ------------------------------------------------------------------------


def test_called_removes_active() -> None:
    """upstream TestRemoveRelation: C{Remove:[D]}, {D}: Add(C) -> {C}, ticks C:1 D:2."""
    mach = am.Machine({"C": am.State(remove=("D",)), "D": am.State()})
    mach.add1("D")
    assert mach.add(["C"]) == am.Executed
    assert mach.string_all() == "(C:1) [D:2 Exception:0]"


def test_active_removes_called_one_way() -> None:
    """Bar{Remove:[Foo]}, {Bar}: Add1(Foo) -> Canceled."""
    mach = am.Machine({"Bar": am.State(remove=("Foo",)), "Foo": am.State()})
    mach.add1("Bar")
    assert mach.add1("Foo") == am.Canceled
    assert mach.string_all() == "(Bar:1) [Exception:0 Foo:0]"


@pytest.mark.parametrize("mutation", ["add", "set"])
def test_cross_blocking_called_wins(mutation: str) -> None:
    """upstream TestRemoveRelationCrossBlocking: mutual C/D: the called one wins (Add and Set)."""
    mach = am.Machine({"C": am.State(remove=("D",)), "D": am.State(remove=("C",))})
    mutate = getattr(mach, mutation)
    mach.add1("D")
    assert mutate(["C"]) == am.Executed
    assert mach.string_all() == "(C:1) [D:2 Exception:0]"
    assert mutate(["D"]) == am.Executed
    assert mach.string_all() == "(D:3) [C:2 Exception:0]"


def test_both_called_one_way() -> None:
    """upstream TestRemoveRelationSimultaneous: Set(C,D), C{Remove:[D]}: Canceled, [rel:remove] D by
    C"""
    mach, lines = logged({"C": am.State(remove=("D",)), "D": am.State()}, am.LogLevel.DECISIONS)
    assert mach.set(["C", "D"]) == am.Canceled
    assert "[rel:remove] D by C" in lines
    assert mach.string_all() == "() [C:0 D:0 Exception:0]"


def test_rel_remove_active_logged_at_ops() -> None:
    """[rel:remove] for an active state is an Ops line (inactive ones are Decisions)."""
    mach, lines = logged({"C": am.State(remove=("D",)), "D": am.State()}, am.LogLevel.OPS)
    mach.add1("D")
    mach.add1("C")
    assert "[rel:remove] D by C" in lines
    mach2, lines2 = logged({"C": am.State(remove=("D",)), "D": am.State()}, am.LogLevel.OPS)
    assert mach2.set(["C", "D"]) == am.Canceled
    assert not any(ln.startswith("[rel:remove]") for ln in lines2)


def test_both_called_mutual() -> None:
    """Add(C,D) with a mutual Remove -> Canceled (the later-listed one is blocked)."""
    mach = am.Machine({"C": am.State(remove=("D",)), "D": am.State(remove=("C",))})
    assert mach.add(["C", "D"]) == am.Canceled
    assert mach.string_all() == "() [C:0 D:0 Exception:0]"


def test_implied_removed_by_survivor() -> None:
    """A{Add:[B]}, C{Remove:[B]}: Add(A,C) -> Executed {A,C}."""
    mach = am.Machine({"A": am.State(add=("B",)), "B": am.State(), "C": am.State(remove=("B",))})
    assert mach.add(["A", "C"]) == am.Executed
    assert mach.string_all() == "(A:1 C:1) [B:0 Exception:0]"


def test_mutex_group_newest_wins() -> None:
    """each removes the others: Add1(A), Add1(B), Add1(C) -> (C:1) [A:2 B:2 ...], Executed."""
    mach = am.Machine(
        {
            "A": am.State(remove=("B", "C")),
            "B": am.State(remove=("A", "C")),
            "C": am.State(remove=("A", "B")),
        }
    )
    assert [mach.add1(s) for s in "ABC"] == [am.Executed] * 3
    assert mach.string_all() == "(C:1) [A:2 B:2 Exception:0]"


# --- Worked examples ------------------------------------------------------------------------------


def test_dry_water_wet() -> None:
    """DryWaterWet: Dry; Water -> (Water:1 Wet:1) [Dry:2]; Dry -> (Dry:3) [Water:2 Wet:2]."""
    mach = am.Machine(
        {
            "Wet": am.State(require=("Water",)),
            "Dry": am.State(remove=("Water",)),
            "Water": am.State(add=("Wet",), remove=("Dry",)),
        }
    )
    assert mach.add1("Dry") == am.Executed
    assert mach.string() == "(Dry:1)"
    assert mach.add1("Water") == am.Executed
    assert mach.string_all() == "(Water:1 Wet:1) [Dry:2 Exception:0]"
    assert mach.add1("Dry") == am.Executed
    assert mach.string_all() == "(Dry:3) [Exception:0 Water:2 Wet:2]"


def test_regression_implied_block_by_being_removed() -> None:
    """upstream TestRegressionImpliedBlockByBeingRemoved: Set(Dry); Set(Water) -> {Water, Wet}."""
    mach = am.Machine(
        {
            "Wet": am.State(require=("Water",)),
            "Dry": am.State(remove=("Wet",)),
            "Water": am.State(add=("Wet",), remove=("Dry",)),
        }
    )
    assert mach.set(["Dry"]) == am.Executed
    assert mach.set(["Water"]) == am.Executed
    assert active(mach) == {"Water", "Wet"}
    assert mach.string_all() == "(Water:1 Wet:1) [Dry:2 Exception:0]"


def test_regression_remove_cross_blocked_by_implied() -> None:
    """upstream TestRegressionRemoveCrossBlockedByImplied: A/B mutual, Z{Add:[B]}: Set(Z)."""
    mach = am.Machine(
        {"A": am.State(remove=("B",)), "B": am.State(remove=("A",)), "Z": am.State(add=("B",))}
    )
    assert mach.set(["Z"]) == am.Executed
    assert active(mach) == {"Z", "B"}
    assert mach.string_all() == "(B:1 Z:1) [A:0 Exception:0]"


def test_quiz() -> None:
    """Playground Quiz: Add(A,E) -> Executed {A,B,D,E}, C inactive."""
    mach = am.Machine(
        {
            "A": am.State(add=("B",)),
            "B": am.State(require=("D",), add=("C",)),
            "C": am.State(),
            "D": am.State(remove=("C",)),
            "E": am.State(add=("D",)),
        }
    )
    assert mach.add(["A", "E"]) == am.Executed
    assert active(mach) == {"A", "B", "D", "E"}
    assert mach.string_all() == "(A:1 B:1 D:1 E:1) [C:0 Exception:0]"


# --- Ordering -------------------------------------------------------------------------------------

REQUIRE_ORDER = {
    "A": am.State(require=("B", "C")),
    "B": am.State(require=("D",)),
    "C": am.State(),
    "D": am.State(),
}


@pytest.mark.parametrize(
    "called", [["A", "B", "C", "D"], ["C", "D", "A", "B"], ["D", "A", "C", "B"]]
)
def test_require_order(called: list[str]) -> None:
    """upstream TestRequireOrder: every input order sorts to [D, B, C, A]."""
    mach = am.Machine(REQUIRE_ORDER)
    rec = Rec("AEnter", "BEnter", "CEnter", "DEnter")
    mach.bind_handlers(rec)
    assert mach.set(called) == am.Executed
    assert rec.calls == ["DEnter", "BEnter", "CEnter", "AEnter"]
    assert mach.active_states() == ["D", "B", "C", "A"]


def test_require_order_auto_chain() -> None:
    """upstream TestRequireOrder: Auto chain: Add(Start) settles A..D in one auto transition,
    ordered."""
    schema = {n: am.State(auto=True, require=s.require) for n, s in REQUIRE_ORDER.items()}
    schema["Start"] = am.State()
    mach = am.Machine(schema)
    rec = Rec("AnyEnter", "AnyState", "AEnter", "BEnter", "CEnter", "DEnter")
    mach.bind_handlers(rec)
    assert mach.add1("Start") == am.Executed
    assert rec.calls == [
        "AnyEnter",
        "AnyState",
        "DEnter",
        "BEnter",
        "CEnter",
        "AEnter",
        "AnyEnter",
        "AnyState",
    ]
    assert mach.string_all() == "(A:1 B:1 C:1 D:1 Start:1) [Exception:0]"


def test_unrelated_states_sort_first() -> None:
    """States with no Require edge sort before the Require chain and keep their relative order."""
    schema = dict(REQUIRE_ORDER)
    schema["X"] = am.State()
    schema["Y"] = am.State()
    mach = am.Machine(schema)
    mach.set(["A", "Y", "B", "X", "C", "D"])
    assert mach.active_states() == ["Y", "X", "D", "B", "C", "A"]


def test_after_relation_when_entering() -> None:
    """upstream TestAfterRelationWhenEntering: C{After:[D]}: Set(C,D) -> DEnter, CEnter."""
    mach = am.Machine({"C": am.State(after=("D",)), "D": am.State()})
    rec = Rec("CEnter", "DEnter", "CState", "DState")
    mach.bind_handlers(rec)
    assert mach.set(["C", "D"]) == am.Executed
    assert rec.calls == ["DEnter", "CEnter", "DState", "CState"]


def test_after_wins_over_require() -> None:
    """Foo{After:[Bar]}, Bar{Require:[Foo]}: Add(Foo,Bar) -> BarState before FooState."""
    mach, lines = logged(
        {"Foo": am.State(after=("Bar",)), "Bar": am.State(require=("Foo",))}, am.LogLevel.CHANGES
    )
    rec = Rec("FooState", "BarState")
    mach.bind_handlers(rec)
    assert mach.add(["Foo", "Bar"]) == am.Executed
    assert rec.calls == ["BarState", "FooState"]
    assert "[state] +Bar +Foo" in lines


def test_exit_order_sorted() -> None:
    """The exit list is sorted like the target list (After)."""
    mach = am.Machine({"A": am.State(after=("B",)), "B": am.State(), "C": am.State()})
    mach.set(["A", "B"])
    assert mach.active_states() == ["B", "A"]
    rec = Rec("AExit", "BExit", "AEnd", "BEnd", "CEnter", "CState")
    mach.bind_handlers(rec)
    mach.set(["C"])
    assert rec.calls == ["BExit", "AExit", "CEnter", "BEnd", "AEnd", "CState"]


def test_require_cycle_logged_and_skipped() -> None:
    """A Require cycle is logged as a relation error; transitions still work unsorted."""
    mach, lines = logged(
        {"A": am.State(require=("B",)), "B": am.State(require=("A",))}, am.LogLevel.CHANGES
    )
    assert any(ln.startswith("[resolver]") and "Require cycle" in ln for ln in lines)
    assert mach.set(["A", "B"]) == am.Executed
    assert active(mach) == {"A", "B"}


# --- Acceptance -----------------------------------------------------------------------------------


def test_non_accepted_called_rejects_all() -> None:
    """Any called state dropped by relations rejects the whole transition, [cancel:reject] X."""
    mach, lines = logged({"X": am.State(require=("Y",)), "Y": am.State(), "Z": am.State()})
    assert mach.add(["Z", "X"]) == am.Canceled
    assert "[cancel:reject] X" in lines
    assert mach.string_all() == "() [Exception:0 X:0 Y:0 Z:0]"


def test_remove_always_accepted() -> None:
    """Remove mutations are accepted at the relations stage."""
    mach = am.Machine({"A": am.State(require=("B",)), "B": am.State()})
    mach.add(["A", "B"])
    assert mach.remove1("B") == am.Executed
    assert mach.string_all() == "() [A:2 B:2 Exception:0]"


def test_partial_auto_all_rejected() -> None:
    """upstream TestPartialAuto: every auto candidate rejected by relations: [cancel:reject] C D."""
    mach, lines = logged(
        {
            "A": am.State(),
            "C": am.State(auto=True, require=("X",)),
            "D": am.State(auto=True, require=("X",)),
            "X": am.State(),
        }
    )
    assert mach.add1("A") == am.Executed
    assert "[cancel:reject] C D" in lines
    assert mach.string_all() == "(A:1) [C:0 D:0 Exception:0 X:0]"


def test_partial_auto_some_rejected() -> None:
    """Upstream TestPartialAutoStates: A{Auto}, B{Auto, After:[A], Require:}: Add(D) -> {A, D}."""
    mach, lines = logged(
        {
            "A": am.State(auto=True),
            "B": am.State(auto=True, after=("A",), require=("C",)),
            "C": am.State(),
            "D": am.State(),
        },
        am.LogLevel.CHANGES,
    )
    assert mach.add1("D") == am.Executed
    assert active(mach) == {"A", "D"}
    assert "[auto_] +A" in lines


# --- Exits and enters -----------------------------------------------------------------------------


def test_enters_in_target_order() -> None:
    """Enters follow the target order; Multi called states re-enter."""
    mach = am.Machine({"A": am.State(), "B": am.State(), "M": am.State(multi=True)})
    rec = Rec("AEnter", "BEnter", "MEnter", "MExit")
    mach.bind_handlers(rec)
    mach.set(["B", "A"])
    assert rec.calls == ["BEnter", "AEnter"]
    rec.calls.clear()
    mach.add1("M")
    mach.add(["M", "A"])
    assert rec.calls == ["MEnter", "MEnter"]


def test_transition_enters_exits() -> None:
    """The transition's enters and exits lists."""
    mach = am.Machine({"A": am.State(), "B": am.State(), "M": am.State(multi=True)})
    mach.add(["A", "M"])
    seen: list[tuple[list[str], list[str]]] = []
    mach.bind_handlers(
        Rec(
            do={
                "AnyEnter": lambda e: seen.append(
                    (list(e.transition.enters), list(e.transition.exits))
                )
            }
        )
    )
    mach.set(["B", "M"])
    assert seen == [(["B", "M"], ["A"])]


def test_remembered_resolutions_start_over_when_full() -> None:
    """The memo of resolutions is bounded; after starting over it still answers exactly what
    resolving from scratch does (the property tests cover the rest of it)."""
    from asyncmachine._resolver import ADD, Memo, Resolver

    schema = {n: am.State(remove=tuple(x for x in "ABCD" if x != n)) for n in "ABCD"}
    schema["Exception"] = am.State(multi=True)
    resolver = Resolver(schema, sorted(schema))
    memo = Memo(resolver, limit=3)
    before: tuple[str, ...] = ()
    for called in ["A", "B", "C", "D", "A", "C", "B", "D"] * 3:
        got = memo.resolve(ADD, [called], before, frozenset(before), False)
        want = resolver.resolve(ADD, [called], before, frozenset(before))
        assert (got.target, got.exits, got.enters) == (want.target, want.exits, want.enters)
        assert len(memo._nodes) <= 4
        before = got.target
