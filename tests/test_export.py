"""Export and import of the clock (docs/semantics.md#export-and-import)."""

from __future__ import annotations

import json

import pytest

import asyncmachine as am

St = am.State
NO_RELS = {"A": St(), "B": St(), "C": St(), "D": St()}


# --- export / import ------------------------------------------------------------------------------


def test_export_keys_and_values() -> None:
    """export() -> id, state_names, time, queue_tick, machine_tick."""
    mach = am.Machine(dict(NO_RELS), id="exp1")
    mach.verify_states(["D", "C", "B", "A", "Exception"])
    mach.add(["A", "C"])
    mach.remove1("A")
    d = mach.export()
    assert set(d) == {"id", "state_names", "time", "queue_tick", "machine_tick"}
    assert d["id"] == "exp1"
    assert list(d["state_names"]) == ["D", "C", "B", "A", "Exception"]
    assert list(d["time"]) == [0, 1, 0, 2, 0]
    assert d["queue_tick"] == mach.queue_tick()
    assert d["machine_tick"] == 0
    assert json.loads(json.dumps(d)) == {
        **d,
        "state_names": list(d["state_names"]),
        "time": list(d["time"]),
    }


def test_import_restores_clock() -> None:
    """import_data restores ticks and the active set, machine_tick becomes +1."""
    src = am.Machine(dict(NO_RELS), id="same")
    src.verify_states(["A", "B", "C", "D", "Exception"])
    src.add(["A", "B"])
    src.remove1("A")
    src.add1("A")
    src.add1("D")
    d = json.loads(json.dumps(src.export()))

    dst = am.Machine(dict(NO_RELS), id="same")
    dst.verify_states(["A", "B", "C", "D", "Exception"])
    dst.import_data(d)
    assert dst.string_all() == "(A:3 B:1 D:1) [C:0 Exception:0]"
    assert set(dst.active_states()) == {"A", "B", "D"}
    assert dst.machine_tick() == 1
    assert dst.export()["machine_tick"] == 1

    third = am.Machine(dict(NO_RELS), id="same")
    third.verify_states(["A", "B", "C", "D", "Exception"])
    third.import_data(dst.export())
    assert third.machine_tick() == 2
    assert third.clock() == src.clock()


def test_import_then_mutate_continues_clock() -> None:
    """Mutations after an import continue from the restored ticks."""
    src = am.Machine(dict(NO_RELS), id="same")
    src.verify_states(["A", "B", "C", "D", "Exception"])
    src.add(["A", "B"])
    dst = am.Machine(dict(NO_RELS), id="same")
    dst.verify_states(["A", "B", "C", "D", "Exception"])
    dst.import_data(src.export())
    assert dst.remove1("A") == am.Executed
    assert dst.string_all() == "(B:1) [A:2 C:0 D:0 Exception:0]"


def test_import_adds_machine_restored() -> None:
    """MachineRestored is added after the import when the schema has it."""
    schema = {"A": St(), "MachineRestored": St()}
    src = am.Machine(dict(schema), id="r")
    src.verify_states(["A", "MachineRestored", "Exception"])
    src.add1("A")
    dst = am.Machine(dict(schema), id="r")
    dst.verify_states(["A", "MachineRestored", "Exception"])
    dst.import_data(src.export())
    assert dst.string_all() == "(A:1 MachineRestored:1) [Exception:0]"


@pytest.mark.parametrize(
    "other",
    [
        {"A": St(), "B": St(), "C": St(), "X": St()},
        {"A": St(), "B": St(), "C": St()},
        {"A": St(), "B": St(), "C": St(), "D": St(), "E": St()},
    ],
)
def test_import_different_state_names_raises(other: dict[str, am.State]) -> None:
    """ValueError when state_names differ."""
    src = am.Machine(dict(NO_RELS), id="same")
    src.verify_states(["A", "B", "C", "D", "Exception"])
    src.add1("A")
    dst = am.Machine(dict(other), id="same")
    dst.verify_states(sorted([*other, "Exception"]))
    before = dst.string_all()
    with pytest.raises(ValueError):
        dst.import_data(src.export())
    assert dst.string_all() == before
    assert dst.machine_tick() == 0


def test_import_id_mismatch_raises() -> None:
    """Upstream's `import ID mismatch`: another machine's export is refused, nothing changes."""
    src = am.Machine(dict(NO_RELS), id="one")
    src.add1("A")
    dst = am.Machine(dict(NO_RELS), id="two")
    with pytest.raises(ValueError, match="import ID mismatch"):
        dst.import_data(src.export())
    assert dst.string_all() == "() [A:0 B:0 C:0 D:0 Exception:0]"
    assert dst.machine_tick() == 0


def test_import_without_id_check() -> None:
    """check_id=False restores another machine's clock (a copy, a migration)."""
    src = am.Machine(dict(NO_RELS), id="one")
    src.add(["A", "C"])
    dst = am.Machine(dict(NO_RELS), id="two")
    dst.import_data(src.export(), check_id=False)
    assert dst.string_all() == "(A:1 C:1) [B:0 D:0 Exception:0]"
    assert dst.id == "two"


def test_import_then_relations_resolve_from_the_restored_states() -> None:
    """Relations see the imported active states (nothing remembered from before the import)."""
    schema = {"A": St(remove=("B",)), "B": St(remove=("A",)), "C": St(require=("A",))}
    src = am.Machine(dict(schema), id="m")
    src.add1("A")
    dst = am.Machine(dict(schema), id="m")
    dst.add1("B")
    dst.add1("A")
    dst.add1("B")
    dst.import_data(src.export())
    assert dst.add1("C") == am.Executed
    assert set(dst.active_states()) == {"A", "C"}
    assert dst.add1("B") == am.Executed
    assert set(dst.active_states()) == {"B"}
