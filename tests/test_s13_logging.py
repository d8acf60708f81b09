"""§13 logging: levels, the id prefix and the line formats."""

from __future__ import annotations

import logging
from types import SimpleNamespace

import pytest

import asyncmachine as am

St = am.State
NO_RELS = {"A": St(), "B": St(), "C": St(), "D": St()}


def logged(
    level: am.LogLevel, schema: dict[str, am.State] | None = None, **kw: object
) -> tuple[am.Machine, list[tuple[am.LogLevel, str]]]:
    """A machine with a collecting logger; id logging off unless overridden."""
    lines: list[tuple[am.LogLevel, str]] = []
    kw.setdefault("log_id", False)
    mach = am.Machine(
        dict(schema or NO_RELS),
        log_level=level,
        logger=lambda lvl, msg: lines.append((lvl, msg)),
        **kw,  # type: ignore[arg-type]
    )
    return mach, lines


def msgs(lines: list[tuple[am.LogLevel, str]]) -> list[str]:
    """Only the messages."""
    return [m for _, m in lines]


def test_log_levels() -> None:
    """LogLevel values 0-5 in the §13 order."""
    assert [
        int(x)
        for x in (
            am.LogLevel.NOTHING,
            am.LogLevel.EXTERNAL,
            am.LogLevel.CHANGES,
            am.LogLevel.OPS,
            am.LogLevel.DECISIONS,
            am.LogLevel.EVERYTHING,
        )
    ] == [0, 1, 2, 3, 4, 5]


def test_state_line_and_id_prefix() -> None:
    """`[state] +A +B -C`, prefixed with the first 5 id chars by default."""
    mach, lines = logged(am.LogLevel.CHANGES, id="abcdefgh", log_id=True)
    mach.add1("C")
    mach.set(["A", "B"])
    assert lines == [
        (am.LogLevel.CHANGES, "[abcde] [state] +C"),
        (am.LogLevel.CHANGES, "[abcde] [state] +A +B -C"),
    ]


def test_changes_level_only_logs_changes() -> None:
    """At CHANGES: no line for unchanged or cancelled transitions, no args without a mapper."""
    mach, lines = logged(am.LogLevel.CHANGES, {"A": St(), "B": St(require=("C",)), "C": St()})
    mach.add1("A", {"x": 1})
    mach.add1("A")
    mach.add1("B")
    mach.remove1("A")
    assert msgs(lines) == ["[state] +A", "[state] -A"]
    assert all(lvl == am.LogLevel.CHANGES for lvl, _ in lines)


def test_multi_and_auto_lines() -> None:
    """A Multi re-activation appears as `+M`; auto transitions use `[auto_]`."""
    mach, lines = logged(am.LogLevel.CHANGES, {"M": St(multi=True), "X": St(auto=True)})
    mach.add1("M")
    mach.add1("M")
    assert msgs(lines) == ["[state] +M", "[auto_] +X", "[state] +M"]


def test_nothing_level_logs_nothing() -> None:
    """LogNothing (the default) emits nothing, not even mach.log."""
    mach, lines = logged(am.LogLevel.NOTHING)
    mach.add1("A")
    mach.log("hello")
    mach.add_err(ValueError("x"))
    assert lines == []


def test_external_log() -> None:
    """mach.log(msg) -> `[exter] msg` at EXTERNAL, newlines replaced by spaces."""
    mach, lines = logged(am.LogLevel.EXTERNAL)
    mach.add1("A")
    mach.log("hello\nworld")
    assert lines == [(am.LogLevel.EXTERNAL, "[exter] hello world")]


def test_cancel_by_handler_line() -> None:
    """TestNegotiationCancel: `[cancel] (D A) by DEnter`, then `[cancel] (D) by DEnter`."""
    mach, lines = logged(am.LogLevel.OPS)
    mach.add1("A")
    mach.bind_handlers(SimpleNamespace(DEnter=lambda e: False))
    lines.clear()
    assert mach.add1("D") == am.Canceled
    assert (am.LogLevel.OPS, "[cancel] (D A) by DEnter") in lines
    lines.clear()
    assert mach.set(["D"]) == am.Canceled
    assert (am.LogLevel.OPS, "[cancel] (D) by DEnter") in lines
    assert mach.string_all() == "(A:1) [B:0 C:0 D:0 Exception:0]"


