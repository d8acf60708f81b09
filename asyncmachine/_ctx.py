"""Cancellation tokens, shaped like Go's ``context.Context`` but loop-agnostic."""

from __future__ import annotations

from collections.abc import Callable, Generator
from dataclasses import dataclass
from typing import Any

DoneCallback = Callable[["Ctx"], None]


@dataclass(frozen=True, slots=True)
class StateCtxInfo:
    """What a state context belongs to: ``Ctx.value`` of ``Machine.new_state_ctx()``."""

    machine_id: str
    state: str
    tick: int


class Ctx:
    """A cancellation token: cancelled once, then every callback runs (children first).

    ``Ctx()`` is a root you can cancel, ``Ctx.background()`` is never cancelled and
    ``ctx.child()`` is cancelled together with its parent.
    """

    __slots__ = ("__weakref__", "_callbacks", "_children", "_done", "_parent", "value")

    def __init__(self, value: Any = None) -> None:
        self._done = False
        self._callbacks: dict[DoneCallback, None] = {}
        self._children: dict[Ctx, None] = {}
        self._parent: Ctx | None = None
        self.value = value
        """Optional data about what the context belongs to (e.g. a ``StateCtxInfo``)."""

    @staticmethod
    def background() -> Ctx:
        """A context that is never cancelled."""
        return _BACKGROUND

    def child(self, value: Any = None) -> Ctx:
        """A context cancelled together with this one (done at once if this one is)."""
        child = Ctx(value)
        if self._done:
            child._done = True
        elif self is not _BACKGROUND:
            child._parent = self
            self._children[child] = None
        return child

    def done(self) -> bool:
        """True once cancelled."""
        return self._done

    def cancel(self) -> None:
        """Cancel this context and its children; runs the done callbacks once."""
        if self._done or self is _BACKGROUND:
            return
        self._done = True
        if self._parent is not None:
            self._parent._children.pop(self, None)
            self._parent = None
        children, self._children = self._children, {}
        for child in children:
            child._parent = None
            child.cancel()
        callbacks, self._callbacks = self._callbacks, {}
        for fn in callbacks:
            fn(self)

    def add_done_callback(self, fn: DoneCallback) -> None:
        """Call ``fn(ctx)`` once the context is done; at once if it already is."""
        if self._done:
            fn(self)
        elif self is not _BACKGROUND:
            self._callbacks[fn] = None

    def remove_done_callback(self, fn: DoneCallback) -> None:
        """Forget a callback added with ``add_done_callback``."""
        self._callbacks.pop(fn, None)

    async def wait(self) -> None:
        """Wait until the context is done."""
        if self._done:
            return
        from . import _aio

        await _aio.future_when(self.add_done_callback)

    def __await__(self) -> Generator[Any, None, None]:
        return self.wait().__await__()

    def __repr__(self) -> str:
        state = "done" if self._done else "alive"
        return f"<Ctx {state}{'' if self.value is None else f' {self.value!r}'}>"


_BACKGROUND = Ctx()
