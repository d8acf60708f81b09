"""Logging: levels, sinks, the id prefix and the line formats (docs/semantics.md#logging)."""

from __future__ import annotations

import asyncio
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
    """LogLevel values 0-5 in their documented order."""
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


def test_full_id_prefix() -> None:
    """log_id="full" prefixes the whole id; anything else than True, False or "full" is refused."""
    mach, lines = logged(am.LogLevel.CHANGES, id="abcdefgh", log_id="full")
    mach.add1("A")
    assert msgs(lines) == ["[abcdefgh] [state] +A"]
    with pytest.raises(ValueError, match="log_id"):
        am.Machine(dict(NO_RELS), log_id="short")


def test_queue_line_for_every_mutation() -> None:
    """At OPS every mutation logs `[queue:<type>]` on entering the queue, also one that runs at
    once on an idle machine, before its `[add]` line."""
    mach, lines = logged(am.LogLevel.OPS)
    mach.set_args_mapper(am.new_log_args_mapper(names=["name"]))

    def a_state(e: am.Event) -> None:
        e.machine.remove1("B")

    mach.bind_handlers(SimpleNamespace(AState=a_state))
    mach.add1("B")
    mach.add1("A", {"name": "x"})
    got = [m for m in msgs(lines) if m.startswith(("[queue:", "[add]", "[remove]"))]
    assert got == [
        "[queue:add] B",
        "[add] B",
        "[queue:add] A (name=x)",
        "[add] A (name=x)",
        "[queue:remove] B",
        "[remove] B",
    ]


def raising_handlers() -> SimpleNamespace:
    def a_state(e: am.Event) -> None:
        raise ValueError("boom")

    return SimpleNamespace(AState=a_state)


def test_handler_error_is_logged_at_error_by_default(caplog: pytest.LogCaptureFixture) -> None:
    """With the default stdlib sink a handler error is logged at ERROR even at LogLevel.NOTHING,
    with its traceback, on the machine's own logger."""
    mach = am.Machine(dict(NO_RELS), id="err12345")
    mach.bind_handlers(raising_handlers())
    with caplog.at_level(logging.INFO, logger="asyncmachine"):
        assert mach.add(["A", "B"]) == am.Canceled
    recs = [r for r in caplog.records if r.name == "asyncmachine.err12345"]
    assert len(recs) == 1
    assert recs[0].levelno == logging.ERROR
    msg = recs[0].getMessage()
    assert msg.startswith("[err12] [error:add] A B (boom)\nTraceback")
    assert 'raise ValueError("boom")' in msg
    assert mach.is_err()


def test_custom_logger_gets_handler_errors_by_its_level() -> None:
    """A custom logger chose its level: at NOTHING it gets nothing, at CHANGES the error line."""
    mach, lines = logged(am.LogLevel.NOTHING)
    mach.bind_handlers(raising_handlers())
    mach.add1("A")
    assert lines == []
    mach, lines = logged(am.LogLevel.CHANGES)
    mach.bind_handlers(raising_handlers())
    mach.add1("A")
    errors = [(lvl, m) for lvl, m in lines if m.startswith("[error")]
    assert len(errors) == 1
    assert errors[0][0] == am.LogLevel.CHANGES
    assert errors[0][1].startswith("[error:add] A (boom)\n")


def test_exception_handler_does_not_log_a_handler_error_twice() -> None:
    """ExceptionHandler logs add_err() errors; a handler error is already logged once."""
    mach, lines = logged(am.LogLevel.CHANGES)

    class Handlers(am.ExceptionHandler):
        def AState(self, e: am.Event) -> None:
            raise ValueError("boom")

    mach.bind_handlers(Handlers())
    mach.add1("A")
    mach.add_err(KeyError("by hand"))
    errors = [m.split("\n")[0] for m in msgs(lines) if m.startswith("[error")]
    assert errors == ["[error:add] A (boom)", "[error] 'by hand'"]


async def test_task_error_is_logged(caplog: pytest.LogCaptureFixture) -> None:
    """An exception escaping a forked task (or an async final handler) is logged at ERROR and
    becomes Exception."""
    mach = am.Machine(dict(NO_RELS), id="task1234")

    async def failing() -> None:
        raise RuntimeError("task broke")

    with caplog.at_level(logging.INFO, logger="asyncmachine"):
        task = mach.fork(mach.ctx, failing())
        assert task is not None
        await asyncio.wait([task])
        await asyncio.sleep(0)
    recs = [r for r in caplog.records if r.name == "asyncmachine.task1234"]
    assert [r.levelno for r in recs] == [logging.ERROR]
    assert "[error:task]" in recs[0].getMessage() and "task broke" in recs[0].getMessage()
    assert mach.is_err() and isinstance(mach.err(), RuntimeError)


def test_tracer_error_is_logged_not_raised(caplog: pytest.LogCaptureFixture) -> None:
    class Broken(am.Tracer):
        def transition_end(self, tx: am.Transition) -> None:
            raise RuntimeError("tracer broke")

    mach = am.Machine(dict(NO_RELS), id="trc12345", tracers=[Broken()])
    with caplog.at_level(logging.INFO, logger="asyncmachine"):
        assert mach.add1("A") == am.Executed
    recs = [r for r in caplog.records if r.name == "asyncmachine.trc12345"]
    assert [r.levelno for r in recs] == [logging.ERROR]
    assert "[error:tracer] Broken.transition_end raised RuntimeError" in recs[0].getMessage()
