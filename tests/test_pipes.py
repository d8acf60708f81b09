"""asyncmachine.pipes: states of one machine driving states of another."""

from __future__ import annotations

import asyncio
import gc
import sys
import warnings
from collections.abc import Sequence
from typing import Any

import pytest
from support import no_leaked_tasks  # noqa: F401 (the fixture every test here uses)

import asyncmachine as am
import asyncmachine.helpers as amhelp
from asyncmachine import pipes

St = am.State


pytestmark = pytest.mark.usefixtures("no_leaked_tasks")


def source() -> am.Machine:
    return am.Machine(
        {"Ready": St(), "Connected": St(), "Foo": St(), "Bar": St(), "ErrNetwork": St()},
        id="src",
    )


def target(**extra: am.State) -> am.Machine:
    schema = {
        "Ready": St(),
        "SrcReady": St(),
        "SrcConnected": St(),
        "SrcDisconnected": St(),
        "Foo": St(),
        "Bar": St(),
        "RemoteFoo": St(),
        "RemoteBar": St(),
        "ErrSource": St(require=[am.EXCEPTION]),
    }
    return am.Machine(schema | extra, id="tgt")


def record(mach: am.Machine, *states: str) -> list[tuple[str, dict[str, Any]]]:
    """``(handler name, args)`` of every ``State``/``End`` handler of ``states`` on ``mach``."""
    seen: list[tuple[str, dict[str, Any]]] = []
    handlers = {}
    for state in states:
        for name in (state + "State", state + "End"):
            handlers[name] = lambda e: seen.append((e.name, dict(e.args)))
    mach.bind_handlers(handlers)
    return seen


# --- bind -----------------------------------------------------------------------------------------


def test_bind_mirrors_a_state_with_args() -> None:
    src, tgt = source(), target()
    seen = record(tgt, "SrcReady")
    pipe = pipes.bind(src, tgt, "Ready", "SrcReady")
    src.add1("Ready", {"why": "up"})
    assert tgt.is1("SrcReady")
    src.remove1("Ready", {"why": "down"})
    assert tgt.not1("SrcReady")
    assert seen == [("SrcReadyState", {"why": "up"}), ("SrcReadyEnd", {"why": "down"})]
    assert pipe.binding_id in src.handlers()
    assert not pipe.closed


def test_bind_args_are_copied() -> None:
    """The target gets its own args dict: its handlers cannot change the source's."""
    src, tgt = source(), target()
    tgt.bind_handlers({"ReadyState": lambda e: e.args.update(changed=True)})
    pipes.bind(src, tgt, "Ready", "Ready")
    args: dict[str, Any] = {"n": 1}
    src.add1("Ready", args)
    assert args == {"n": 1}


def test_bind_on_off_switches_two_target_states() -> None:
    """No relations needed in the target: on and off each add one state and remove the other."""
    src, tgt = source(), target()
    pipes.bind(src, tgt, "Connected", "SrcConnected", "SrcDisconnected")
    src.add1("Connected")
    assert tgt.active_states() == ["SrcConnected"]
    src.remove1("Connected")
    assert tgt.active_states() == ["SrcDisconnected"]
    src.add1("Connected")
    assert tgt.active_states() == ["SrcConnected"]


def test_bind_on_off_with_exclusive_target_states() -> None:
    src = source()
    tgt = target(
        SrcConnected=St(remove=["SrcDisconnected"]), SrcDisconnected=St(remove=["SrcConnected"])
    )
    seen = record(tgt, "SrcConnected", "SrcDisconnected")
    pipes.bind(src, tgt, "Connected", "SrcConnected", "SrcDisconnected")
    src.add1("Connected", {"n": 1})
    src.remove1("Connected", {"n": 2})
    assert tgt.active_states() == ["SrcDisconnected"]
    assert seen == [
        ("SrcConnectedState", {"n": 1}),
        ("SrcConnectedEnd", {"n": 2}),  # one transition: exits before enters
        ("SrcDisconnectedState", {"n": 2}),
    ]


def test_target_can_cancel() -> None:
    """The target negotiates as usual; the source's transition is not affected."""
    src, tgt = source(), target()
    tgt.bind_handlers({"SrcReadyEnter": lambda e: False})
    pipes.bind(src, tgt, "Ready", "SrcReady")
    assert src.add1("Ready") == am.Executed
    assert tgt.not1("SrcReady")


