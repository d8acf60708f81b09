"""The state mixins (upstream's pkg/states): Basic, Connected and Disposed, composed and walked
through their flows."""

from __future__ import annotations

import asyncio

import pytest

import asyncmachine as am
from asyncmachine.states import (
    DISPOSED_ARG_HANDLER,
    BasicSchema,
    BasicStates,
    ConnectedSchema,
    ConnectedStates,
    DisposedHandlers,
    DisposedSchema,
    DisposedStates,
)

ssB = BasicStates
ssC = ConnectedStates
ssD = DisposedStates


class AppStates(BasicStates, ConnectedStates):
    Foo: str


def logged(schema: am.Schema) -> tuple[am.Machine, list[str]]:
    lines: list[str] = []
    mach = am.Machine(
        schema,
        log_level=am.LogLevel.CHANGES,
        log_id=False,
        logger=lambda _, msg: lines.append(msg),
    )
    return mach, lines


# --- typed state sets and schemas --------------------------------------------------------------


def test_mixin_state_names() -> None:
    assert BasicStates.names() == [
        "Exception",
        "ErrNetwork",
        "ErrHandlerTimeout",
        "Start",
        "Ready",
        "Healthcheck",
        "Heartbeat",
    ]
    assert ConnectedStates.names() == [
        "Exception",
        "Connecting",
        "Connected",
        "Disconnecting",
        "Disconnected",
        "ErrConnecting",
    ]
    assert DisposedStates.names() == ["Exception", "RegisterDisposal", "Disposing", "Disposed"]
    assert ssB.Start == "Start" and ssC.Connected == "Connected" and ssD.Disposed == "Disposed"


def test_each_schema_defines_exactly_its_states() -> None:
    assert list(BasicSchema) == BasicStates.names()
    assert list(ConnectedSchema) == ConnectedStates.names()[1:]
    assert list(DisposedSchema) == DisposedStates.names()[1:]


def test_basic_schema_relations() -> None:
    assert BasicSchema[ssB.Exception] == am.State(multi=True)
    err = am.State(multi=True, add=("Exception",), require=("Exception",))
    assert BasicSchema[ssB.ErrNetwork] == err
    assert BasicSchema[ssB.ErrHandlerTimeout] == err
    assert BasicSchema[ssB.Ready] == am.State(require=("Start",))
    assert BasicSchema[ssB.Healthcheck].multi


def test_composed_by_inheritance_and_schema_merge() -> None:
    """A user's state set inherits the mixins' names; the schemas merge with schema_merge."""
    schema = am.schema_merge(BasicSchema, ConnectedSchema, {AppStates.Foo: am.State()})
    assert set(AppStates.names()) == {*BasicStates.names(), *ConnectedStates.names(), "Foo"}
    assert AppStates.names()[-1] == "Foo"
    mach = am.Machine(schema)
    mach.verify_states(AppStates.names())
    assert mach.state_names() == AppStates.names()
    mach.add([AppStates.Start, AppStates.Foo])
    assert mach.is_([AppStates.Start, AppStates.Disconnected, AppStates.Foo])


def test_err_network_adds_exception() -> None:
    mach = am.Machine(BasicSchema)
    assert mach.add_err_state(ssB.ErrNetwork, ConnectionError("down")) == am.Executed
    assert mach.string() == "(ErrNetwork:1 Exception:1)"
    assert isinstance(mach.err(), ConnectionError)
    assert mach.add1(ssB.Ready) == am.Canceled  # Ready requires Start
    mach.add(["Start", "Ready"])
    assert mach.is_(["Start", "Ready"])


# --- the Connected flow (upstream's pkg/states) ---------------------------------------------------


