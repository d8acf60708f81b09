"""machine-semantics.md §4: the transition algorithm (one dequeued mutation).

Project decisions: Add relations are followed transitively (§4.2), orders are deterministic
(state_names order in the Require DFS and for auto candidates, §4.3), and an XExit returning
False for an auto state inside an auto transition cancels the whole auto transition (§4.6).
"""

from __future__ import annotations

import re
from typing import Any

import pytest
from support import NO_RELS, Rec, logged

import asyncmachine as am


def all_handlers(states: str) -> list[str]:
    """Every per-state and global handler name for single-letter states."""
    names = ["AnyEnter", "AnyState"]
    for s in states:
        names += [f"{s}Enter", f"{s}Exit", f"{s}State", f"{s}End"]
        names += [f"{s}{t}" for t in states]
    return names


def active(mach: am.Machine) -> set[str]:
    """The active states as a set (§4.3: compare sets unless the order is the point)."""
    return set(mach.active_states())


# §4.1 States to set -------------------------------------------------------------------------------


def test_s4_1_add_puts_called_first() -> None:
    """[C] Add1(A); Add1(B); Add1(C) -> active_states() == [C, B, A]."""
    mach = am.Machine(NO_RELS)
    mach.add1("A")
    mach.add1("B")
    mach.add1("C")
    assert mach.active_states() == ["C", "B", "A"]


def test_s4_1_remove_keeps_active_order() -> None:
    """Remove: active minus called, in active order."""
    mach = am.Machine(NO_RELS)
    mach.add(["A", "B", "C"])
    mach.remove1("B")
    assert mach.active_states() == ["A", "C"]


def test_s4_1_set_uses_called_order() -> None:
    """Set: the called states, in call order."""
    mach = am.Machine(NO_RELS)
    mach.add1("B")
    mach.set(["D", "A"])
    assert mach.active_states() == ["D", "A"]


def test_s4_1_called_deduplicated_first_wins() -> None:
    """The called list is de-duplicated, first occurrence wins."""
    mach = am.Machine(NO_RELS)
    rec = Rec("AEnter", "BEnter")
    mach.bind_handlers(rec)
    assert mach.add(["B", "A", "B"]) == am.Executed
    assert rec.calls == ["BEnter", "AEnter"]
    assert mach.active_states() == ["B", "A"]


# §4.2 Target states: Add --------------------------------------------------------------------------


def test_s4_2_add_relations_transitive() -> None:
    """Decision §4.2: A{add:B}, B{add:C}, C{add:D}: add1(A) -> A, B, C, D all active."""
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


def test_s4_2_add_relations_transitive_long_chain() -> None:
    """Decision §4.2: transitivity has no hop limit (a 6-state chain)."""
    names = ["S0", "S1", "S2", "S3", "S4", "S5"]
    schema = {
        n: am.State(add=(names[i + 1],) if i + 1 < len(names) else ()) for i, n in enumerate(names)
    }
    mach = am.Machine(schema)
    assert mach.add1("S0") == am.Executed
    assert active(mach) == set(names)


def test_s4_2_add_relations_cycle_terminates() -> None:
    """Transitive Add over a cycle terminates."""
    mach = am.Machine({"A": am.State(add=("B",)), "B": am.State(add=("A",)), "C": am.State()})
    assert mach.add1("A") == am.Executed
    assert mach.string_all() == "(A:1 B:1) [C:0 Exception:0]"


def test_s4_2_add_relation_of_active_state_not_reapplied() -> None:
    """[T TestAddRelation] A{Remove:[D]}, C{Add:[D]}: Set(C) -> {C,D}; Set(A,C) -> {A,C}."""
    mach = am.Machine(
        {"A": am.State(remove=("D",)), "B": am.State(), "C": am.State(add=("D",)), "D": am.State()}
    )
    assert mach.set(["C"]) == am.Executed
    assert active(mach) == {"C", "D"}
    assert mach.set(["A", "C"]) == am.Executed
    assert active(mach) == {"A", "C"}
    assert mach.clock(["A", "C", "D"]) == {"A": 1, "C": 1, "D": 2}


def test_s4_2_remove_multi_implied() -> None:
    """[T TestRemoveMultiImplied] A{Multi,Add:[B],Require:[C]}, B{Require:[C]}: Remove1(B)"""
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


def test_s4_2_active_multi_add_reapplied_on_add() -> None:
    """Active Multi states re-apply their Add on every add (B comes back with an unrelated Add)."""
    mach = am.Machine({"A": am.State(multi=True, add=("B",)), "B": am.State(), "C": am.State()})
    mach.add1("A")
    mach.remove1("B")
    assert active(mach) == {"A"}
    assert mach.add1("C") == am.Executed
    assert mach.string_all() == "(A:1 B:3 C:1) [Exception:0]"