def test_ops_relation_lines() -> None:
    """`[rel:remove] D by C` for an active D, `[reject] C(-D)` for a missing requirement."""
    mach, lines = logged(
        am.LogLevel.OPS, {"C": St(remove=("D",)), "D": St(), "E": St(require=("D",))}
    )
    mach.add1("D")
    lines.clear()
    mach.add1("C")
    assert "[rel:remove] D by C" in msgs(lines)
    lines.clear()
    assert mach.add1("E") == am.Canceled
    assert "[reject] E(-D)" in msgs(lines)
    assert "[cancel:reject] E" in msgs(lines)


def test_ops_transition_start_line() -> None:
    """`[add] A B` / `[remove] A` at transition start."""
    mach, lines = logged(am.LogLevel.OPS)
    mach.add(["A", "B"])
    mach.remove1("A")
    assert "[add] A B" in msgs(lines)
    assert "[remove] A" in msgs(lines)


def test_levels_are_filtered() -> None:
    """A line is emitted iff its level <= the machine's level."""
    for level in am.LogLevel:
        mach, lines = logged(level)
        mach.bind_handlers(SimpleNamespace(DEnter=lambda e: False))
        mach.add1("A")
        mach.add1("D")
        mach.log("ext")
        assert all(lvl <= level for lvl, _ in lines)
        assert ((am.LogLevel.CHANGES, "[state] +A") in lines) == (level >= am.LogLevel.CHANGES)
        assert ((am.LogLevel.EXTERNAL, "[exter] ext") in lines) == (level >= am.LogLevel.EXTERNAL)


def test_set_log_level_and_logger() -> None:
    """set_log_level / set_logger switch logging at runtime."""
    mach = am.Machine(dict(NO_RELS), log_id=False)
    first: list[str] = []
    second: list[str] = []
    mach.set_logger(lambda lvl, msg: first.append(msg))
    mach.add1("A")
    mach.set_log_level(am.LogLevel.CHANGES)
    mach.add1("B")
    mach.set_logger(lambda lvl, msg: second.append(msg))
    mach.add1("C")
    mach.set_log_level(am.LogLevel.NOTHING)
    mach.add1("D")
    assert first == ["[state] +B"]
    assert second == ["[state] +C"]


def test_no_logs_after_dispose() -> None:
    """A disposed machine logs nothing."""
    mach, lines = logged(am.LogLevel.EXTERNAL)
    mach.dispose()
    lines.clear()
    mach.log("late")
    assert lines == []


def test_default_logger_is_the_machines_stdlib_child(caplog: pytest.LogCaptureFixture) -> None:
    """Without a custom logger, lines go to the stdlib logger ``asyncmachine.<id>`` at INFO."""
    caplog.set_level(logging.INFO, logger="asyncmachine")
    mach = am.Machine(dict(NO_RELS), id="xyz12345", log_level=am.LogLevel.CHANGES)
    mach.add1("A")
    mach.log("hi")
    recs = [r for r in caplog.records if r.name == "asyncmachine.xyz12345"]
    assert [r.getMessage() for r in recs] == ["[xyz12] [state] +A", "[xyz12] [exter] hi"]
    assert all(r.levelno == logging.INFO for r in recs)
    assert logging.getLogger("asyncmachine.xyz12345").parent is logging.getLogger("asyncmachine")


def test_default_logger_without_id(caplog: pytest.LogCaptureFixture) -> None:
    """log_id=False drops the prefix on the stdlib path too."""
    caplog.set_level(logging.INFO, logger="asyncmachine")
    mach = am.Machine(dict(NO_RELS), log_level=am.LogLevel.CHANGES, log_id=False)
    mach.add1("B")
    name = f"asyncmachine.{mach.id}"
    assert [r.getMessage() for r in caplog.records if r.name == name] == ["[state] +B"]
