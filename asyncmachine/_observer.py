"""What a machine tells the world: log lines, tracer hooks and breakpoints.

See docs/semantics.md#logging and #tracers.

The engine asks the observer before doing any of this work (``level``, ``traced``, ``hooks``),
so an unobserved machine pays one comparison per transition, and a tracer pays only for the hooks
it overrides.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

from ._log import (
    CHANGES,
    EVERYTHING,
    OPS,
    ArgsMapper,
    Logger,
    LogLevel,
    format_args,
    log_args,
)
from ._tracer import HOOKS, TRANSITION_HOOKS, Tracer

ROOT_LOGGER = "asyncmachine"
"""The stdlib logger every machine's own logger (``asyncmachine.<id>``) is a child of."""


class Breakpoint:
    """Transitions that activate all of ``added`` and deactivate all of ``removed``."""

    __slots__ = ("added", "removed", "strict")

    def __init__(self, added: Iterable[str], removed: Iterable[str], strict: bool) -> None:
        self.added = frozenset(added)
        self.removed = frozenset(removed)
        self.strict = strict

    def hit(self, activated: set[str], deactivated: set[str]) -> bool:
        if self.strict:
            return activated == self.added and deactivated == self.removed
        return self.added <= activated and self.removed <= deactivated


class Observer:
    """One machine's log sink, tracers and breakpoints.

    ``owner`` is what tracer hooks receive as the machine. Without a custom logger, lines go to
    the machine's own stdlib logger ``asyncmachine.<id>`` (made on the first line): ``[error``
    lines at ``ERROR``, the rest at ``INFO``.
    """

    __slots__ = (
        "_stdlib",
        "args_mapper",
        "breakpoints",
        "disposed",
        "hooks",
        "level",
        "logger",
        "machine_id",
        "owner",
        "prefix",
        "traced",
        "tracers",
    )

    def __init__(
        self,
        owner: object,
        machine_id: str,
        level: int,
        logger: Logger | None,
        log_id: bool | str,
        tracers: Iterable[Tracer],
    ) -> None:
        self.owner = owner
        self.machine_id = machine_id
        self.level = int(level)
        """The log level as a plain int (compared on the hot path)."""
        self.logger: Logger = logger or self.stdlib
        """Where lines go: a custom ``fn(level, line)``, or :meth:`stdlib`."""
        if log_id == "full":
            self.prefix = f"[{machine_id}] "
        elif log_id is True:
            self.prefix = f"[{machine_id[:5]}] "
        elif log_id is False:
            self.prefix = ""
        else:
            raise ValueError(f"log_id must be True, False or 'full', not {log_id!r}")
        self.args_mapper: ArgsMapper | None = None
        self.tracers: list[Tracer] = list(tracers)
        self.hooks: dict[str, tuple[Callable[..., object], ...]] = {}
        """Per hook name, the bound hooks of the tracers that override it (and only those)."""
        self.traced = False
        """Some tracer watches mutations or transitions (the engine must build their objects)."""
        self._rehook()
        self.breakpoints: list[Breakpoint] = []
        self.disposed = False
        self._stdlib: logging.Logger | None = None

    # ------------------------------------------------------------------ log lines

    def log(self, level: int, msg: str) -> None:
        """Emit ``msg`` if the machine's level includes ``level``."""
        if level <= self.level and not self.disposed:
            self._emit(level, msg, error=False)

    def error(self, msg: str) -> None:
        """An error nobody asked for (a handler or a task raised): never silent by default.

        With the stdlib sink it is logged at ``ERROR`` whatever the level; a custom logger gets
        it at ``CHANGES`` when its level includes that.
        """
        if self.disposed:
            return
        if self.level >= CHANGES or self.logger == self.stdlib:
            self._emit(CHANGES, msg, error=True)

    def _emit(self, level: int, msg: str, error: bool) -> None:
        self.logger(LogLevel(level), self.prefix + msg)

    def stdlib(self, level: LogLevel, line: str) -> None:
        """The default sink: the machine's own stdlib logger ``asyncmachine.<id>``, made on the
        first line; ``[error`` lines at ``ERROR``, the rest at ``INFO``."""
        std = self._stdlib
        if std is None:
            std = self._stdlib = logging.getLogger(f"{ROOT_LOGGER}.{self.machine_id}")
        error = line.startswith("[error", len(self.prefix))
        std.log(logging.ERROR if error else logging.INFO, line)

    def fmt_args(self, args: Mapping[str, Any]) -> str:
        """``" (k=v ...)"`` for the args a log line shows, or ``""``."""
        if not args:
            return ""
        return format_args(log_args(args, self.args_mapper))

    def log_state(
        self,
        is_auto: bool,
        exits: Sequence[str],
        enters: Sequence[str],
        target: Sequence[str],
        args: Mapping[str, Any],
    ) -> None:
        """``[state] +A -B`` (``[auto_]`` for auto transitions); at EVERYTHING the rest too."""
        parts = [f"+{s}" for s in enters] + [f"-{s}" for s in exits]
        line = f"[{'auto_' if is_auto else 'state'}] {' '.join(parts)}"
        if self.level >= EVERYTHING:
            entered = set(enters)
            same = [s for s in target if s not in entered]
            if same:
                line += "    " + " ".join(same)
        self.log(CHANGES, line + self.fmt_args(args))

    # ------------------------------------------------------------------ tracers

    def trace(self, hook: str, *args: Any) -> None:
        """Call ``hook`` on the tracers that override it; a raising one is reported, not raised."""
        for fn in self.hooks.get(hook, ()):
            try:
                fn(*args)
            except Exception as err:
                owner = type(getattr(fn, "__self__", fn)).__name__
                self.error(f"[error:tracer] {owner}.{hook} raised {err!r}")

    def bind(self, tracer: Tracer) -> None:
        self.tracers.append(tracer)
        self._rehook()
        self.log(OPS, f"[tracers] bind {type(tracer).__name__}")

    def detach(self, tracer: Tracer) -> None:
        try:
            self.tracers.remove(tracer)
        except ValueError:
            raise KeyError(f"tracer not bound: {tracer!r}") from None
        self._rehook()

    def _rehook(self) -> None:
        """Index the overridden hooks, so a tracer costs only the hooks it implements."""
        hooks: dict[str, list[Callable[..., object]]] = {}
        for tracer in self.tracers:
            for name in HOOKS:
                fn = getattr(tracer, name, None)
                if fn is not None and getattr(fn, "__func__", None) is not getattr(Tracer, name):
                    hooks.setdefault(name, []).append(fn)
        self.hooks = {name: tuple(fns) for name, fns in hooks.items()}
        self.traced = not TRANSITION_HOOKS.isdisjoint(self.hooks)

    # ------------------------------------------------------------------ breakpoints

    def check_breakpoints(self, tx: object, exits: Sequence[str], enters: Sequence[str]) -> None:
        """Log ``[breakpoint]`` and call the tracers' hook for each breakpoint ``tx`` hits."""
        activated, deactivated = set(enters), set(exits)
        for bp in self.breakpoints:
            if bp.hit(activated, deactivated):
                self.log(CHANGES, "[breakpoint] Machine.breakpoint")
                self.trace("breakpoint", self.owner, tx)