def test_connected_flow() -> None:
    """Start brings Disconnected (auto); the four phases exclude each other; Start's removal
    drops the connection through Require and Disconnected comes back."""
    mach = am.Machine(am.schema_merge(BasicSchema, ConnectedSchema))
    rest = (
        "Disconnecting:0 ErrConnecting:0 ErrHandlerTimeout:0 ErrNetwork:0 Exception:0 "
        "Healthcheck:0 Heartbeat:0 Ready:0"
    )

    assert mach.add1(ssC.Connecting) == am.Canceled  # requires Start
    assert mach.add1(ssB.Start) == am.Executed
    assert mach.string_all() == f"(Disconnected:1 Start:1) [Connected:0 Connecting:0 {rest}]"
    mach.add1(ssC.Connecting)
    assert mach.string_all() == f"(Connecting:1 Start:1) [Connected:0 Disconnected:2 {rest}]"
    mach.add1(ssC.Connected)
    assert mach.string_all() == f"(Connected:1 Start:1) [Connecting:2 Disconnected:2 {rest}]"
    mach.remove1(ssC.Connected)
    assert mach.string_all() == f"(Disconnected:3 Start:1) [Connected:2 Connecting:2 {rest}]"
    mach.add1(ssC.Connected)
    assert mach.string_all() == f"(Connected:3 Start:1) [Connecting:2 Disconnected:4 {rest}]"
    mach.remove1(ssB.Start)
    assert mach.string_all() == f"(Disconnected:5) [Connected:4 Connecting:2 {rest} Start:2]"


def test_connected_disconnecting_phase() -> None:
    mach = am.Machine(am.schema_merge(BasicSchema, ConnectedSchema))
    mach.add([ssB.Start, ssC.Connected])
    mach.add1(ssC.Disconnecting)
    assert mach.string() == "(Disconnecting:1 Start:1)"
    mach.remove1(ssC.Disconnecting)
    assert mach.string() == "(Disconnected:1 Start:1)"  # never active before
    assert mach.add1(ssC.ErrConnecting) == am.Canceled  # requires Exception
    mach.add_err_state(ssC.ErrConnecting, ConnectionRefusedError())
    assert mach.is_([ssC.ErrConnecting, "Exception", ssC.Disconnected])


# --- the Disposed flow -------------------------------------------------------------------------


def disposed_machine() -> tuple[am.Machine, DisposedHandlers, list[str]]:
    mach, lines = logged(am.schema_merge(BasicSchema, DisposedSchema))
    handlers = DisposedHandlers()
    mach.bind_handlers(handlers)
    return mach, handlers, lines


def test_disposed_flow_sync() -> None:
    """RegisterDisposal collects; Disposing runs the disposers in order, then Disposed disposes.

    With sync disposers only, the whole flow runs inside the mutation: no event loop needed.
    """
    mach, handlers, lines = disposed_machine()
    calls: list[tuple[str, str, bool]] = []

    def close_db(mach_id: str, ctx: am.Ctx) -> None:
        calls.append(("db", mach_id, ctx.done()))

    def close_files(mach_id: str, ctx: am.Ctx) -> None:
        calls.append(("files", mach_id, ctx.done()))

    mach.add1(ssB.Start)
    assert mach.add1(ssD.RegisterDisposal, {DISPOSED_ARG_HANDLER: close_db}) == am.Executed
    mach.add1(ssD.RegisterDisposal, {DISPOSED_ARG_HANDLER: close_files})
    assert handlers.disposers == [close_db, close_files]
    assert mach.string() == "(RegisterDisposal:3 Start:1)"
    disposed = mach.when_disposed()

    assert mach.add1(ssD.Disposing) == am.Executed
    assert calls == [("db", mach.id, False), ("files", mach.id, False)]
    assert mach.is_disposed and disposed.done()
    assert lines == [
        "[state] +Start",
        "[state] +RegisterDisposal",
        "[state] +RegisterDisposal",
        "[state] +Disposing -Start",
        "[state] +Disposed -Disposing",
    ]


def test_register_disposal_needs_a_callable() -> None:
    mach, handlers, _ = disposed_machine()
    assert mach.can_add1(ssD.RegisterDisposal) == am.Canceled
    assert not mach.is_err()  # a check mutation reports nothing
    assert mach.add1(ssD.RegisterDisposal, {DISPOSED_ARG_HANDLER: "close"}) == am.Canceled
    assert isinstance(mach.err(), TypeError)
    assert DISPOSED_ARG_HANDLER in str(mach.err())
    assert handlers.disposers == []


