"""The core contract: exported names, Machine methods and properties, basic object shapes."""

from __future__ import annotations

import asyncio
import enum
import importlib
import inspect
import re
from pathlib import Path
from types import SimpleNamespace

import pytest

import asyncmachine as am
from asyncmachine._bridge import MUTATIONS

CORE_NAMES = [
    # Schema and states
    "State",
    "Schema",
    "S",
    "A",
    "schema_merge",
    "s_add",
    "schema_from_dict",
    "schema_to_dict",
    "StatesBase",
    "EXCEPTION",
    # The machine
    "Machine",
    "Result",
    "Executed",
    "Canceled",
    "Queued",
    "StateMissingError",
    "NestedEvalError",
    "Time",
    "is_active_tick",
    # Handlers
    "Event",
    "Transition",
    "Mutation",
    "MutationType",
    "ExceptionHandler",
    # Errors
    "ERR_ARGS_KEY",
    "ErrArgs",
    "AsyncMachineError",
    "SchemaError",
    "HandlerError",
    "HandlerTimeoutError",
    # Subscriptions, contexts
    "Waiter",
    "Ctx",
    # Logging, tracers, breakpoints, lifecycle
    "LogLevel",
    "Tracer",
]

MACHINE_METHODS = [
    # mutations: the bridge's method table lists them once
    *MUTATIONS,
    "add_err",
    "add_err_state",
    "can_add",
    "can_add1",
    "can_remove",
    "can_remove1",
    "eval",
    # checking and reading
    "is_",
    "is1",
    "not_",
    "not1",
    "any",
    "any1",
    "has",
    "has1",
    "switch",
    "active_states",
    "state_names",
    "index1",
    "index",
    "tick",
    "time",
    "clock",
    "is_time",
    "is_clock",
    "queue_tick",
    "machine_tick",
    "queue_len",
    "is_err",
    "err",
    "string",
    "string_all",
    "inspect",
    "verify_states",
    "will_be",
    "will_be1",
    "will_be_removed",
    "will_be_removed1",
    # handlers and errors
    "bind_handlers",
    "detach_handlers",
    "handlers",
    "on_error",
    # subscriptions
    "when",
    "when1",
    "when_not",
    "when_not1",
    "when_args",
    "when_time",
    "when_time1",
    "when_ticks",
    "when_query",
    "when_err",
    "when_queue",
    "when_queue_ends",
    "when_disposed",
    "when_next_active",
    # contexts and tasks
    "new_state_ctx",
    "fork",
    # logging, tracers, breakpoints, lifecycle
    "set_log_level",
    "set_logger",
    "log",
    "bind_tracer",
    "detach_tracer",
    "add_breakpoint",
    "dispose",
    "on_dispose",
    "export",
    "import_data",
]

MACHINE_PROPERTIES = [
    "id",
    "parent_id",
    "tags",
    "schema",
    "ctx",
    "is_disposed",
    "states_verified",
    "transition",
]


@pytest.mark.parametrize("name", CORE_NAMES)
def test_core_name_exported(name: str) -> None:
    """Every core name is importable from asyncmachine and listed in __all__."""
    assert hasattr(am, name)
    assert name in am.__all__


def test_all_names_resolve() -> None:
    """Nothing in __all__ is dangling."""
    for name in am.__all__:
        assert hasattr(am, name), name


@pytest.mark.parametrize("name", MACHINE_METHODS)
def test_machine_method_callable(name: str) -> None:
    """Every Machine method of the public API exists on an instance and is callable."""
    mach = am.Machine({"A": am.State()})
    assert callable(getattr(mach, name))


def test_machine_properties() -> None:
    """Properties are plain values, not methods."""
    mach = am.Machine({"A": am.State()}, tags=("x", "x", "y:1"))
    for name in MACHINE_PROPERTIES:
        assert not callable(getattr(mach, name)) or name == "ctx", name
    assert re.fullmatch(r"[0-9a-f]{16}", mach.id)
    assert mach.parent_id is None
    assert list(mach.tags) == ["x", "y:1"]
    assert isinstance(mach.ctx, am.Ctx)
    assert mach.is_disposed is False
    assert mach.states_verified is False
    assert mach.transition is None
    assert am.Machine({"A": am.State()}, id="given").id == "given"