# §4.2 Target states: Require ----------------------------------------------------------------------


def test_s4_2_called_state_requirement_missing() -> None:
    """[C] Foo{Require:[Bar]}: Add1(Foo) -> Canceled."""
    mach = am.Machine({"Foo": am.State(require=("Bar",)), "Bar": am.State()})
    assert mach.add1("Foo") == am.Canceled
    assert mach.string_all() == "() [Bar:0 Exception:0 Foo:0]"


def test_s4_2_reject_log() -> None:
    """[T TestRequireRelationWhenRequiredIsntActive] the dropped state is logged [reject] C(-D)."""
    mach, lines = logged({"C": am.State(require=("D",)), "D": am.State()})
    assert mach.add1("C") == am.Canceled
    assert "[reject] C(-D)" in lines
    assert "[cancel:reject] C" in lines


def test_s4_2_implied_state_requirement_missing() -> None:
    """[C] A{Add:[B]}, B{Require:[C]}: Add1(A) -> Executed, {A}."""
    mach = am.Machine({"A": am.State(add=("B",)), "B": am.State(require=("C",)), "C": am.State()})
    assert mach.add1("A") == am.Executed
    assert mach.string_all() == "(A:1) [B:0 C:0 Exception:0]"


def test_s4_2_require_cascade() -> None:
    """[C] A{Require:[B]}, C{Require:[A]}, all active: Remove1(B) -> all inactive, ticks 2."""
    mach = am.Machine(
        {"A": am.State(require=("B",)), "B": am.State(), "C": am.State(require=("A",))}
    )
    assert mach.set(["A", "B", "C"]) == am.Executed
    assert active(mach) == {"A", "B", "C"}
    assert mach.remove1("B") == am.Executed
    assert mach.string_all() == "() [A:2 B:2 C:2 Exception:0]"


def test_s4_2_requirement_supplied_by_same_mutation() -> None:
    """[T] C{Require:[D]}: Set(C,D) -> {C,D}; [C] A{Add:[B], Require:[B]}: Add1(A) -> {A,B}."""
    mach = am.Machine({"C": am.State(require=("D",)), "D": am.State()})
    assert mach.set(["C", "D"]) == am.Executed
    assert mach.string_all() == "(C:1 D:1) [Exception:0]"
    mach2 = am.Machine({"A": am.State(add=("B",), require=("B",)), "B": am.State()})
    assert mach2.add1("A") == am.Executed
    assert mach2.string_all() == "(A:1 B:1) [Exception:0]"


def test_s4_2_set_keeps_required_state_out() -> None:
    """[C] A{Require:[B]}, active {A,B}: Set(A) -> Canceled, unchanged."""
    mach = am.Machine({"A": am.State(require=("B",)), "B": am.State()})
    mach.add(["A", "B"])
    assert mach.set(["A"]) == am.Canceled
    assert mach.string_all() == "(A:1 B:1) [Exception:0]"


# §4.2 Target states: Remove -----------------------------------------------------------------------


def test_s4_2_called_removes_active() -> None:
    """[T TestRemoveRelation] C{Remove:[D]}, {D}: Add(C) -> {C}, ticks C:1 D:2."""
    mach = am.Machine({"C": am.State(remove=("D",)), "D": am.State()})
    mach.add1("D")
    assert mach.add(["C"]) == am.Executed
    assert mach.string_all() == "(C:1) [D:2 Exception:0]"


def test_s4_2_active_removes_called_one_way() -> None:
    """[C] Bar{Remove:[Foo]}, {Bar}: Add1(Foo) -> Canceled."""
    mach = am.Machine({"Bar": am.State(remove=("Foo",)), "Foo": am.State()})
    mach.add1("Bar")
    assert mach.add1("Foo") == am.Canceled
    assert mach.string_all() == "(Bar:1) [Exception:0 Foo:0]"


@pytest.mark.parametrize("mutation", ["add", "set"])
def test_s4_2_cross_blocking_called_wins(mutation: str) -> None:
    """[T TestRemoveRelationCrossBlocking] mutual C/D: the called one wins (Add and Set)."""
    mach = am.Machine({"C": am.State(remove=("D",)), "D": am.State(remove=("C",))})
    mutate = getattr(mach, mutation)
    mach.add1("D")
    assert mutate(["C"]) == am.Executed
    assert mach.string_all() == "(C:1) [D:2 Exception:0]"
    assert mutate(["D"]) == am.Executed
    assert mach.string_all() == "(D:3) [C:2 Exception:0]"


