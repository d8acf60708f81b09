"""Handler binding: find an object's handlers by name once, validate them, cache the lookup.

The naming rules are in docs/semantics.md#handlers.
"""

from __future__ import annotations

import inspect
import random
import re
import warnings
from collections.abc import Callable, Collection
from typing import Any

from ._errors import HandlerError, HandlerWarning

NEGOTIATION_SUFFIXES = ("Enter", "Exit")
FINAL_SUFFIXES = ("State", "End")
_SUFFIXES = (*NEGOTIATION_SUFFIXES, *FINAL_SUFFIXES, "Any")
GLOBAL_HANDLERS = ("AnyEnter", "AnyState")
_ID_CHARS = re.compile(r"[^a-zA-Z0-9\-_.]")


def is_final(name: str) -> bool:
    return name.endswith(FINAL_SUFFIXES)


def referenced_states(name: str, states: Collection[str]) -> list[str] | None:
    """The states a handler name refers to, or ``None`` if it is not a handler name."""
    if name in GLOBAL_HANDLERS:
        return []
    for suffix in _SUFFIXES:
        if name.endswith(suffix) and len(name) > len(suffix) and name != "Any" + suffix:
            return [name[: -len(suffix)]]
    if name.startswith("Any") and len(name) > 3:
        return [name[3:]]
    for first in states:
        if name.startswith(first) and name[len(first) :] in states:
            return [first, name[len(first) :]]
    return None


def near_miss(name: str, states: Collection[str]) -> str | None:
    """The state a non-handler name seems meant for (``FooEnterr``: ``Foo``), or ``None``.

    A name that starts with a state name followed by a capital letter, where the rest is neither
    a handler suffix nor a state, is most likely a misspelt handler.
    """
    for state in states:
        rest = name[len(state) :]
        if name.startswith(state) and rest[:1].isupper():
            return state
    return None


class Binding:
    """One bound object: its handlers by event name, looked up once at bind time."""

    __slots__ = ("handlers", "has_pairs", "id", "is_async", "obj", "prefix")

    def __init__(
        self,
        obj: object,
        states: Collection[str],
        binding_id: str | None,
        prefix: str | None,
        warn_stacklevel: int = 2,
    ) -> None:
        self.obj = obj
        self.prefix = prefix or ""
        self.id = (
            _ID_CHARS.sub("", binding_id) if binding_id else f"anon-{random.getrandbits(16):04x}"
        )
        self.handlers: dict[str, Callable[..., Any]] = {}
        """Event name (prefix included) -> callable."""
        self.is_async: set[str] = set()
        """Final handlers written as ``async def``, run as tasks."""
        self.has_pairs = False
        """Whether any state-to-state or self handler is bound (they cost a loop to dispatch)."""
        for attr in _candidate_names(obj):
            event = self.prefix + attr
            refs = referenced_states(event, states)
            fn = obj.get(attr) if isinstance(obj, dict) else getattr(obj, attr, None)
            if not callable(fn):
                continue
            if refs is None:
                state = near_miss(event, states)
                if state is not None:
                    warnings.warn(
                        f"{attr} starts with the state {state} but {event[len(state) :]} is "
                        "neither a handler suffix (Enter, Exit, State, End) nor a state: "
                        "a misspelt handler?",
                        HandlerWarning,
                        stacklevel=warn_stacklevel,
                    )
                continue
            missing = [s for s in refs if s not in states]
            if missing:
                raise HandlerError(f"missing states: {' '.join(missing)} from handler {attr}")
            coro = inspect.iscoroutinefunction(fn)
            if is_final(event):
                if coro:
                    self.is_async.add(event)
            elif coro:
                raise HandlerError(
                    f"negotiation handler {attr} is async; negotiation must decide synchronously "
                    "(fork async work from a final handler)"
                )
            elif len(refs) == 2:
                self.has_pairs = True
            self.handlers[event] = fn


def _candidate_names(obj: object) -> list[str]:
    if isinstance(obj, dict):
        return [k for k in obj if isinstance(k, str)]
    return [name for name in dir(obj) if not name.startswith("_")]
