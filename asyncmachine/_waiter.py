"""Waiters: what every ``when*`` returns, resolved synchronously by the engine."""

from __future__ import annotations

from collections.abc import Callable, Generator
from typing import Any

_PENDING, _RESOLVED, _CANCELLED = 0, 1, 2


class Waiter:
    """Shaped like an asyncio future, but needs no loop until it is awaited.

    The engine resolves it inside the mutation call that satisfies its condition, so ``done()`` is
    already true when that call returns. It is cancelled when its ``ctx`` ends or the machine is
    disposed; awaiting a cancelled waiter raises ``asyncio.CancelledError``.
    """

    __slots__ = ("_callbacks", "_state")

    def __init__(self) -> None:
        self._state = _PENDING
        self._callbacks: list[Callable[[Waiter], None]] | None = None

    def done(self) -> bool:
        """True once the waiter has ended, either way."""
        return self._state != _PENDING

    def cancelled(self) -> bool:
        """True if it ended through its ``ctx`` or the machine's disposal."""
        return self._state == _CANCELLED

    def add_done_callback(self, fn: Callable[[Waiter], None]) -> None:
        """Call ``fn(waiter)`` when it ends; at once if it already has."""
        if self._state != _PENDING:
            fn(self)
        elif self._callbacks is None:
            self._callbacks = [fn]
        else:
            self._callbacks.append(fn)

    def remove_done_callback(self, fn: Callable[[Waiter], None]) -> None:
        """Forget a callback added with ``add_done_callback``."""
        if self._callbacks is not None and fn in self._callbacks:
            self._callbacks.remove(fn)

    def _end(self, state: int) -> None:
        if self._state != _PENDING:
            return
        self._state = state
        self._unlink()
        callbacks, self._callbacks = self._callbacks, None
        if callbacks:
            for fn in callbacks:
                fn(self)

    def _unlink(self) -> None:
        """Hook for subclasses: forget the waiter wherever it was registered."""

    def _resolve(self) -> None:
        self._end(_RESOLVED)

    def _cancel(self) -> None:
        self._end(_CANCELLED)

    def __await__(self) -> Generator[Any, None, None]:
        from . import _aio

        if self._state == _PENDING:
            yield from _aio.future_when(self.add_done_callback).__await__()
        if self._state == _CANCELLED:
            raise _aio.CancelledError("waiter cancelled")

    def __repr__(self) -> str:
        return f"<Waiter {('pending', 'resolved', 'cancelled')[self._state]}>"


def resolved_waiter() -> Waiter:
    """The shared, already-resolved waiter for conditions that hold at once."""
    return _DONE


def cancelled_waiter() -> Waiter:
    """The shared, already-cancelled waiter (disposed machine, done ctx)."""
    return _CANCELLED_W


_DONE = Waiter()
_DONE._state = _RESOLVED
_CANCELLED_W = Waiter()
_CANCELLED_W._state = _CANCELLED