def test_bind_both_ways_terminates() -> None:
    one, two = source(), target()
    pipes.bind(one, two, "Foo", "Foo")
    pipes.bind(two, one, "Foo", "Foo")
    one.add1("Foo")
    assert one.is1("Foo") and two.is1("Foo")
    two.remove1("Foo")
    assert one.not1("Foo") and two.not1("Foo")
    assert one.tick("Foo") == two.tick("Foo") == 2


def test_pipe_within_one_machine_is_queued() -> None:
    mach = source()
    pipes.bind(mach, mach, "Foo", "Bar")
    mach.add1("Foo")
    assert mach.is_(["Foo", "Bar"])


def test_bind_ready() -> None:
    src, tgt = source(), target()
    pipes.bind_ready(src, tgt)
    pipes.bind_ready(src, tgt, "Ready", "SrcReady")
    src.add1("Ready")
    assert tgt.is_(["Ready", "SrcReady"])
    src.remove1("Ready")
    assert tgt.not_(["Ready", "SrcReady"])


# --- bind_err -------------------------------------------------------------------------------------


def test_bind_err_pipes_the_error() -> None:
    src, tgt = source(), target()
    pipes.bind_err(src, tgt)
    boom = ValueError("boom")
    src.add_err(boom, {"where": "src"})
    assert tgt.is_err()
    assert tgt.err() is boom
    src.remove1(am.EXCEPTION)
    assert tgt.is_err()  # errors are not removed


def test_bind_err_to_an_error_state() -> None:
    src, tgt = source(), target()
    seen = record(tgt, "ErrSource")
    pipes.bind_err(src, tgt, "ErrSource")
    boom = ConnectionError("down")
    src.add_err(boom)
    assert tgt.is_(["ErrSource", am.EXCEPTION])
    assert tgt.err() is boom
    assert seen[0][0] == "ErrSourceState"
    assert seen[0][1][am.ERR_ARGS_KEY].err is boom


def test_bind_err_handler_errors() -> None:
    """A handler that raises on the source shows up on the target too."""
    src, tgt = source(), target()
    pipes.bind_err(src, tgt)

    def foo_state(e: am.Event) -> None:
        raise KeyError("handler")

    src.bind_handlers({"FooState": foo_state})
    src.add1("Foo")
    assert isinstance(tgt.err(), KeyError)


def test_bind_err_both_ways_does_not_ping_pong() -> None:
    one, two = source(), target()
    pipes.bind_err(one, two)
    pipes.bind_err(two, one)
    boom = ValueError("once")
    one.add_err(boom)
    assert one.err() is two.err() is boom
    assert one.tick(am.EXCEPTION) == two.tick(am.EXCEPTION) == 1
    other = ValueError("twice")
    two.add_err(other)
    assert one.err() is two.err() is other
    assert one.tick(am.EXCEPTION) == two.tick(am.EXCEPTION) == 3


def test_bind_err_without_an_error_object() -> None:
    """Exception added by name carries no error: the target gets Exception the same way."""
    src, tgt = source(), target()
    pipes.bind_err(src, tgt, "ErrSource")
    src.add1(am.EXCEPTION)
    assert tgt.is_(["ErrSource", am.EXCEPTION])
    assert tgt.err() is None


# --- add / remove handlers ------------------------------------------------------------------------


def test_manual_handlers() -> None:
    """The seed's manual piping: ``FooState``/``FooEnd`` built from ``add`` and ``remove``."""
    src, tgt = source(), target()
    src.bind_handlers(
        {
            "FooState": pipes.add(src, tgt, "Foo", "RemoteFoo"),
            "FooEnd": pipes.remove(src, tgt, "Foo", "RemoteFoo"),
            "BarState": pipes.add(src, tgt, "Bar"),
        }
    )
    src.add(["Foo", "Bar"])
    assert tgt.is_(["RemoteFoo", "Bar"])
    src.remove1("Foo")
    assert tgt.not1("RemoteFoo")


def test_add_error_state_carries_the_source_error() -> None:
    """A source error state piped into an ``Err*`` target state adds Exception with the error."""
    src, tgt = source(), target()
    src.bind_handlers({"ErrNetworkState": pipes.add(src, tgt, "ErrNetwork", "ErrSource")})
    boom = ConnectionError("net")
    src.add_err_state("ErrNetwork", boom)
    assert tgt.is_(["ErrSource", am.EXCEPTION])
    assert tgt.err() is boom


