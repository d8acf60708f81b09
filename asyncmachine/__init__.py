"""asyncmachine: clock-based multi-state machines with relations, negotiation and waiters.

A Python port of asyncmachine-go. ``import asyncmachine as am``, then build an ``am.Machine`` from a
schema of ``am.State`` definitions.
"""

from ._ctx import Ctx, StateCtxInfo
from ._errors import (
    AsyncMachineError,
    ExceptionStateError,
    HandlerError,
    HandlerTimeoutError,
    HandlerWarning,
    NestedEvalError,
    SchemaError,
    StateMissingError,
)
from ._exception_handler import ExceptionHandler
from ._log import LogLevel, new_log_args_mapper
from ._machine import Event, Machine
from ._result import Canceled, Executed, Queued, Result, is_queued
from ._schema import (
    EXCEPTION,
    A,
    S,
    Schema,
    State,
    s_add,
    s_remove,
    schema_from_dict,
    schema_merge,
    schema_to_dict,
    state_add,
    states_by_tag,
    states_diff,
    states_equal,
    states_shared,
)
from ._states_base import StatesBase
from ._time import (
    Time,
    is_active_tick,
    next_active,
    next_active_in,
    next_inactive,
    next_inactive_in,
)
from ._tracer import Tracer
from ._transition import (
    ERR_ARGS_KEY,
    ErrArgs,
    Explanation,
    Mutation,
    MutationSource,
    MutationType,
    PanicInfo,
    Transition,
    current_transition,
)
from ._waiter import Waiter

__all__ = [
    "ERR_ARGS_KEY",
    "EXCEPTION",
    "A",
    "AsyncMachineError",
    "Canceled",
    "Ctx",
    "ErrArgs",
    "Event",
    "ExceptionHandler",
    "ExceptionStateError",
    "Executed",
    "Explanation",
    "HandlerError",
    "HandlerTimeoutError",
    "HandlerWarning",
    "LogLevel",
    "Machine",
    "Mutation",
    "MutationSource",
    "MutationType",
    "NestedEvalError",
    "PanicInfo",
    "Queued",
    "Result",
    "S",
    "Schema",
    "SchemaError",
    "State",
    "StateCtxInfo",
    "StateMissingError",
    "StatesBase",
    "Time",
    "Tracer",
    "Transition",
    "Waiter",
    "current_transition",
    "is_active_tick",
    "is_queued",
    "new_log_args_mapper",
    "next_active",
    "next_active_in",
    "next_inactive",
    "next_inactive_in",
    "s_add",
    "s_remove",
    "schema_from_dict",
    "schema_merge",
    "schema_to_dict",
    "state_add",
    "states_by_tag",
    "states_diff",
    "states_equal",
    "states_shared",
]

__version__ = "0.1.0"


def _own_public_classes() -> None:
    """Public classes report ``asyncmachine`` as their module, where users import them from."""
    for name in __all__:
        obj = globals()[name]
        if isinstance(obj, type):
            obj.__module__ = "asyncmachine"


_own_public_classes()