def test_schema_property_is_a_parsed_copy() -> None:
    """mach.schema is a copy after parsing (Exception added, self-removes dropped)."""
    mach = am.Machine({"A": am.State(remove=("A", "B")), "B": am.State()})
    schema = mach.schema
    assert set(schema) == {"A", "B", "Exception"}
    assert schema["A"].remove == ("B",)
    assert schema["Exception"].multi is True
    schema["C"] = am.State()
    assert "C" not in mach.schema


def test_exception_hierarchy() -> None:
    """Errors share a base; StateMissingError is a KeyError."""
    for cls in (
        am.StateMissingError,
        am.SchemaError,
        am.HandlerError,
        am.HandlerTimeoutError,
        am.NestedEvalError,
    ):
        assert issubclass(cls, am.AsyncMachineError)
    assert issubclass(am.StateMissingError, KeyError)
    with pytest.raises(am.StateMissingError):
        am.Machine({"A": am.State()}).add1("Nope")


def test_result_values() -> None:
    """Result is an int subclass with the documented values and strings."""
    assert am.Executed == 0 and am.Canceled == 1 and am.Queued == 2
    assert isinstance(am.Executed, int) and isinstance(am.Executed, am.Result)
    assert str(am.Executed) == "executed"
    assert str(am.Canceled) == "canceled"
    assert str(am.Queued) == "queued"
    assert not am.Executed.is_queued and not am.Canceled.is_queued and am.Queued.is_queued
    assert am.is_active_tick(3) and not am.is_active_tick(4)


async def test_result_is_awaitable() -> None:
    """`await mach.add1("A")` resolves to the result itself."""
    mach = am.Machine({"A": am.State()})
    assert await mach.add1("A") == am.Executed
    assert await mach.remove1("A") == am.Executed
    await asyncio.sleep(0)


def test_event_and_transition_shape() -> None:
    """The Event / Transition / Mutation attributes of the public API."""
    mach = am.Machine({"A": am.State(), "B": am.State()})
    mach.add1("B")
    seen: list[dict[str, object]] = []

    def a_enter(e: am.Event) -> None:
        tx = e.transition
        seen.append(
            {
                "machine": e.machine is mach,
                "name": e.name,
                "args": dict(e.args),
                "valid": e.is_valid(),
                "mach_tx": e.machine.transition is tx,
                "mut_type": e.mutation.type,
                "called": list(e.mutation.called),
                "mut_args": dict(e.mutation.args),
                "is_auto": e.mutation.is_auto,
                "is_check": e.mutation.is_check,
                "tx_called": list(tx.called_states),
                "target": sorted(tx.target_states),
                "before": list(tx.states_before),
                "enters": list(tx.enters),
                "exits": list(tx.exits),
                "accepted": tx.is_accepted,
                "completed": tx.is_completed,
                "tx_auto": tx.is_auto,
                "tx_id": isinstance(tx.id, str) and len(tx.id) > 0,
                "time_before": list(tx.time_before),
            }
        )

    mach.bind_handlers(SimpleNamespace(AEnter=a_enter))
    mach.add1("A", {"k": 1})
    assert seen == [
        {
            "machine": True,
            "name": "AEnter",
            "args": {"k": 1},
            "valid": True,
            "mach_tx": True,
            "mut_type": am.MutationType.ADD,
            "called": ["A"],
            "mut_args": {"k": 1},
            "is_auto": False,
            "is_check": False,
            "tx_called": ["A"],
            "target": ["A", "B"],
            "before": ["B"],
            "enters": ["A"],
            "exits": [],
            "accepted": True,
            "completed": False,
            "tx_auto": False,
            "tx_id": True,
            "time_before": [0, 1, 0],
        }
    ]
    assert mach.transition is None


def test_handler_binding_contract() -> None:
    """bind_handlers returns an id listed by handlers(); unknown detach raises KeyError."""
    mach = am.Machine({"A": am.State()})
    bid = mach.bind_handlers(SimpleNamespace(AState=lambda e: None), id="my-id")
    assert bid == "my-id"
    assert mach.handlers() == ["my-id"]
    mach.detach_handlers(bid)
    assert mach.handlers() == []
    with pytest.raises(KeyError):
        mach.detach_handlers("nope")
    with pytest.raises(am.HandlerError):
        mach.bind_handlers(SimpleNamespace(ZEnter=lambda e: None))


