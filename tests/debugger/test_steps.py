"""Resolution steps as the stream reports them, for the transitions a reader needs explained."""

from __future__ import annotations

from typing import Any

from dbg_support import traced, txs

import asyncmachine as am

Msg = dict[str, Any]


def kinds(msg: Msg) -> list[tuple[Any, ...]]:
    """Steps as short tuples: ("rel", "add", "A", "B", "activate"), ("handler", "AEnter", None)."""
    out: list[tuple[Any, ...]] = []
    for s in msg["steps"]:
        if s["kind"] == "rel":
            out.append(("rel", s["rel"], s["from"], s["to"], s["effect"]))
        elif s["kind"] == "handler":
            out.append(("handler", s["name"], s.get("outcome")))
        elif s["kind"] == "cancel":
            out.append(("cancel", s["reason"], s.get("by")))
        else:
            out.append((s["kind"], s["state"]))
    return out


def test_add_relation_implies_and_removes() -> None:
    mach, _, box = traced(
        {
            "A": am.State(add=("B",)),
            "B": am.State(add=("C",)),
            "C": am.State(),
            "D": am.State(remove=("A",)),
        }
    )
    mach.add1("A")
    mach.add1("D")
    first, second = txs(box)
    assert kinds(first) == [
        ("rel", "add", "A", "B", "activate"),
        ("rel", "add", "B", "C", "activate"),
        ("activate", "A"),
        ("activate", "B"),
        ("activate", "C"),
    ]
    assert first["ticks"] == {"A": 1, "B": 1, "C": 1}
    assert kinds(second) == [
        ("rel", "remove", "D", "A", "deactivate"),
        ("deactivate", "A"),
        ("activate", "D"),
    ]


def test_require_rejects_a_called_state_and_deactivates_dependants() -> None:
    mach, _, box = traced({"A": am.State(), "B": am.State(require=("A",))})
    mach.add1("B")
    mach.add(["A", "B"])
    mach.remove1("A")
    rejected, added, removed = txs(box)
    assert rejected["accepted"] is False and rejected["ticks"] == {}
    assert kinds(rejected) == [
        ("rel", "require", "B", "A", "reject"),
        ("cancel", "relations", None),
    ]
    assert added["accepted"] is True
    assert kinds(removed) == [
        ("rel", "require", "B", "A", "deactivate"),
        ("deactivate", "A"),
        ("deactivate", "B"),
    ]


def test_set_unsets_states_not_called() -> None:
    mach, _, box = traced({"A": am.State(), "B": am.State()})
    mach.add1("A")
    mach.set(["B"])
    assert kinds(txs(box)[1]) == [("unset", "A"), ("deactivate", "A"), ("activate", "B")]


def test_handler_cancel_names_the_handler_and_what_would_have_happened() -> None:
    class H:
        def AExit(self, e: am.Event) -> bool:
            return True

        def BEnter(self, e: am.Event) -> bool:
            return bool(e.args.get("ok"))

        def BState(self, e: am.Event) -> None:
            pass

    mach, _, box = traced({"A": am.State(), "B": am.State(remove=("A",))})
    mach.bind_handlers(H())
    mach.add1("A")
    mach.add1("B")
    mach.add1("B", {"ok": True})
    _, canceled, done = txs(box)
    assert canceled["canceled_by"] == "BEnter"
    assert kinds(canceled) == [
        ("rel", "remove", "B", "A", "deactivate"),
        ("handler", "AExit", None),
        ("handler", "BEnter", "canceled"),
        ("cancel", "handler", "BEnter"),
    ]
    assert "canceled_by" not in done
    assert kinds(done)[-4:] == [
        ("handler", "BEnter", None),
        ("handler", "BState", None),
        ("deactivate", "A"),
        ("activate", "B"),
    ]


def test_raising_negotiation_handler_cancels_and_is_marked() -> None:
    class H:
        def AEnter(self, e: am.Event) -> bool:
            raise ValueError("nope")

    mach, _, box = traced({"A": am.State()})
    mach.bind_handlers(H())
    mach.add1("A")
    canceled, exception = txs(box)
    assert canceled["canceled_by"] == "AEnter"
    assert kinds(canceled) == [("handler", "AEnter", "canceled"), ("cancel", "handler", "AEnter")]
    assert exception["called"] == ["Exception"]
    assert exception["error"] == {"type": "ValueError", "message": "nope"}
    # the error's transition points at the one it interrupted
    assert exception["source"] == {"mach": mach.id, "tx": canceled["tx"], "handler": "AEnter"}


def test_raising_final_handler_rolls_back_with_ticks() -> None:
    class H:
        def AState(self, e: am.Event) -> None:
            raise RuntimeError("broken")

    mach, _, box = traced({"A": am.State(), "B": am.State()})
    mach.bind_handlers(H())
    mach.add(["A", "B"])
    rolled, exception = txs(box)
    assert rolled["accepted"] is False
    # A's handler raised: A and what entered after it are rolled back (clock moved twice); the
    # Exception transition that follows names the handler
    assert exception["source"] == {"mach": mach.id, "tx": rolled["tx"], "handler": "AState"}
    assert rolled["ticks"] == {"A": 2, "B": 2} == mach.clock(["A", "B"])
    assert "canceled_by" not in rolled
    assert kinds(rolled) == [
        ("handler", "AState", None),
        ("rollback", "A"),
        ("rollback", "B"),
        ("cancel", "handler", None),
    ]


def test_auto_state_refused_by_its_handler() -> None:
    class H:
        def BEnter(self, e: am.Event) -> bool:
            return False

    mach, _, box = traced({"A": am.State(), "B": am.State(auto=True), "C": am.State(auto=True)})
    mach.bind_handlers(H())
    mach.add1("A")
    _, auto = txs(box)
    assert auto["auto"] is True and auto["accepted"] is True
    assert auto["called"] == ["B", "C"]
    assert ("handler", "BEnter", "refused") in kinds(auto)
    assert kinds(auto)[-1] == ("activate", "C")


def test_after_relation_orders_changes() -> None:
    mach, _, box = traced({"A": am.State(after=("B",)), "B": am.State()})
    mach.add(["A", "B"])
    assert ("rel", "after", "A", "B", "order") in kinds(txs(box)[0])


def test_multi_state_reenters() -> None:
    mach, _, box = traced({"M": am.State(multi=True)})
    mach.add1("M")
    mach.add1("M")
    second = txs(box)[1]
    assert second["ticks"] == {"M": 3}
    assert kinds(second) == [("activate", "M")]
