"""The exception hierarchy: one base class so callers can catch everything the engine raises."""

from __future__ import annotations

from typing import Any


class AsyncMachineError(Exception):
    """Base class of every error raised by asyncmachine."""


class StateMissingError(AsyncMachineError, KeyError):
    """A state name is not in the machine's schema.

    A ``KeyError`` subclass, so ``except KeyError`` code keeps working.
    """

    def __init__(self, states: list[str], machine_id: str = "") -> None:
        self.states = list(states)
        self.machine_id = machine_id
        where = f" for {machine_id}" if machine_id else ""
        super().__init__(f"missing states: {' '.join(self.states)} not defined in schema{where}")

    def __str__(self) -> str:
        # KeyError quotes its message; this error reads better unquoted.
        return str(self.args[0])


class SchemaError(AsyncMachineError, ValueError):
    """A schema, or a list of state names, is malformed."""


class HandlerError(AsyncMachineError):
    """A handler object cannot be bound (unknown state in a name, async negotiation handler)."""


class HandlerTimeoutError(AsyncMachineError):
    """A handler ran longer than the machine's ``handler_timeout``."""


class NestedEvalError(AsyncMachineError):
    """``eval()`` was called from inside a handler, where it would run out of order."""


class ExceptionStateError(AsyncMachineError):
    """The ``Exception`` state activated while waiting; ``err`` is the machine's last error."""

    def __init__(self, err: BaseException | None, *args: Any) -> None:
        self.err = err
        super().__init__(f"machine entered Exception: {err!r}", *args)


class HandlerWarning(UserWarning):
    """A name on a handler object looks like a handler but matches nothing (``FooEnterr``)."""


def is_cancellation(err: BaseException) -> bool:
    """``asyncio.CancelledError`` (or ``concurrent.futures``'), without importing asyncio."""
    return any(
        cls.__name__ == "CancelledError" and cls.__module__.startswith(("asyncio", "concurrent"))
        for cls in type(err).__mro__
    )
