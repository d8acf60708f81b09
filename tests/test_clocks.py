"""Clocks: tick rules, reading time and the `am.Time` helpers (docs/semantics.md#clocks)."""

from __future__ import annotations

from support import NO_RELS, Rec

import asyncmachine as am


def abcd(mach: am.Machine) -> list[int]:
    """Ticks of A B C D, as in the clocks example."""
    return list(mach.time(["A", "B", "C", "D"]))


def time_machine() -> am.Machine:
    """The upstream TestTime: machine: B{Multi}, the rest plain."""
    return am.Machine(
        {"A": am.State(), "B": am.State(multi=True), "C": am.State(), "D": am.State()}
    )


# --- Tick rules -----------------------------------------------------------------------------------


def test_time_example_table() -> None:
    """upstream TestTime: the exact tick table, ending with machine time 16."""
    mach = time_machine()
    assert mach.add(["A", "B"]) == am.Executed
    assert abcd(mach) == [1, 1, 0, 0]
    assert mach.add(["A", "B"]) == am.Executed
    assert abcd(mach) == [1, 3, 0, 0]  # B multi and called: +2; A unchanged
    mach.add(["A", "B", "C"])
    assert abcd(mach) == [1, 5, 1, 0]
    mach.set(["D"])
    assert abcd(mach) == [2, 6, 2, 1]
    mach.add(["D", "C"])
    assert abcd(mach) == [2, 6, 3, 1]
    mach.remove(["B", "C"])
    assert abcd(mach) == [2, 6, 4, 1]  # B was already inactive: no tick
    mach.add(["A", "B"])
    assert abcd(mach) == [3, 7, 4, 1]
    mach.add(["C"])
    assert abcd(mach) == [3, 7, 5, 1]
    assert mach.time().sum() == 16
    assert mach.tick("Exception") == 0


def test_clock_example() -> None:
    """upstream TestClock: after the first seven steps of TestTime."""
    mach = time_machine()
    mach.add(["A", "B"])
    mach.add(["A", "B"])
    mach.add(["A", "B", "C"])
    mach.set(["D"])
    mach.add(["D", "C"])
    mach.remove(["B", "C"])
    mach.add(["A", "B"])
    assert mach.clock() == {"A": 3, "B": 7, "C": 4, "D": 1, "Exception": 0}


def test_multi_implied_not_reticked() -> None:
    """upstream TestInspect: B{Multi}, D{Add:[C,B]}, B active at 1: Add(D) leaves B:1."""
    mach = am.Machine({"B": am.State(multi=True), "C": am.State(), "D": am.State(add=("C", "B"))})
    mach.add1("B")
    assert mach.add1("D") == am.Executed
    assert mach.string_all() == "(B:1 C:1 D:1) [Exception:0]"


def test_odd_is_active() -> None:
    """Odd ticks are active, even inactive, and every toggle moves the tick by one."""
    mach = am.Machine(NO_RELS)
    mach.add1("A")
    assert mach.tick("A") == 1 and mach.is1("A")
    mach.remove1("A")
    assert mach.tick("A") == 2 and not mach.is1("A")
    mach.add1("A")
    assert mach.tick("A") == 3 and mach.is1("A")


def test_cancelled_transition_changes_no_tick() -> None:
    """A cancelled transition changes no tick."""
    mach = am.Machine({"Foo": am.State(require=("Bar",)), "Bar": am.State(), "Baz": am.State()})
    mach.add1("Baz")
    before = list(mach.time())
    assert mach.add(["Foo", "Baz"]) == am.Canceled
    assert list(mach.time()) == before


def test_noop_transition_runs_handlers_and_queue_tick() -> None:
    """No tick change for a no-op Add, but handlers still run and a queue tick is used."""
    mach = am.Machine(NO_RELS)
    mach.add1("A")
    rec = Rec("AEnter", "AA", "AState", "AnyEnter", "AnyState")
    mach.bind_handlers(rec)
    qt = mach.queue_tick()
    assert mach.add1("A") == am.Executed
    assert mach.tick("A") == 1
    assert mach.queue_tick() == qt + 1
    assert rec.calls == ["AA", "AnyEnter", "AnyState"]