def test_log_level_names() -> None:
    """LogLevel members as of the public API."""
    assert [m.name for m in am.LogLevel] == [
        "NOTHING",
        "EXTERNAL",
        "CHANGES",
        "OPS",
        "DECISIONS",
        "EVERYTHING",
    ]


# --- every public name is exported, typed and documented (in the spirit of trio's test_exports)


def own_doc(obj: object) -> str:
    """The docstring written for ``obj`` (not a dataclass's generated signature, not inherited)."""
    doc = obj.__dict__.get("__doc__") if isinstance(obj, type) else getattr(obj, "__doc__", None)
    if isinstance(obj, type) and doc and doc.startswith(f"{obj.__name__}("):
        return ""
    return (doc or "").strip()


def public_members(cls: type) -> dict[str, object]:
    """Public attributes defined by the package (the class itself or its package bases)."""
    out: dict[str, object] = {}
    for klass in reversed(cls.__mro__):
        if not klass.__module__.startswith("asyncmachine"):
            continue
        for name, value in vars(klass).items():
            if not name.startswith("_") and (callable(value) or isinstance(value, property)):
                out[name] = value
    return out


def untyped(fn: object) -> list[str]:
    """Parameters (and the return) of ``fn`` that carry no annotation."""
    sig = inspect.signature(fn)  # type: ignore[arg-type]
    missing = [
        p.name
        for p in sig.parameters.values()
        if p.annotation is inspect.Parameter.empty and p.name not in {"self", "cls"}
    ]
    if sig.return_annotation is inspect.Signature.empty:
        missing.append("return")
    return missing


PUBLIC = [(name, getattr(am, name)) for name in am.__all__]
CLASSES = [(name, obj) for name, obj in PUBLIC if isinstance(obj, type)]
FUNCTIONS = [(name, obj) for name, obj in PUBLIC if inspect.isfunction(obj)]


@pytest.mark.parametrize(("name", "obj"), CLASSES + FUNCTIONS)
def test_public_name_is_documented(name: str, obj: object) -> None:
    assert own_doc(obj), f"am.{name} has no docstring"


@pytest.mark.parametrize(("name", "fn"), FUNCTIONS)
def test_public_function_is_typed(name: str, fn: object) -> None:
    assert not untyped(fn), f"am.{name}: {untyped(fn)}"


@pytest.mark.parametrize(("name", "cls"), CLASSES)
def test_public_methods_are_typed_and_documented(name: str, cls: type) -> None:
    if issubclass(cls, enum.Enum):
        return  # members, not methods
    for attr, value in public_members(cls).items():
        fn = value.fget if isinstance(value, property) else value
        if isinstance(fn, (staticmethod, classmethod)):
            fn = fn.__func__
        if not inspect.isfunction(fn):
            continue
        assert own_doc(fn), f"am.{name}.{attr} has no docstring"
        assert not untyped(fn), f"am.{name}.{attr}: {untyped(fn)}"


def core_classes() -> set[str]:
    """Classes defined in the private core modules."""
    names: set[str] = set()
    for path in Path(am.__file__).parent.glob("_*.py"):
        module = importlib.import_module(f"asyncmachine.{path.stem}")
        names.update(
            n
            for n, c in vars(module).items()
            if isinstance(c, type) and c.__module__ in {module.__name__, "asyncmachine"}
        )
    return names


def test_public_signatures_use_only_exported_classes() -> None:
    """A core class that shows up in a public signature must be importable from ``am``."""
    core = core_classes()
    leaks: set[str] = set()
    for name, cls in CLASSES:
        for attr, value in public_members(cls).items():
            fn = value.fget if isinstance(value, property) else value
            annotations = getattr(fn, "__annotations__", {})
            for ann in annotations.values():
                for ident in re.findall(r"\b[A-Z]\w+\b", str(ann)):
                    if ident in core and ident not in am.__all__:
                        leaks.add(f"am.{name}.{attr}: {ident}")
    assert not leaks, sorted(leaks)