def test_s4_2_both_called_one_way() -> None:
    """[T TestRemoveRelationSimultaneous] Set(C,D), C{Remove:[D]}: Canceled, [rel:remove] D by C"""
    mach, lines = logged({"C": am.State(remove=("D",)), "D": am.State()}, am.LogLevel.DECISIONS)
    assert mach.set(["C", "D"]) == am.Canceled
    assert "[rel:remove] D by C" in lines
    assert mach.string_all() == "() [C:0 D:0 Exception:0]"


def test_s4_2_rel_remove_active_logged_at_ops() -> None:
    """[rel:remove] for an active state is an Ops line (inactive ones are Decisions)."""
    mach, lines = logged({"C": am.State(remove=("D",)), "D": am.State()}, am.LogLevel.OPS)
    mach.add1("D")
    mach.add1("C")
    assert "[rel:remove] D by C" in lines
    mach2, lines2 = logged({"C": am.State(remove=("D",)), "D": am.State()}, am.LogLevel.OPS)
    assert mach2.set(["C", "D"]) == am.Canceled
    assert not any(ln.startswith("[rel:remove]") for ln in lines2)


def test_s4_2_both_called_mutual() -> None:
    """[C] Add(C,D) with a mutual Remove -> Canceled (the later-listed one is blocked)."""
    mach = am.Machine({"C": am.State(remove=("D",)), "D": am.State(remove=("C",))})
    assert mach.add(["C", "D"]) == am.Canceled
    assert mach.string_all() == "() [C:0 D:0 Exception:0]"


def test_s4_2_implied_removed_by_survivor() -> None:
    """[C] A{Add:[B]}, C{Remove:[B]}: Add(A,C) -> Executed {A,C}."""
    mach = am.Machine({"A": am.State(add=("B",)), "B": am.State(), "C": am.State(remove=("B",))})
    assert mach.add(["A", "C"]) == am.Executed
    assert mach.string_all() == "(A:1 C:1) [B:0 Exception:0]"


def test_s4_2_mutex_group_newest_wins() -> None:
    """[C] each removes the others: Add1(A), Add1(B), Add1(C) -> (C:1) [A:2 B:2 ...], Executed."""
    mach = am.Machine(
        {
            "A": am.State(remove=("B", "C")),
            "B": am.State(remove=("A", "C")),
            "C": am.State(remove=("A", "B")),
        }
    )
    assert [mach.add1(s) for s in "ABC"] == [am.Executed] * 3
    assert mach.string_all() == "(C:1) [A:2 B:2 Exception:0]"


# §4.2 Worked examples -----------------------------------------------------------------------------


def test_s4_2_dry_water_wet() -> None:
    """[C] DryWaterWet: Dry; Water -> (Water:1 Wet:1) [Dry:2]; Dry -> (Dry:3) [Water:2 Wet:2]."""
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


def test_s4_2_regression_implied_block_by_being_removed() -> None:
    """[T TestRegressionImpliedBlockByBeingRemoved] Set(Dry); Set(Water) -> {Water, Wet}."""
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


def test_s4_2_regression_remove_cross_blocked_by_implied() -> None:
    """[T TestRegressionRemoveCrossBlockedByImplied] A/B mutual, Z{Add:[B]}: Set(Z)."""
    mach = am.Machine(
        {"A": am.State(remove=("B",)), "B": am.State(remove=("A",)), "Z": am.State(add=("B",))}
    )
    assert mach.set(["Z"]) == am.Executed
    assert active(mach) == {"Z", "B"}
    assert mach.string_all() == "(B:1 Z:1) [A:0 Exception:0]"


def test_s4_2_quiz() -> None:
    """[C] Playground Quiz: Add(A,E) -> Executed {A,B,D,E}, C inactive."""
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


# §4.3 Ordering ------------------------------------------------------------------------------------

REQUIRE_ORDER = {
    "A": am.State(require=("B", "C")),
    "B": am.State(require=("D",)),
    "C": am.State(),
    "D": am.State(),
}


@pytest.mark.parametrize(
    "called", [["A", "B", "C", "D"], ["C", "D", "A", "B"], ["D", "A", "C", "B"]]
)
def test_s4_3_require_order(called: list[str]) -> None:
    """[T TestRequireOrder] every input order sorts to [D, B, C, A]."""
    mach = am.Machine(REQUIRE_ORDER)
    rec = Rec("AEnter", "BEnter", "CEnter", "DEnter")
    mach.bind_handlers(rec)
    assert mach.set(called) == am.Executed
    assert rec.calls == ["DEnter", "BEnter", "CEnter", "AEnter"]
    assert mach.active_states() == ["D", "B", "C", "A"]


def test_s4_3_require_order_auto_chain() -> None:
    """[T TestRequireOrder] Auto chain: Add(Start) settles A..D in one auto transition, ordered."""
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