def test_err_prefix_needs_a_capital() -> None:
    """``Errand`` is not an error state; ``ErrSource`` is."""
    src = source()
    tgt = target(Errand=St())
    src.bind_handlers({"FooState": pipes.add(src, tgt, "Foo", "Errand")})
    src.add1("Foo")
    assert tgt.active_states() == ["Errand"]


# --- bind_many ------------------------------------------------------------------------------------


def test_bind_many_same_names() -> None:
    src, tgt = source(), target()
    pipe = pipes.bind_many(src, tgt, ["Foo", "Bar"])
    src.add(["Foo", "Bar"], {"k": "v"})
    assert tgt.is_(["Foo", "Bar"])
    src.remove1("Bar")
    assert tgt.active_states() == ["Foo"]
    assert src.handlers().count(pipe.binding_id) == 1  # one binding for all states


def test_bind_many_target_states_and_prefix() -> None:
    src, tgt = source(), target()
    pipes.bind_many(src, tgt, ["Foo", "Bar"], ["RemoteBar", "RemoteFoo"])
    src.add1("Foo")
    assert tgt.active_states() == ["RemoteBar"]
    tgt2 = target()
    pipes.bind_many(src, tgt2, ["Ready", "Connected"], prefix="Src")
    src.add(["Ready", "Connected"])
    assert tgt2.is_(["SrcReady", "SrcConnected"])


def test_bind_many_bad_input() -> None:
    src, tgt = source(), target()
    with pytest.raises(TypeError):
        pipes.bind_many(src, tgt, "Foo")
    with pytest.raises(ValueError, match="at least one"):
        pipes.bind_many(src, tgt, [])
    with pytest.raises(ValueError, match="duplicate"):
        pipes.bind_many(src, tgt, ["Foo", "Foo"])
    with pytest.raises(ValueError, match="one target state per state"):
        pipes.bind_many(src, tgt, ["Foo", "Bar"], ["Foo"])
    with pytest.raises(ValueError, match="not both"):
        pipes.bind_many(src, tgt, ["Foo"], ["Foo"], prefix="Src")
    with pytest.raises(am.StateMissingError):
        pipes.bind_many(src, tgt, ["Foo"], prefix="Nope")
    assert src.handlers() == []


def test_bad_input() -> None:
    src, tgt = source(), target()
    with pytest.raises(am.StateMissingError, match="src"):
        pipes.bind(src, tgt, "Nope", "Foo")
    with pytest.raises(am.StateMissingError, match="tgt"):
        pipes.bind(src, tgt, "Foo", "Nope")
    with pytest.raises(am.StateMissingError, match="tgt"):
        pipes.bind(src, tgt, "Foo", "Foo", "Nope")
    with pytest.raises(am.StateMissingError):
        pipes.add(src, tgt, "Connected")  # the same name on a target without it
    with pytest.raises(ValueError, match="both"):
        pipes.bind(src, tgt, "Foo", "Foo", "Foo")
    assert src.handlers() == []


# --- lifetime -------------------------------------------------------------------------------------


def test_close_detaches() -> None:
    src, tgt = source(), target()
    pipe = pipes.bind(src, tgt, "Foo", "Foo")
    pipe.close()
    assert pipe.closed
    assert src.handlers() == []
    src.add1("Foo")
    assert tgt.not1("Foo")
    pipe.close()  # idempotent
    tgt.dispose()  # no callback left to run
    assert "closed" in repr(pipe)


def test_target_disposed_closes_the_pipe() -> None:
    src, tgt = source(), target()
    pipe = pipes.bind(src, tgt, "Foo", "Foo")
    err_pipe = pipes.bind_err(src, tgt)
    tgt.dispose()
    assert pipe.closed and err_pipe.closed
    assert src.handlers() == []
    assert src.add1("Foo") == am.Executed


def test_source_disposed_closes_the_pipe() -> None:
    src, tgt = source(), target()
    pipe = pipes.bind(src, tgt, "Foo", "Foo")
    src.dispose()
    assert pipe.closed
    assert tgt.add1("Foo") == am.Executed


def test_no_pipe_from_or_to_a_disposed_machine() -> None:
    src, tgt = source(), target()
    tgt.dispose()
    with pytest.raises(ValueError, match="target machine tgt is disposed"):
        pipes.bind(src, tgt, "Foo", "Foo")
    with pytest.raises(ValueError, match="source machine src is disposed"):
        src.dispose()
        pipes.bind(src, target(), "Foo", "Foo")


