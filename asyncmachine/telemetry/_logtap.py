"""A tee on a machine's logger, so exporters receive its log lines next to the user's logger.

The machine has one logger (``set_logger``). Tapping it installs a :class:`LogTap` in its place
that forwards every line to the logger it replaced and to each exporter's sink. Exporters need at
least ``CHANGES``, so a lower log level is raised to it; the replaced logger then still gets only
the lines of the level the user had chosen. When the last sink goes, the logger and the level
are put back. Calling ``mach.set_logger()`` later replaces the tap (the exporters stop).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import TYPE_CHECKING

from .._log import Logger, LogLevel
from ._levels import Severity, id_prefixes, severity

if TYPE_CHECKING:
    from .._machine import Machine

Sink = Callable[[str, Severity], None]
"""``sink(body, severity)``: the line without its id prefix, and its level."""

_log = logging.getLogger("asyncmachine.telemetry")


class LogTap:
    """The logger installed on a tapped machine: the replaced logger plus the sinks."""

    def __init__(self, mach: Machine) -> None:
        self._mach = mach
        self._prefixes = id_prefixes(mach.id)
        # The machine has no public getter for its logger (yet): the replaced one is read here.
        self._prev: Logger = mach._logger
        self._user_level = mach.log_level
        self._raised_to: LogLevel | None = None
        self.sinks: list[Sink] = []
        self._sink_failed = False
        if mach.log_level < LogLevel.CHANGES:
            self._raised_to = LogLevel.CHANGES
            mach.set_log_level(LogLevel.CHANGES)
        mach.set_logger(self)

    def __call__(self, level: LogLevel, line: str) -> None:
        raised = self._raised_to
        if raised is None or level <= self._user_level or self._mach.log_level != raised:
            self._prev(level, line)
        body = line
        for prefix in self._prefixes:
            if line.startswith(prefix):
                body = line[len(prefix) :]
                break
        sev = severity(level, body)
        for sink in self.sinks:
            try:
                sink(body, sev)
            except Exception:  # a broken exporter must not break the machine's transition
                if not self._sink_failed:
                    self._sink_failed = True
                    _log.exception("asyncmachine telemetry: a log sink failed (logged once)")

    def remove(self, sink: Sink) -> None:
        """Detach ``sink``; with none left, restore the machine's logger and level."""
        if sink in self.sinks:
            self.sinks.remove(sink)
        if self.sinks:
            return
        mach = self._mach
        if mach._logger is self:
            mach.set_logger(self._prev)
        if self._raised_to is not None and mach.log_level == self._raised_to:
            mach.set_log_level(self._user_level)


def tap_log(mach: Machine, sink: Sink) -> LogTap:
    """Send ``mach``'s log lines to ``sink`` too; ``tap.remove(sink)`` undoes it."""
    current = mach._logger
    tap = current if isinstance(current, LogTap) else LogTap(mach)
    tap.sinks.append(sink)
    return tap