def test_s4_3_unrelated_states_sort_first() -> None:
    """States with no Require edge sort before the Require chain and keep their relative order."""
    schema = dict(REQUIRE_ORDER)
    schema["X"] = am.State()
    schema["Y"] = am.State()
    mach = am.Machine(schema)
    mach.set(["A", "Y", "B", "X", "C", "D"])
    assert mach.active_states() == ["Y", "X", "D", "B", "C", "A"]


def test_s4_3_after_relation_when_entering() -> None:
    """[T TestAfterRelationWhenEntering] C{After:[D]}: Set(C,D) -> DEnter, CEnter."""
    mach = am.Machine({"C": am.State(after=("D",)), "D": am.State()})
    rec = Rec("CEnter", "DEnter", "CState", "DState")
    mach.bind_handlers(rec)
    assert mach.set(["C", "D"]) == am.Executed
    assert rec.calls == ["DEnter", "CEnter", "DState", "CState"]


def test_s4_3_after_wins_over_require() -> None:
    """[C] Foo{After:[Bar]}, Bar{Require:[Foo]}: Add(Foo,Bar) -> BarState before FooState."""
    mach, lines = logged(
        {"Foo": am.State(after=("Bar",)), "Bar": am.State(require=("Foo",))}, am.LogLevel.CHANGES
    )
    rec = Rec("FooState", "BarState")
    mach.bind_handlers(rec)
    assert mach.add(["Foo", "Bar"]) == am.Executed
    assert rec.calls == ["BarState", "FooState"]
    assert "[state] +Bar +Foo" in lines


def test_s4_3_exit_order_sorted() -> None:
    """The exit list is sorted like the target list (After)."""
    mach = am.Machine({"A": am.State(after=("B",)), "B": am.State(), "C": am.State()})
    mach.set(["A", "B"])
    assert mach.active_states() == ["B", "A"]
    rec = Rec("AExit", "BExit", "AEnd", "BEnd", "CEnter", "CState")
    mach.bind_handlers(rec)
    mach.set(["C"])
    assert rec.calls == ["BExit", "AExit", "CEnter", "BEnd", "AEnd", "CState"]


def test_s4_3_require_cycle_logged_and_skipped() -> None:
    """A Require cycle is logged as a relation error; transitions still work unsorted."""
    mach, lines = logged(
        {"A": am.State(require=("B",)), "B": am.State(require=("A",))}, am.LogLevel.CHANGES
    )
    assert any(ln.startswith("[resolver]") and "Require cycle" in ln for ln in lines)
    assert mach.set(["A", "B"]) == am.Executed
    assert active(mach) == {"A", "B"}


# §4.4 Acceptance ----------------------------------------------------------------------------------


def test_s4_4_non_accepted_called_rejects_all() -> None:
    """Any called state dropped by relations rejects the whole transition, [cancel:reject] X."""
    mach, lines = logged({"X": am.State(require=("Y",)), "Y": am.State(), "Z": am.State()})
    assert mach.add(["Z", "X"]) == am.Canceled
    assert "[cancel:reject] X" in lines
    assert mach.string_all() == "() [Exception:0 X:0 Y:0 Z:0]"


def test_s4_4_remove_always_accepted() -> None:
    """Remove mutations are accepted at the relations stage."""
    mach = am.Machine({"A": am.State(require=("B",)), "B": am.State()})
    mach.add(["A", "B"])
    assert mach.remove1("B") == am.Executed
    assert mach.string_all() == "() [A:2 B:2 Exception:0]"


def test_s4_4_partial_auto_all_rejected() -> None:
    """[T TestPartialAuto] every auto candidate rejected by relations: [cancel:reject] C D."""
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


def test_s4_4_partial_auto_some_rejected() -> None:
    """§6 [T TestPartialAutoStates] A{Auto}, B{Auto, After:[A], Require:[C]}: Add(D) -> {A, D}."""
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


# §4.5 Exits and enters ----------------------------------------------------------------------------


def test_s4_5_enters_in_target_order() -> None:
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


def test_s4_5_transition_enters_exits() -> None:
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


# §4.6 Negotiation phase ---------------------------------------------------------------------------


def test_s4_6_negotiation_order_add() -> None:
    """[C] active {A,B}, Add(C): CEnter, self AA BB, then AC, AB, BC, BA, AnyEnter."""
    mach = am.Machine(NO_RELS)
    mach.set(["A", "B"])
    rec = Rec(*all_handlers("ABC"))
    mach.bind_handlers(rec)
    assert mach.add1("C") == am.Executed
    assert rec.calls == [
        "CEnter",
        "AA",
        "BB",
        "AC",
        "AB",
        "BC",
        "BA",
        "AnyEnter",
        "CState",
        "AnyState",
    ]