# --- async targets (remote machines) --------------------------------------------------------------


class AsyncTarget:
    """Stands in for a remote machine: a local machine behind ``async`` mutations, each taking
    one loop step like a round trip. ``log`` shows when each delivery started and ended."""

    def __init__(self, mach: am.Machine, fail: BaseException | None = None) -> None:
        self.mach = mach
        self.fail = fail
        self.log: list[str] = []

    @property
    def id(self) -> str:
        return self.mach.id

    def state_names(self) -> list[str]:
        return self.mach.state_names()

    def when_disposed(self) -> am.Waiter:
        return self.mach.when_disposed()

    def is_(self, states: Sequence[str]) -> bool:
        return self.mach.is_(states)

    def err(self) -> BaseException | None:
        return self.mach.err()

    async def _call(self, name: str, *args: Any) -> am.Result:
        self.log.append(f"start {name} {args[0]}")
        await asyncio.sleep(0)
        if self.fail is not None:
            raise self.fail
        res: am.Result = getattr(self.mach, name)(*args)
        self.log.append(f"end {name}")
        return res

    async def add(self, states: Sequence[str], args: dict[str, Any] | None = None) -> am.Result:
        return await self._call("add", list(states), args)

    async def remove(self, states: Sequence[str], args: dict[str, Any] | None = None) -> am.Result:
        return await self._call("remove", list(states), args)

    async def add_err_state(
        self, state: str, err: BaseException | None, args: dict[str, Any] | None = None
    ) -> am.Result:
        return await self._call("add_err_state", state, err, args)


async def test_async_target_gets_mutations_in_order() -> None:
    src, tgt = source(), target()
    remote = AsyncTarget(tgt)
    seen = record(tgt, "Foo")
    pipes.bind(src, remote, "Foo", "Foo")
    src.add1("Foo", {"n": 1})
    src.remove1("Foo", {"n": 2})
    src.add1("Foo", {"n": 3})
    assert tgt.not1("Foo")  # nothing delivered yet: the source never waits
    await tgt.when_ticks("Foo", 3)
    assert remote.log == [
        "start add ['Foo']",
        "end add",
        "start remove ['Foo']",
        "end remove",
        "start add ['Foo']",
        "end add",
    ]
    assert [args["n"] for _, args in seen] == [1, 2, 3]


async def test_async_target_right_after_a_delivery() -> None:
    """A mutation piped just as the previous delivery finished still goes out."""
    src, tgt = source(), target()
    pipes.bind(src, AsyncTarget(tgt), "Foo", "Foo")
    src.add1("Foo")
    await tgt.when1("Foo")  # resumes right after the delivery's last step
    src.remove1("Foo")
    await amhelp.wait_for_all(1, tgt.when_not1("Foo"))


async def test_async_target_errors() -> None:
    src, tgt = source(), target()
    down = ConnectionError("remote down")
    pipes.bind_err(src, AsyncTarget(tgt))
    boom = ValueError("boom")
    src.add_err(boom)
    await tgt.when_err()
    assert tgt.err() is boom

    failing = AsyncTarget(target(), fail=down)
    pipes.bind(src, failing, "Foo", "Foo")
    src.add1("Foo")
    await src.when_next_active(am.EXCEPTION)
    assert src.err() is down


async def test_async_target_disposed_drops_pending() -> None:
    src, tgt = source(), target()
    remote = AsyncTarget(tgt)
    pipe = pipes.bind(src, remote, "Foo", "Foo")
    before = asyncio.all_tasks()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        src.add1("Foo")
        src.remove1("Foo")
        tgt.dispose()
        await asyncio.wait(asyncio.all_tasks() - before)  # the cancelled delivery task
        gc.collect()
    assert caught == []  # no coroutine left never awaited
    assert pipe.closed
    assert remote.log == []


@pytest.mark.skipif(sys.platform == "emscripten", reason="Pyodide's loop is always running")
def test_async_target_needs_a_running_loop() -> None:
    src = source()
    pipes.bind(src, AsyncTarget(target()), "Foo", "Foo")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        src.add1("Foo")
        err = src.err()
        assert isinstance(err, RuntimeError)
        assert "running event loop" in str(err)
        del src, err  # the error's traceback holds the coroutine the pipe made
        gc.collect()
    assert caught == []  # it was closed, not left never awaited