def test_multi_called_active_plus_two() -> None:
    """A called Multi state that is active gets +2; an inactive non-called one gets nothing."""
    mach = am.Machine({"M": am.State(multi=True), "A": am.State()})
    mach.add1("M")
    mach.add1("M")
    mach.set(["M", "A"])
    assert mach.clock() == {"A": 1, "Exception": 0, "M": 5}


# --- Reading time ---------------------------------------------------------------------------------


def test_tick_unknown_is_zero() -> None:
    """Tick of an unknown name is 0, not an error."""
    mach = am.Machine(NO_RELS)
    assert mach.tick("Nope") == 0


def test_time_orders() -> None:
    """time(states) follows the given order; time() follows state_names()."""
    mach = am.Machine(NO_RELS)
    mach.add1("C")
    mach.add1("A")
    mach.remove1("A")
    t = mach.time()
    assert isinstance(t, am.Time)
    assert isinstance(t, list)
    assert list(t) == [2, 0, 1, 0, 0]
    assert list(mach.time(["C", "A"])) == [1, 2]


def test_clock_subset() -> None:
    """clock(states) is a {name: tick} map of only those states."""
    mach = am.Machine(NO_RELS)
    mach.add(["A", "B"])
    assert mach.clock(["B"]) == {"B": 1}
    assert mach.clock() == {"A": 1, "B": 1, "C": 0, "D": 0, "Exception": 0}


def test_machine_time_strictly_increases() -> None:
    """Sum of all ticks strictly increases with every state change."""
    mach = time_machine()
    sums = [mach.time().sum()]
    for mutate in (
        lambda: mach.add(["A", "B"]),
        lambda: mach.add1("B"),
        lambda: mach.set(["C"]),
        lambda: mach.remove1("C"),
        lambda: mach.toggle1("D"),
    ):
        mutate()
        sums.append(mach.time().sum())
    assert sums == [0, 2, 4, 7, 8, 9]


def test_is_active_tick_and_next() -> None:
    """IsActiveTick, NextActive(In) and NextInactive(In) arithmetic."""
    assert am.is_active_tick(1) and am.is_active_tick(3)
    assert not am.is_active_tick(0) and not am.is_active_tick(2)
    assert [am.next_active(t) for t in (0, 1, 2, 3)] == [1, 3, 3, 5]
    assert [am.next_inactive(t) for t in (0, 1, 2, 3)] == [2, 2, 4, 4]
    assert [am.next_active_in(t) for t in (0, 1, 2, 3)] == [1, 2, 1, 2]
    assert [am.next_inactive_in(t) for t in (0, 1, 2, 3)] == [2, 1, 2, 1]


def test_is_clock() -> None:
    """upstream TestIsClock: is_clock is true iff nothing in the given clock changed."""
    mach = am.Machine(NO_RELS)
    c_a = mach.clock(["A"])
    assert mach.is_clock(c_a) is True
    mach.add(["A", "B"])
    assert mach.is_clock(c_a) is False
    c_a["A"] += 1
    assert mach.is_clock(c_a) is True
    assert mach.is_clock(mach.clock()) is True


def test_is_time() -> None:
    """is_time compares a time list to the current ticks (state_names by default)."""
    mach = am.Machine(NO_RELS)
    mach.add1("B")
    t_ab = mach.time(["A", "B"])
    t_all = mach.time()
    assert mach.is_time(t_ab, ["A", "B"]) is True
    assert mach.is_time(t_all) is True
    mach.add1("A")
    assert mach.is_time(t_ab, ["A", "B"]) is False
    assert mach.is_time(t_all) is False
    assert mach.is_time(mach.time(["B"]), ["B"]) is True


def test_was_clock_and_was_time() -> None:
    """was_clock / was_time: every current tick is >= the given one."""
    mach = am.Machine(NO_RELS)
    c = mach.clock(["A", "B"])
    t = mach.time(["A", "B"])
    mach.add1("A")
    assert mach.was_clock(c) is True
    assert mach.was_time(t, ["A", "B"]) is True
    assert mach.was_clock({"A": 2, "B": 0}) is False
    assert mach.was_time(am.Time([1, 1]), ["A", "B"]) is False


def test_machine_tick_zero() -> None:
    """machine_tick() is 0 without an import."""
    mach = am.Machine(NO_RELS)
    mach.add1("A")
    assert mach.machine_tick() == 0


# --- Time helpers ---------------------------------------------------------------------------------