def test_s4_6_negotiation_order_remove() -> None:
    """[C] active {A,B}, Remove1(B) calls BA; no self handlers for Remove."""
    mach = am.Machine(NO_RELS)
    mach.set(["A", "B"])
    rec = Rec(*all_handlers("AB"))
    mach.bind_handlers(rec)
    assert mach.remove1("B") == am.Executed
    assert rec.calls == ["BExit", "BA", "AnyEnter", "BEnd", "AnyState"]


def test_s4_6_negotiation_cancel() -> None:
    """[T TestNegotiationCancel] {A}, DEnter false: Add(D) [cancel] (D A); Set(D) [cancel] (D)."""
    mach, lines = logged(NO_RELS)
    mach.add1("A")
    rec = Rec("AnyEnter", "DState", "AnyState", do={"DEnter": lambda _e: False})
    mach.bind_handlers(rec)
    assert mach.add1("D") == am.Canceled
    assert "[cancel] (D A) by DEnter" in lines
    assert mach.set(["D"]) == am.Canceled
    assert "[cancel] (D) by DEnter" in lines
    assert rec.calls == ["DEnter", "DEnter"]
    assert mach.string_all() == "(A:1) [B:0 C:0 D:0 Exception:0]"


def test_s4_6_self_handler_cancel_log() -> None:
    """A self handler cancelling is logged as [cancel:self]."""
    mach, lines = logged(NO_RELS)
    mach.add1("A")
    mach.bind_handlers(Rec(do={"AA": lambda _e: False}))
    assert mach.add1("B") == am.Canceled
    assert "[cancel:self] (B A) by AA" in lines
    assert mach.string() == "(A:1)"


def test_s4_6_first_cancel_ends_phase() -> None:
    """The first cancellation ends negotiation: later handlers are not called."""
    mach = am.Machine(NO_RELS)
    mach.add1("A")
    rec = Rec(*all_handlers("AB"), do={"AExit": lambda _e: False})
    mach.bind_handlers(rec)
    assert mach.set(["B"]) == am.Canceled
    assert rec.calls == ["AExit"]
    assert mach.string() == "(A:1)"


def test_s4_6_any_enter_cancels() -> None:
    """AnyEnter is last and can cancel."""
    mach = am.Machine(NO_RELS)
    rec = Rec("AEnter", "AState", "AnyState", do={"AnyEnter": lambda _e: False})
    mach.bind_handlers(rec)
    assert mach.add1("A") == am.Canceled
    assert rec.calls == ["AEnter", "AnyEnter"]
    assert mach.tick("A") == 0


def test_s4_6_every_binding_in_bind_order() -> None:
    """Every handler name is dispatched to every binding, in bind order."""
    mach = am.Machine(NO_RELS)
    calls: list[str] = []
    for tag in ("1", "2"):
        obj = Rec(*all_handlers("A"))
        obj.calls = calls
        mach.bind_handlers(obj, id=f"b{tag}")
        calls.append(f"bound{tag}")
    calls.clear()
    mach.add1("A")
    assert calls == [
        "AEnter",
        "AEnter",
        "AnyEnter",
        "AnyEnter",
        "AState",
        "AState",
        "AnyState",
        "AnyState",
    ]


def test_s4_6_partial_auto_by_enter() -> None:
    """An auto state's XEnter returning False drops only X; the other candidates go ahead."""
    mach = am.Machine({"S": am.State(), "X": am.State(auto=True), "Y": am.State(auto=True)})
    rec = Rec("YEnter", "YState", do={"XEnter": lambda _e: False})
    mach.bind_handlers(rec)
    assert mach.add1("S") == am.Executed
    assert rec.calls == ["XEnter", "YEnter", "YState"]
    assert mach.string_all() == "(S:1 Y:1) [Exception:0 X:0]"


def test_s4_6_partial_auto_by_state_to_state() -> None:
    """A state-to-state handler whose second state is auto X drops only X."""
    mach = am.Machine({"S": am.State(), "X": am.State(auto=True), "Y": am.State(auto=True)})
    mach.bind_handlers(Rec(do={"SX": lambda _e: False}))
    assert mach.add1("S") == am.Executed
    assert mach.string_all() == "(S:1 Y:1) [Exception:0 X:0]"


def test_s4_6_partial_auto_by_self_of_active_auto() -> None:
    """A cancelling self handler of an active auto state has no lasting effect (§4.7)."""
    mach = am.Machine(
        {"S": am.State(), "X": am.State(auto=True), "Y": am.State(auto=True, require=("S",))}
    )
    mach.add1("X")
    assert mach.string_all() == "(X:1) [Exception:0 S:0 Y:0]"
    rec = Rec("YEnter", do={"XX": lambda e: False if e.transition.is_auto else None})
    mach.bind_handlers(rec)
    assert mach.add1("S") == am.Executed
    assert "YEnter" in rec.calls
    assert mach.string_all() == "(S:1 X:1 Y:1) [Exception:0]"


