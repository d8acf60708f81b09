"""Tracers: synchronous hooks into the engine, for telemetry and debuggers."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from ._transition import Mutation, Transition


class Tracer:
    """Base class whose hooks do nothing; override what you need (docs/semantics.md#tracers).

    Hooks run inside the engine, synchronously. An exception raised by a hook is logged and
    swallowed, so a broken tracer never breaks the machine it watches. ``mach``, ``parent`` and
    ``child`` are ``am.Machine`` objects (typed ``Any`` here so that this module stays below the
    machine in the import graph; annotate them ``am.Machine`` in your subclass).
    """

    def machine_init(self, mach: Any) -> None:
        """The machine was built with this tracer in ``tracers=``."""

    def machine_dispose(self, mach_id: str) -> None:
        """The machine was disposed."""

    def new_submachine(self, parent: Any, child: Any) -> None:
        """``child`` was built with ``parent=`` this tracer's machine."""

    def verify_states(self, mach: Any) -> None:
        """``verify_states()`` set a new state order."""

    def schema_change(self, mach: Any, old_schema: dict[str, Any]) -> None:
        """``set_schema()`` replaced ``old_schema``."""

    def mutation_queued(self, mach: Any, mutation: Mutation) -> None:
        """A mutation entered the queue (also one that runs at once on an idle machine)."""

    def transition_init(self, tx: Transition) -> None:
        """A transition was resolved (target, enters and exits are known)."""

    def transition_start(self, tx: Transition) -> None:
        """Its negotiation is about to start."""

    def handler_start(self, tx: Transition, binding_id: str, handler_name: str) -> None:
        """A handler is about to be called."""

    def handler_end(self, tx: Transition, binding_id: str, handler_name: str) -> None:
        """A handler returned (or raised)."""

    def transition_finals(self, tx: Transition) -> None:
        """The clock was applied; final handlers are next."""

    def transition_end(self, tx: Transition) -> None:
        """The transition ended, accepted or not."""

    def queue_end(self, mach: Any) -> None:
        """The queue ran empty."""

    def breakpoint(self, mach: Any, tx: Transition) -> None:
        """``tx`` hit a breakpoint set with ``add_breakpoint()``."""


HOOKS = tuple(name for name in vars(Tracer) if not name.startswith("_"))
"""Every hook a tracer can override."""

TRANSITION_HOOKS = frozenset(HOOKS) - {
    "machine_init",
    "machine_dispose",
    "new_submachine",
    "verify_states",
    "schema_change",
}
"""The hooks that watch mutations and transitions (the rest watch the machine's life)."""


MachineHook = Callable[[Any], None]

CREATION_HOOKS: list[MachineHook] = []
"""Process-wide: called with every machine built (see :func:`on_machine_created`)."""


def on_machine_created(fn: MachineHook) -> Callable[[], None]:
    """Call ``fn(mach)`` for every machine built from now on, in this process; returns the remover.

    For recorders that must see every machine, not only instrumented ones (the pytest plugin's
    ``--am-trace``). The hook runs at the end of the constructor, after ``machine_init``; one that
    raises is logged on the machine and never breaks its construction.
    """
    CREATION_HOOKS.append(fn)

    def remove() -> None:
        if fn in CREATION_HOOKS:
            CREATION_HOOKS.remove(fn)

    return remove