def test_time_methods_example() -> None:
    """upstream TestTimeMethods: t=[2,1,3]: Is1(1), not Is1(-1), Any1(2), (t+t).DiffSince(t) ==
    t."""
    t = am.Time([2, 1, 3])
    assert t.is1(1) is True
    assert t.is1(-1) is False
    assert t.any1(2) is True
    assert list(t.add(t).diff_since(t)) == [2, 1, 3]


def test_is1_and_is() -> None:
    """is1 is false out of range; is_ is false for an empty list or any -1."""
    t = am.Time([2, 1, 3])
    assert t.is1(0) is False
    assert t.is1(3) is False
    assert t.is_([1, 2]) is True
    assert t.is_([0, 1]) is False
    assert t.is_([]) is False
    assert t.is_([1, -1]) is False


def test_not_and_not1() -> None:
    """not_ is true for an empty list and ignores -1."""
    t = am.Time([2, 1, 3])
    assert t.not_([]) is True
    assert t.not_([0]) is True
    assert t.not_([0, -1]) is True
    assert t.not_([0, 1]) is False
    assert t.not1(0) is True
    assert t.not1(2) is False


def test_any_and_any1() -> None:
    """any: some list fully active; any1: some single index active."""
    t = am.Time([2, 1, 3])
    assert t.any([0], [1, 2]) is True
    assert t.any([0, 1], [0]) is False
    assert t.any() is False
    assert t.any1(0, 1) is True
    assert t.any1(0) is False
    assert t.any1() is False


def test_active_states_and_non_zero() -> None:
    """active_states lists the active indexes; non_zero_states the non-zero ones."""
    t = am.Time([2, 1, 0, 3])
    assert list(t.active_states()) == [1, 3]
    assert list(t.non_zero_states()) == [0, 1, 3]


def test_add_and_diff_since_lengths() -> None:
    """add sums element-wise (self if lengths differ); diff_since is all zeros then."""
    t = am.Time([2, 1, 3])
    assert list(t.add(am.Time([1, 1, 1]))) == [3, 2, 4]
    assert list(t.add(am.Time([1]))) == [2, 1, 3]
    assert list(am.Time([5, 6, 7]).diff_since(am.Time([1, 2, 3]))) == [4, 4, 4]
    assert list(t.diff_since(am.Time([1]))) == [0, 0, 0]


def test_filter_sum_tick() -> None:
    """filter picks indexes, sum totals (optionally some indexes), tick is 0 out of range."""
    t = am.Time([2, 1, 3])
    assert list(t.filter([2, 0])) == [3, 2]
    assert t.sum() == 6
    assert t.sum([0, 2]) == 5
    assert t.tick(2) == 3
    assert t.tick(9) == 0


def test_after_before_require_every_index() -> None:
    """after / before hold for every common index (godoc's "at least one" is wrong)."""
    t = am.Time([2, 2, 3])
    assert t.after(False, am.Time([1, 1, 2])) is True
    assert t.after(False, am.Time([1, 2, 2])) is False
    assert t.after(True, am.Time([1, 2, 2])) is True
    assert t.after(False, am.Time([1, 1])) is True
    assert t.after(False, am.Time([3, 1, 1])) is False
    assert t.before(False, am.Time([3, 3, 4])) is True
    assert t.before(False, am.Time([3, 2, 4])) is False
    assert t.before(True, am.Time([3, 2, 4])) is True
    assert t.before(False, am.Time([1, 3, 4])) is False


def test_equal() -> None:
    """equal compares element-wise; strict also requires the same length."""
    t = am.Time([2, 1, 3])
    assert t.equal(True, am.Time([2, 1, 3])) is True
    assert t.equal(False, am.Time([2, 1, 3])) is True
    assert t.equal(False, am.Time([2, 1, 4])) is False
    assert t.equal(True, am.Time([2, 1, 3, 0])) is False
    assert t.equal(False, am.Time([2, 1, 3, 0])) is True


def test_machine_time_helpers_on_real_clock() -> None:
    """The helpers line up with the machine's index(): a real time answers is_/not_."""
    mach = am.Machine(NO_RELS)
    mach.add(["A", "C"])
    t = mach.time()
    assert t.is_(mach.index(["A", "C"])) is True
    assert t.not_(mach.index(["B", "D"])) is True
    assert t.is1(mach.index1("B")) is False
    assert list(t.active_states()) == mach.index(["A", "C"])