def test_s4_6_partial_auto_by_self_handler_of_non_auto() -> None:
    """[T TestPartialAutoStatesBySelfHandler] a non-auto CC cancelling cancels the whole auto tx."""
    mach = am.Machine({"C": am.State(), "X": am.State(auto=True), "Y": am.State(auto=True)})
    rec = Rec("XEnter", "YEnter", do={"CC": lambda _e: False})
    mach.bind_handlers(rec)
    assert mach.add1("C") == am.Executed
    assert rec.calls == ["XEnter", "YEnter", "CC"]
    assert mach.string_all() == "(C:1) [Exception:0 X:0 Y:0]"


def test_s4_6_partial_auto_by_any_enter() -> None:
    """AnyEnter cancelling an auto transition cancels all of it."""
    mach = am.Machine({"C": am.State(), "X": am.State(auto=True)})
    mach.bind_handlers(Rec(do={"AnyEnter": lambda e: False if e.mutation.is_auto else None}))
    assert mach.add1("C") == am.Executed
    assert mach.string_all() == "(C:1) [Exception:0 X:0]"


def test_s4_6_auto_exit_false_cancels_whole_auto() -> None:
    """Decision §4.6: XExit false for auto X inside an auto transition cancels the whole of it."""
    mach = am.Machine(
        {
            "A": am.State(),
            "P": am.State(auto=True, remove=("X",), require=("Q",)),
            "Q": am.State(),
            "X": am.State(auto=True),
        }
    )
    rec = Rec("PEnter", do={"XExit": lambda _e: False})
    mach.bind_handlers(rec)
    assert mach.add1("A") == am.Executed
    assert mach.string_all() == "(A:1 X:1) [Exception:0 P:0 Q:0]"
    assert mach.add1("Q") == am.Executed
    assert rec.calls == ["XExit"]
    assert mach.string_all() == "(A:1 Q:1 X:1) [Exception:0 P:0]"


def test_s4_6_auto_exit_of_non_auto_state_cancels_whole_auto() -> None:
    """A non-auto Y's YExit cancelling an auto transition cancels all of it."""
    mach = am.Machine(
        {
            "A": am.State(),
            "P": am.State(auto=True, remove=("Y",)),
            "Y": am.State(),
            "Z": am.State(auto=True),
        }
    )
    mach.bind_handlers(Rec(do={"YExit": lambda _e: False}))
    assert mach.add1("Y") == am.Executed
    assert mach.string_all() == "(Y:1) [A:0 Exception:0 P:0 Z:0]"


def test_s4_6_no_handlers_nothing_observable() -> None:
    """With no handlers bound nothing is negotiated: the transition just applies."""
    mach = am.Machine(NO_RELS)
    assert mach.add1("A") == am.Executed
    assert mach.handlers() == []


# §4.7 Auto re-resolution --------------------------------------------------------------------------


def test_s4_7_partial_auto_states_by_enter() -> None:
    """[T TestPartialAutoStatesByEnter] states implied only by a rejected auto state disappear."""
    mach = am.Machine(
        {
            "A": am.State(auto=True, add=("Z",)),
            "B": am.State(auto=True),
            "S": am.State(),
            "Z": am.State(),
        }
    )
    rec = Rec("BEnter", "ZEnter", "BState", "ZState", do={"AEnter": lambda _e: False})
    mach.bind_handlers(rec)
    assert mach.add1("S") == am.Executed
    assert "BState" in rec.calls
    assert "ZState" not in rec.calls
    assert mach.string_all() == "(B:1 S:1) [A:0 Exception:0 Z:0]"


# §4.8 Apply ---------------------------------------------------------------------------------------


def test_s4_8_state_log_lines() -> None:
    """[state] +New -Gone at Changes level; [auto_] for auto; a Multi re-activation shows as +M."""
    mach, lines = logged(
        {
            "A": am.State(),
            "B": am.State(),
            "M": am.State(multi=True),
            "X": am.State(auto=True, require=("B",)),
        },
        am.LogLevel.CHANGES,
    )
    mach.add1("A")
    mach.set(["B"])
    mach.add1("M")
    mach.add1("M")
    assert lines == ["[state] +A", "[state] +B -A", "[auto_] +X", "[state] +M", "[state] +M"]


