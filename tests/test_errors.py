"""Errors: add_err, add_err_state, err(), on_error, ErrArgs and the ExceptionHandler mixin
(docs/semantics.md#errors)."""

from __future__ import annotations

import asyncio
from types import SimpleNamespace

import pytest

import asyncmachine as am

St = am.State
NO_RELS = {"A": St(), "B": St(), "C": St(), "D": St()}


def mk(**kw: object) -> am.Machine:
    """A NoRels machine (A B C D)."""
    return am.Machine(dict(NO_RELS), **kw)  # type: ignore[arg-type]


def args_recorder(seen: list[tuple[str, dict[str, object]]], *names: str) -> SimpleNamespace:
    """Handler object keeping (handler name, a copy of e.args) for each call."""
    obj = SimpleNamespace()
    for name in names:

        def h(e: am.Event, _n: str = name) -> None:
            seen.append((_n, dict(e.args)))

        setattr(obj, name, h)
    return obj


def test_add_err_activates_exception_and_stores_err() -> None:
    """add_err = Add(Exception) with the error stored for err()."""
    mach = mk()
    assert mach.err() is None
    assert not mach.is_err()
    err = ValueError("boom")
    assert mach.add_err(err) == am.Executed
    assert mach.is_err()
    assert mach.err() is err
    assert mach.string_all() == "(Exception:1) [A:0 B:0 C:0 D:0]"


def test_err_args_in_transition_args() -> None:
    """The args carry ErrArgs under ERR_ARGS_KEY, merged with the caller's args."""
    mach = mk()
    seen: list[tuple[str, dict[str, object]]] = []
    mach.bind_handlers(args_recorder(seen, "ExceptionState"))
    err = KeyError("k")
    mach.add_err(err, {"extra": 7})
    assert [name for name, _ in seen] == ["ExceptionState"]
    args = seen[0][1]
    assert args["extra"] == 7
    ea = args[am.ERR_ARGS_KEY]
    assert isinstance(ea, am.ErrArgs)
    assert ea.err is err


def test_add_err_state() -> None:
    """TestAddErr: AddErrState(B, err) activates B and Exception; both handlers see the args."""
    mach = mk()
    seen: list[tuple[str, dict[str, object]]] = []
    mach.bind_handlers(args_recorder(seen, "BState", "ExceptionState"))
    err = RuntimeError("b failed")
    assert mach.add_err_state("B", err) == am.Executed
    assert mach.string_all() == "(B:1 Exception:1) [A:0 C:0 D:0]"
    assert mach.err() is err
    assert sorted(name for name, _ in seen) == ["BState", "ExceptionState"]
    for _, args in seen:
        assert args[am.ERR_ARGS_KEY].err is err


def test_add_err_state_unknown_state_raises() -> None:
    """Unknown state names raise from every mutation."""
    mach = mk()
    with pytest.raises(am.StateMissingError):
        mach.add_err_state("Nope", ValueError("x"))


def test_err_survives_removal_of_exception() -> None:
    """err() returns the last error even after Exception is removed; is_err() follows the state."""
    mach = mk()
    err = ValueError("x")
    mach.add_err(err)
    assert mach.remove1("Exception") == am.Executed
    assert not mach.is_err()
    assert mach.err() is err
    assert mach.string_all() == "() [A:0 B:0 C:0 D:0 Exception:2]"


def test_add_err_is_never_de_duplicated() -> None:
    """Its args are never empty, so two add_err calls from a handler queue two mutations."""
    mach = mk()
    results: list[int] = []

    def a_state(e: am.Event) -> None:
        results.append(e.machine.add_err(ValueError("1")))
        results.append(e.machine.add_err(ValueError("2")))

    mach.bind_handlers(SimpleNamespace(AState=a_state))
    mach.add1("A")
    assert results == [3, 4]
    assert mach.string_all() == "(A:1 Exception:3) [B:0 C:0 D:0]"
    assert str(mach.err()) == "2"


def test_on_error_called_before_exception_added() -> None:
    """on_error(fn(mach, err)) runs inside add_err_state, before the Add."""
    mach = mk()
    seen: list[tuple[am.Machine, BaseException, bool]] = []
    mach.on_error(lambda m, err: seen.append((m, err, m.is_err())))
    e1 = ValueError("1")
    e2 = ValueError("2")
    mach.add_err(e1)
    mach.add_err_state("C", e2)
    assert seen == [(mach, e1, False), (mach, e2, True)]