def test_failing_disposer_does_not_stop_disposal() -> None:
    mach, _, _ = disposed_machine()
    calls: list[str] = []

    def broken(mach_id: str, ctx: am.Ctx) -> None:
        raise OSError("disk gone")

    mach.add1(ssD.RegisterDisposal, {DISPOSED_ARG_HANDLER: broken})
    mach.add1(ssD.RegisterDisposal, {DISPOSED_ARG_HANDLER: lambda *_: calls.append("next")})
    mach.add1(ssD.Disposing)
    assert calls == ["next"]
    assert isinstance(mach.err(), OSError)
    assert mach.is_disposed


def test_sync_disposer_returning_an_awaitable_is_an_error() -> None:
    """A plain function that returns a coroutine is refused (and the coroutine closed)."""
    mach, _, _ = disposed_machine()

    async def release() -> None: ...

    mach.add1(ssD.RegisterDisposal, {DISPOSED_ARG_HANDLER: lambda *_: release()})
    mach.add1(ssD.Disposing)
    assert isinstance(mach.err(), TypeError)
    assert "async def" in str(mach.err())
    assert mach.is_disposed


async def test_disposed_flow_async() -> None:
    """An async disposer moves disposal into a task; sync and async ones keep their order."""
    mach, _, lines = disposed_machine()
    calls: list[str] = []
    released = asyncio.Event()

    async def close_conn(mach_id: str, ctx: am.Ctx) -> None:
        calls.append("conn:start")
        await released.wait()
        calls.append("conn:end")

    mach.add1(ssB.Start)
    mach.add1(ssD.RegisterDisposal, {DISPOSED_ARG_HANDLER: lambda *_: calls.append("first")})
    mach.add1(ssD.RegisterDisposal, {DISPOSED_ARG_HANDLER: close_conn})
    mach.add1(ssD.RegisterDisposal, {DISPOSED_ARG_HANDLER: lambda *_: calls.append("last")})

    mach.add1(ssD.Disposing)
    assert mach.string() == "(Disposing:1 RegisterDisposal:5)"
    await asyncio.sleep(0)
    assert calls == ["first", "conn:start"]
    released.set()
    await asyncio.wait_for(mach.when_disposed(), 1)
    assert calls == ["first", "conn:start", "conn:end", "last"]
    assert lines[-2:] == ["[state] +Disposing -Start", "[state] +Disposed -Disposing"]


async def test_removing_disposing_abandons_async_disposal() -> None:
    mach, _, _ = disposed_machine()
    cancelled = asyncio.Event()
    calls: list[str] = []

    async def slow(mach_id: str, ctx: am.Ctx) -> None:
        try:
            await asyncio.Event().wait()
        except asyncio.CancelledError:
            cancelled.set()
            raise

    mach.add1(ssD.RegisterDisposal, {DISPOSED_ARG_HANDLER: slow})
    mach.add1(ssD.RegisterDisposal, {DISPOSED_ARG_HANDLER: lambda *_: calls.append("next")})
    mach.add1(ssD.Disposing)
    await asyncio.sleep(0)
    mach.remove1(ssD.Disposing)
    await asyncio.wait_for(cancelled.wait(), 1)
    await asyncio.sleep(0)
    assert calls == []
    assert not mach.is_disposed
    assert mach.not1(ssD.Disposed)


async def test_async_disposer_error_is_reported() -> None:
    mach, _, _ = disposed_machine()

    async def broken(mach_id: str, ctx: am.Ctx) -> None:
        raise OSError("socket gone")

    mach.add1(ssD.RegisterDisposal, {DISPOSED_ARG_HANDLER: broken})
    mach.add1(ssD.Disposing)
    await asyncio.wait_for(mach.when_disposed(), 1)
    assert isinstance(mach.err(), OSError)


def test_disposed_handlers_need_the_disposed_states() -> None:
    mach = am.Machine(BasicSchema)
    with pytest.raises(am.HandlerError, match="missing states"):
        mach.bind_handlers(DisposedHandlers())