def test_s4_8_state_ctx_cancelled_before_finals() -> None:
    """State contexts of (de)activated states are cancelled before the final handlers run."""
    mach = am.Machine(NO_RELS)
    mach.add1("A")
    ctx_a = mach.new_state_ctx("A")
    seen: dict[str, bool] = {}

    def b_state(_e: am.Event) -> None:
        seen["a_done"] = ctx_a.done()
        fresh = mach.new_state_ctx("B")
        seen["b_fresh_alive"] = not fresh.done()

    def a_exit(_e: am.Event) -> None:
        seen["a_done_in_exit"] = ctx_a.done()

    mach.bind_handlers(Rec(do={"BState": b_state, "AExit": a_exit}))
    mach.set(["B"])
    assert seen == {"a_done_in_exit": False, "a_done": True, "b_fresh_alive": True}


# §4.9 Final phase ---------------------------------------------------------------------------------


def test_s4_9_multi_to_single_state_transition() -> None:
    """[T TestMultiToSingleStateTransition] {A,B}, Set(C): exact full order."""
    mach = am.Machine(NO_RELS)
    mach.set(["A", "B"])
    rec = Rec(*all_handlers("ABC"))
    mach.bind_handlers(rec)
    assert mach.set(["C"]) == am.Executed
    assert rec.calls == [
        "AExit",
        "BExit",
        "CEnter",
        "AC",
        "BC",
        "AnyEnter",
        "AEnd",
        "BEnd",
        "CState",
        "AnyState",
    ]


def test_s4_9_self_handlers_order() -> None:
    """[T TestSelfHandlersOrder] {A}, Set(A,B): BEnter, AA, AB, AnyEnter, BState, AnyState."""
    mach = am.Machine(NO_RELS)
    mach.add1("A")
    rec = Rec(*all_handlers("AB"))
    mach.bind_handlers(rec)
    assert mach.set(["A", "B"]) == am.Executed
    assert rec.calls == ["BEnter", "AA", "AB", "AnyEnter", "BState", "AnyState"]


def test_s4_9_final_return_values_ignored() -> None:
    """Final handlers returning False change nothing."""
    mach = am.Machine(NO_RELS)
    mach.bind_handlers(Rec(do={"AState": lambda _e: False, "AnyState": lambda _e: False}))
    assert mach.add1("A") == am.Executed
    assert mach.string() == "(A:1)"


def test_s4_9_any_state_skipped_when_cancelled() -> None:
    """AnyState runs only for accepted transitions."""
    mach = am.Machine(NO_RELS)
    rec = Rec("AnyState", do={"AEnter": lambda _e: False})
    mach.bind_handlers(rec)
    assert mach.add1("A") == am.Canceled
    assert rec.calls == ["AEnter"]


def test_s4_9_on_change_runs_for_cancelled_too() -> None:
    """OnChange(mach, before, after) runs after every non-check transition, cancelled ones too."""
    mach = am.Machine({"A": am.State(), "F": am.State(require=("G",)), "G": am.State()})
    seen: list[tuple[list[int], list[int]]] = []
    mach.on_change(lambda _m, before, after: seen.append((list(before), list(after))))
    mach.add1("A")
    mach.add1("F")
    mach.can_add1("G")
    assert seen == [([0, 0, 0, 0], [1, 0, 0, 0]), ([1, 0, 0, 0], [1, 0, 0, 0])]


# §4.10 Scheduling auto states ---------------------------------------------------------------------


def test_s4_10_auto_only_when_clock_changed() -> None:
    """No auto mutation after a transition that changed no tick."""
    mach, lines = logged(
        {"A": am.State(), "R": am.State(), "X": am.State(auto=True, require=("R",))}
    )
    mach.add1("A")
    assert lines.count("[auto] X") == 1
    mach.add1("A")
    assert lines.count("[auto] X") == 1
    mach.remove1("A")
    assert lines.count("[auto] X") == 2


def test_s4_10_auto_prepended_before_queued() -> None:
    """The auto mutation runs before anything already queued."""
    mach = am.Machine({"A": am.State(), "B": am.State(), "X": am.State(auto=True)})
    rec = Rec("BState", "XState", do={"AEnter": lambda _e: mach.add1("B")})
    mach.bind_handlers(rec)
    mach.add1("A")
    assert rec.calls == ["AEnter", "XState", "BState"]


# §4.11 End ----------------------------------------------------------------------------------------


def test_s4_11_subscriptions_after_accepted_only() -> None:
    """Accepted transitions resolve subscriptions synchronously; cancelled ones process none."""
    mach = am.Machine({"A": am.State(), "F": am.State(require=("G",)), "G": am.State()})
    w_a = mach.when1("A")
    w_q = mach.when_query(lambda _clock: True)
    assert mach.add1("F") == am.Canceled
    assert not w_q.done()
    assert not w_a.done()
    assert mach.add1("A") == am.Executed
    assert w_a.done() and not w_a.cancelled()
    assert w_q.done()