@pytest.mark.parametrize("err", [None, asyncio.CancelledError()])
def test_add_err_none_or_cancelled_is_canceled(err: BaseException | None) -> None:
    """add_err(None) and add_err(CancelledError()) do nothing and return Canceled."""
    mach = mk()
    called: list[object] = []
    mach.on_error(lambda m, e: called.append(e))
    assert mach.add_err(err) == am.Canceled  # type: ignore[arg-type]
    assert mach.add_err_state("A", err) == am.Canceled  # type: ignore[arg-type]
    assert not mach.is_err()
    assert mach.err() is None
    assert called == []
    assert mach.string_all() == "() [A:0 B:0 C:0 D:0 Exception:0]"


def test_handler_exception_becomes_exception_state() -> None:
    """TestPartialNegotiationPanic: BEnter raises -> Canceled, Exception added with ErrArgs."""
    mach = mk()
    mach.add1("A")
    seen: list[tuple[str, dict[str, object]]] = []
    boom = ValueError("boom")

    def b_enter(e: am.Event) -> None:
        raise boom

    obj = args_recorder(seen, "ExceptionState")
    obj.BEnter = b_enter
    mach.bind_handlers(obj)
    assert mach.add1("B") == am.Canceled
    assert mach.string_all() == "(A:1 Exception:1) [B:0 C:0 D:0]"
    assert mach.err() is boom
    ea = seen[0][1][am.ERR_ARGS_KEY]
    assert isinstance(ea, am.ErrArgs)
    assert ea.err is boom
    assert isinstance(ea.trace, str)
    assert "boom" in ea.trace


def test_panic_to_exception_off_propagates() -> None:
    """With panic_to_exception=False the handler's exception reaches the caller."""
    mach = mk(panic_to_exception=False)

    def a_enter(e: am.Event) -> None:
        raise ZeroDivisionError("nope")

    mach.bind_handlers(SimpleNamespace(AEnter=a_enter))
    with pytest.raises(ZeroDivisionError):
        mach.add1("A")
    assert not mach.is1("A")


def test_err_state_requiring_exception_pattern() -> None:
    """ErrNet{Require:[Exception]} goes away when Exception is removed."""
    mach = am.Machine({"ErrNet": St(require=("Exception",))})
    assert mach.add_err_state("ErrNet", OSError("down")) == am.Executed
    assert mach.string_all() == "(ErrNet:1 Exception:1) []"
    assert mach.remove1("Exception") == am.Executed
    assert mach.string_all() == "() [ErrNet:2 Exception:2]"


def test_err_state_adding_exception_without_explicit_exception() -> None:
    """Add:[Exception] works although the schema doesn't declare Exception."""
    mach = am.Machine({"ErrX": St(multi=True, add=("Exception",), require=("Exception",))})
    assert mach.add1("ErrX") == am.Executed
    assert mach.string_all() == "(ErrX:1 Exception:1) []"


def test_exception_handler_mixin_logs_error() -> None:
    """ExceptionHandler.ExceptionState logs `[error] <msg>` at CHANGES."""
    lines: list[tuple[am.LogLevel, str]] = []
    mach = mk(
        log_level=am.LogLevel.CHANGES,
        logger=lambda lvl, msg: lines.append((lvl, msg)),
        log_id=False,
    )

    class Handlers(am.ExceptionHandler):
        pass

    mach.bind_handlers(Handlers())
    lines.clear()
    mach.add_err(ValueError("disk full"))
    errs = [(lvl, msg) for lvl, msg in lines if msg.startswith("[error")]
    assert errs, lines
    lvl, msg = errs[0]
    assert lvl == am.LogLevel.CHANGES
    assert msg.startswith("[error] ")
    assert "disk full" in msg
    assert "[state] +Exception" in [m for _, m in lines]


def test_exception_handler_mixin_logs_handler_panic() -> None:
    """A final-handler panic is logged as `[error:add] A B C (<err>)`."""
    lines: list[str] = []
    mach = mk(
        log_level=am.LogLevel.CHANGES, logger=lambda lvl, msg: lines.append(msg), log_id=False
    )

    class Handlers(am.ExceptionHandler):
        def BState(self, e: am.Event) -> None:
            raise RuntimeError("BState panic")

    mach.bind_handlers(Handlers())
    assert mach.add(["A", "B", "C"]) == am.Canceled
    assert mach.string_all() == "(A:1 Exception:1) [B:2 C:2 D:0]"
    errs = [m for m in lines if m.startswith("[error:add] A B C")]
    assert errs, lines
    assert "BState panic" in errs[0]