def test_s4_11_transition_none_when_idle() -> None:
    """transition is set while a transition runs and None once the queue is empty."""
    mach = am.Machine(NO_RELS)
    seen: list[Any] = []
    mach.bind_handlers(Rec(do={"AState": lambda e: seen.append(mach.transition is e.transition)}))
    assert mach.transition is None
    mach.add1("A")
    assert seen == [True]
    assert mach.transition is None


# §4.12 The transition object ----------------------------------------------------------------------


def test_s4_12_handler_state_info() -> None:
    """[T TestHandlerStateInfo] {A}, Set(D), inside DEnter: the transition object."""
    mach = am.Machine(NO_RELS)
    mach.add1("A")
    seen: dict[str, Any] = {}

    def d_enter(e: am.Event) -> None:
        tx = e.transition
        seen["tx"] = tx
        seen["active"] = mach.active_states()
        seen["target"] = list(tx.target_states)
        seen["called"] = list(tx.called_states)
        seen["before"] = list(tx.states_before)
        seen["enters"] = list(tx.enters)
        seen["exits"] = list(tx.exits)
        seen["accepted"] = tx.is_accepted
        seen["completed"] = tx.is_completed
        seen["time_before"] = list(tx.time_before)
        seen["time_after"] = list(tx.time_after)
        seen["str"] = str(tx)

    def d_state(e: am.Event) -> None:
        seen["time_after_final"] = list(e.transition.time_after)

    mach.bind_handlers(Rec(do={"DEnter": d_enter, "DState": d_state}))
    assert mach.set(["D"]) == am.Executed
    tx = seen["tx"]
    assert re.fullmatch(r"[0-9a-f]{16}", tx.id)
    assert seen["active"] == ["A"]
    assert seen["target"] == ["D"]
    assert seen["called"] == ["D"]
    assert seen["before"] == ["A"]
    assert (seen["enters"], seen["exits"]) == (["D"], ["A"])
    assert (seen["accepted"], seen["completed"]) == (True, False)
    assert seen["time_before"] == [1, 0, 0, 0, 0]
    assert seen["time_after"] == [2, 0, 0, 1, 0]
    assert seen["time_after_final"] == [2, 0, 0, 1, 0]
    assert seen["str"].startswith(f"tx#{tx.id}\n[set] D")
    assert tx.is_completed is True
    assert tx.is_auto is False
    mut = tx.mutation
    assert mut.type == am.MutationType.SET
    assert list(mut.called) == ["D"]
    assert (mut.is_auto, mut.is_check, mut.queue_tick) == (False, False, 3)


def test_s4_12_cancelled_time_after_equals_before() -> None:
    """A cancelled transition is not accepted and its TimeAfter equals TimeBefore."""
    mach = am.Machine(NO_RELS)
    mach.add1("A")
    txs: list[Any] = []

    def b_enter(e: am.Event) -> bool:
        txs.append(e.transition)
        return False

    mach.bind_handlers(Rec(do={"BEnter": b_enter}))
    assert mach.add1("B") == am.Canceled
    (tx,) = txs
    assert tx.is_accepted is False
    assert tx.is_completed is True
    assert list(tx.time_after) == list(tx.time_before) == [1, 0, 0, 0, 0]
    assert tx.mutation.type == am.MutationType.ADD


def test_s4_12_mutation_types_and_auto() -> None:
    """Mutation types for add, remove and auto transitions."""
    mach = am.Machine({"A": am.State(), "X": am.State(auto=True)})
    seen: list[tuple[Any, bool, bool, list[str]]] = []

    def any_enter(e: am.Event) -> None:
        seen.append(
            (e.mutation.type, e.mutation.is_auto, e.transition.is_auto, list(e.mutation.called))
        )

    mach.bind_handlers(Rec(do={"AnyEnter": any_enter}))
    mach.add1("A")
    mach.remove1("A")
    assert seen == [
        (am.MutationType.ADD, False, False, ["A"]),
        (am.MutationType.ADD, True, True, ["X"]),
        (am.MutationType.REMOVE, False, False, ["A"]),
    ]


def test_s4_12_final_handler_sees_new_state() -> None:
    """Inside FooState with Foo{Add:[Bar]}, Is([Foo, Bar]) is already true."""
    mach = am.Machine({"Foo": am.State(add=("Bar",)), "Bar": am.State()})
    seen: list[bool] = []
    mach.bind_handlers(Rec(do={"FooState": lambda _e: seen.append(mach.is_(["Foo", "Bar"]))}))
    mach.add1("Foo")
    assert seen == [True]
